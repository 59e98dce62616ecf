"""The one exception type for mistakes a user can fix. Its message names the fix; the CLI prints it on
one line and exits with status 2."""


class UserError(Exception):
    """A problem the user can fix (bad name, bad option, missing file). The message says how."""
