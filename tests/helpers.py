"""Shared constants for tests (pytest puts tests/ on sys.path)."""

# Small sizes for the micro scenarios in tests: 2 tasks, few images, a few steps.
TINY_RUN = ["train_per_class=6", "test_per_class=4", "tasks=[digits,colours]"]
