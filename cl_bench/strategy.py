"""The Avalanche strategy every method runs on: a SupervisedTemplate whose optimizer and scheduler come
from the method, built per experience after the method has chosen what trains."""

from __future__ import annotations

import math
import warnings

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch.utils.data import DataLoader

from . import faults, precision
from .method import CLMethod


class AccuracyCounter(SupervisedPlugin):
    """Counts correct top-1 predictions during evaluation (Avalanche's own stream accuracy is
    sample-weighted across experiences, and its matrix metric breaks on eval-before-train)."""

    def __init__(self):
        super().__init__()
        self.correct = 0
        self.total = 0

    def before_eval_exp(self, strategy, **kw):
        self.correct = self.total = 0

    def after_eval_iteration(self, strategy, **kw):
        self.correct += int((strategy.mb_output.argmax(1) == strategy.mb_y).sum())
        self.total += len(strategy.mb_y)

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / max(self.total, 1)


class CLStrategy(SupervisedTemplate):
    """SupervisedTemplate with:

    - the optimizer and per-step scheduler from ``method.configure_optimizers`` after the plugins'
      ``before_training_exp`` (Avalanche's own ``make_optimizer`` would put every parameter, frozen ones
      too, in group 0 and fails with several groups);
    - training for a fixed number of iterations or epochs (one int per task allowed);
    - autocast at the run's resolved precision, with a GradScaler for fp16 only (cl_bench/precision.py);
    - plain, seeded DataLoaders (shuffle order is a function of the run seed and the task).
    """

    def __init__(self, *, method: CLMethod, params, plugins=(), device="cpu", progress=None, **kw):
        self.method = method
        self.params = params
        self.scheduler = None
        self.precision = method.ctx.precision
        self.scaler = torch.amp.GradScaler("cuda", enabled=precision.needs_scaler(self.precision))
        self.progress = progress
        self._steps_done = 0
        self.train_images = 0  # images through the training step this task (throughput in the leaderboard)
        self._total_steps = 0
        self._bar = None
        self.trainable_count = 0
        with warnings.catch_warnings():  # we count accuracy ourselves; Avalanche need not log anything
            warnings.filterwarnings("ignore", "No loggers specified")
            evaluator = EvaluationPlugin(loggers=[])
        self._placeholder = placeholder = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)
        super().__init__(optimizer=placeholder, train_mb_size=params["batch_size"],
                         eval_mb_size=params["eval_batch_size"], device=device,
                         plugins=[method, *plugins], evaluator=evaluator,
                         criterion=torch.nn.CrossEntropyLoss(label_smoothing=params["label_smoothing"]), **kw)

    # -- what to train, for how long ------------------------------------------------------------------
    def task_epochs(self, t: int) -> int:
        e = self.params["epochs"]
        return e[t] if isinstance(e, list) else e

    def make_optimizer(self, **kw):
        pass  # built in _before_training_exp, once the method has chosen its trainable parameters

    def make_train_dataloader(self, num_workers=0, shuffle=True, pin_memory=None, persistent_workers=False,
                              drop_last=False, **kw):
        self.dataloader = self.loader(self.adapted_dataset, shuffle=True, batch_size=self.train_mb_size)
        t = self.experience.current_experience
        n = len(self.dataloader)
        iters = self.params["iterations"]
        self._total_steps = iters if iters > 0 else n * self.task_epochs(t)
        self.train_epochs = math.ceil(self._total_steps / max(n, 1))
        self._steps_done = self.train_images = 0

    def make_eval_dataloader(self, num_workers=0, shuffle=False, pin_memory=None, persistent_workers=False,
                             **kw):
        self.dataloader = self.loader(self.adapted_dataset, shuffle=False, batch_size=self.eval_mb_size)

    def loader(self, dataset, *, shuffle: bool, batch_size: int, drop_last: bool = False) -> DataLoader:
        """A DataLoader with the run's worker/pinning settings; shuffling draws from the global torch RNG,
        which the runner seeds per task."""
        g = torch.Generator().manual_seed(int(torch.randint(2**31, (1,)))) if shuffle else None
        nw = self.params["num_workers"]
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g, drop_last=drop_last,
                          num_workers=nw, persistent_workers=nw > 0, pin_memory=self.device.type == "cuda")

    def _before_training_exp(self, **kw):
        super()._before_training_exp(**kw)
        self.optimizer, self.scheduler = self.method.configure_optimizers(self, self._total_steps)
        if self.optimizer is None:  # the method has nothing to train on this experience
            self.optimizer, self.train_epochs, self.trainable_count = self._placeholder, 0, 0
            return
        self.trainable_count = sum(p.numel() for g in self.optimizer.param_groups for p in g["params"])
        if self.progress is not None:
            self._bar = self.progress.add_task(f"train {self.experience.current_experience}",
                                               total=self._total_steps)

    def _after_training_exp(self, **kw):
        super()._after_training_exp(**kw)
        if self._bar is not None:
            self.progress.remove_task(self._bar)
            self._bar = None

    def _after_training_iteration(self, **kw):
        super()._after_training_iteration(**kw)
        self._steps_done += 1
        self.train_images += len(self.mb_y)
        if self._steps_done == 2:
            faults.point("train", self.experience.current_experience)
        if self._bar is not None:
            self.progress.update(self._bar, advance=1, description=f"train loss {float(self.loss.detach()):.3f}")
        if self._steps_done >= self._total_steps:
            self.stop_training()

    # -- one step ---------------------------------------------------------------------------------------
    def forward(self):
        with self.method.autocast():
            return self.model(self.mb_x)

    def criterion(self):
        return self._criterion(self.mb_output.float(), self.mb_y)

    def backward(self):
        self.scaler.scale(self.loss).backward(retain_graph=self.retain_graph)

    def optimizer_step(self):
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
