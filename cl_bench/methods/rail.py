"""RAIL (docs/methods.md RL1): a regression adapter on frozen CLIP image features, fitted in closed form
task after task (no backpropagation, so nothing learned is forgotten), fused with zero-shot CLIP.

- ``rail-primal``: features expanded by a fixed random ReLU layer (E -> hidden), then ridge regression onto
  one-hot labels over every class learned so far, updated recursively batch by batch (Woodbury: the running
  inverse R = (lambda I + Phi^T Phi)^-1 and weights W = R Phi^T Y, exactly the closed form on all data seen).
- ``rail-dual``: kernel ridge regression (RBF) on the stored features of every task, re-solved per task.
- Fusion (the reference's domain identification): zero-shot CLIP scores the image over the evaluation
  classes; when its top class belongs to a learned task, the prediction is (1 - w) softmax(zero-shot) +
  w adapter scores (zero on classes not learned), otherwise the zero-shot softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cl_bench.api import CLMethod


class RAIL(CLMethod):
    """What both forms share: no gradient training, a fit after each task, the fusion at evaluation."""

    PAPER = ("Xu et al., Advancing Cross-domain Discriminability in Continual Learning of Vision-Language Models "
             "(NeurIPS 2024); reference linghan1997/Regression-based-Analytic-Incremental-Learning")
    SWITCHES = ("fusion_weight", "ridge")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.task_cols: dict[str, tuple[int, int]] = {}  # task key -> (first column, classes)
        self.n_classes = 0
        self.classifier.logit_hooks.append(self._fuse)

    def param_groups(self, strategy):
        return []  # nothing trains by gradient: the strategy runs no step, the fit is after_training_exp

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.classifier.image_features(x).float()

    def after_training_exp(self, strategy, **kw):
        key, n_new = self.classifier.class_key, self.classifier.num_classes
        offset = self.n_classes
        self.task_cols[key] = (offset, n_new)
        self.n_classes += n_new
        data = strategy.experience.dataset
        batches = ((self.features(x.to(strategy.device)), y.to(strategy.device) + offset)
                   for x, y in strategy.loader(data, shuffle=True, batch_size=self.params["batch_size"]))
        self.fit(batches, n_new)

    def fit(self, batches, n_new: int) -> None:
        raise NotImplementedError

    def scores(self, feats: torch.Tensor) -> torch.Tensor:
        """Adapter scores (N x classes learned so far), columns in learning order."""
        raise NotImplementedError

    def _fuse(self, clf, img_feats, logits):
        if not self.task_cols:
            return logits
        probs = logits.float().softmax(dim=-1)
        scores = self.scores(img_feats.float())
        blocks, learned = [], []
        for key, n in clf.class_parts:
            if key in self.task_cols:
                start, m = self.task_cols[key]
                blocks.append(scores[:, start:start + m])
            else:
                blocks.append(scores.new_zeros(len(scores), n))
            learned.append(torch.full((n,), key in self.task_cols, device=probs.device))
        adapted, learned = torch.cat(blocks, dim=1), torch.cat(learned)
        seen = learned[probs.argmax(dim=1)][:, None]  # zero-shot's top class is in a learned task
        w = self.params["fusion_weight"]
        return torch.where(seen, (1 - w) * probs + w * adapted, probs)


def expansion(dim_in: int, hidden: int, seed: int) -> torch.Tensor:
    """The fixed random projection (dim_in x hidden), drawn as nn.Linear's default init from its own
    generator, so it is the same after --resume."""
    g = torch.Generator().manual_seed(seed)
    bound = 1.0 / dim_in**0.5
    return (torch.rand(dim_in, hidden, generator=g) * 2 - 1) * bound


def rls_update(R: torch.Tensor, W: torch.Tensor, Phi: torch.Tensor, Y: torch.Tensor):
    """One recursive least-squares step: R, W after adding rows Phi (b x H) with targets Y (b x C)."""
    RPt = R @ Phi.T
    K = torch.linalg.solve(torch.eye(len(Phi), dtype=R.dtype, device=R.device) + Phi @ RPt, RPt.T)
    R = R - RPt @ K
    W = W + R @ Phi.T @ (Y - Phi @ W)
    return R, W


class RAILPrimal(RAIL):
    NAME = "rail-primal"
    DESCRIPTION = ("RAIL primal: random ReLU expansion + recursive ridge regression on frozen features, fused with "
                   "zero-shot")
    # Reference config (analytic_clip.yaml): hidden 15000, regularization 0.1, fusion weight 0.8, batch 128.
    DEFAULTS = {"hidden_dim": 15000, "ridge": 0.1, "fusion_weight": 0.8, "batch_size": 128, "epochs": 1}
    PROFILE_DEFAULTS = {"micro": {"hidden_dim": 2048, "batch_size": 64}}
    SWITCHES = ("fusion_weight", "ridge", "hidden_dim")
    STATE = ("R", "W", "task_cols", "n_classes")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.R = self.W = self.proj = None

    def expand(self, feats: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            self.proj = expansion(feats.shape[1], self.params["hidden_dim"], self.ctx.config.seed).to(feats.device)
        return F.relu(feats @ self.proj)

    def fit(self, batches, n_new):
        H = self.params["hidden_dim"]
        for feats, y in batches:
            Phi = self.expand(feats)
            if self.R is None:
                self.R = torch.eye(H, device=Phi.device) / self.params["ridge"]
                self.W = Phi.new_zeros(H, 0)
            if self.W.shape[1] < self.n_classes:
                self.W = torch.cat([self.W, self.W.new_zeros(H, self.n_classes - self.W.shape[1])], dim=1)
            self.R, self.W = rls_update(self.R, self.W, Phi, F.one_hot(y, self.n_classes).float())

    def scores(self, feats):
        return self.expand(feats) @ self.W.to(feats)


def rbf(x: torch.Tensor, X: torch.Tensor, gamma: float) -> torch.Tensor:
    return torch.exp(-gamma * torch.cdist(x, X).pow(2))


class RAILDual(RAIL):
    NAME = "rail-dual"
    DESCRIPTION = "RAIL dual: kernel ridge regression (RBF) on the stored frozen features, fused with zero-shot"
    # Reference: RBF gamma 0.1, lambda 0.001, fusion weight 0.8 (16-shot training in the paper's X-TAIL).
    # max_per_class bounds the stored features (the kernel is N x N); 0 keeps every training image.
    DEFAULTS = {"gamma": 0.1, "ridge": 0.001, "fusion_weight": 0.8, "batch_size": 128, "epochs": 1,
                "max_per_class": 0}
    PROFILE_DEFAULTS = {"micro": {"batch_size": 64, "max_per_class": 32}}
    SWITCHES = ("fusion_weight", "ridge", "gamma", "max_per_class")
    STATE = ("X", "y", "alpha", "task_cols", "n_classes")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.X = self.y = self.alpha = None

    def fit(self, batches, n_new):
        feats, labels = map(torch.cat, zip(*batches))
        cap = self.params["max_per_class"]
        if cap:
            keep = [i for c in labels.unique() for i in (labels == c).nonzero().flatten()[:cap].tolist()]
            feats, labels = feats[sorted(keep)], labels[sorted(keep)]
        self.X = feats if self.X is None else torch.cat([self.X, feats])
        self.y = labels if self.y is None else torch.cat([self.y, labels])
        K = rbf(self.X, self.X, self.params["gamma"])
        eye = torch.eye(len(K), device=K.device)
        self.alpha = torch.linalg.solve(K + self.params["ridge"] * eye, F.one_hot(self.y, self.n_classes).float())

    def scores(self, feats):
        return rbf(feats, self.X.to(feats), self.params["gamma"]) @ self.alpha.to(feats)
