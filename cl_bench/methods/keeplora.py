"""KeepLoRA and KeepLoRA+ (docs/methods.md KL1), faithful to the reference MTIL code by default.

Per task: estimate the task gradient of every attention weight, project it out of the protected
subspace (pre-trained principal directions + earlier tasks' feature directions), take a rank-r SVD, freeze
A = U_r (so the update's input side is orthogonal to the protected subspace) and train B from S_r V_r^T
after subtracting the initial delta; merge; then grow the protected subspace from the task's features.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from cl_bench import lora
from cl_bench.attention_stats import StatAccumulator
from cl_bench.lora import attention_modules
from cl_bench.subspace import grow_basis, project_out, weight_basis

from .lora import MICRO_LORA, LoRAFamily

log = logging.getLogger(__name__)
TOWER_PREFIX = {"visual": "v", "text": "t"}


def module_keys(model) -> list[str]:
    return [f"{tower}.{i}.{t}" for tower, _, i, _ in attention_modules(model) for t in "qkvo"]


def gradient_factors(U, S, V, r: int, P: torch.Tensor | None, deficient: str, eps: float):
    """A = U_r and B0 = S_r V_r^T from the SVD of the projected gradient (KL5, KL6), and how many of the r columns
    have a singular value below ``eps * S_0``.

    When the projected gradient has rank below r, those columns are not its singular vectors but leftovers of
    the random sketch, and nothing makes them orthogonal to the protected basis P (KL18). ``keep`` uses them
    anyway (the reference); ``drop`` zeroes them (a zero column of A gets a zero gradient in B, so it never
    trains); ``reproject`` removes P and the kept columns from them and re-normalises (dropping any that vanish).
    """
    A, B0 = U[:, :r].clone(), torch.diag(S[:r]) @ V[:, :r].T
    bad = [j for j in range(min(r, len(S))) if S[j] < eps * S[0]] if len(S) and S[0] > 0 else list(range(r))
    if deficient == "keep" or not bad:
        return A, B0, len(bad)
    good = [j for j in range(A.shape[1]) if j not in bad]
    done = A[:, good]
    for j in bad:
        c = A[:, j] if deficient == "reproject" else torch.zeros_like(A[:, j])
        for basis in (P, done, P, done):  # twice: one Gram-Schmidt pass loses orthogonality in float32
            if basis is not None and basis.numel():
                basis = basis.to(c)
                c = c - basis @ (basis.T @ c)
        n = c.norm()
        c = c / n if n > 1e-6 else torch.zeros_like(c)
        A[:, j] = c
        if n <= 1e-6:
            B0[j] = 0.0
        else:
            done = torch.cat([done, c[:, None]], dim=1)
    return A, B0, len(bad)


DEFAULTS = {
    "rank": 16, "alpha": 1.0,  # s = alpha / r = 1/16 (KL2)
    "v_weight_threshold": 0.85, "t_weight_threshold": 0.2,  # KL3 (threshold set 2)
    "v_feature_threshold": 0.99, "t_feature_threshold": 0.99,  # KL10 (threshold set 1)
    "weight_subspace_side": "out",  # "out" reproduces the MTIL code, "in" is the consistent choice (KL13)
    "feature_stat": "mean_token_matrix",  # or "covariance" (KL14)
    # Corrections, off by default so the default reproduces the reference (KL15, KL18).
    "saturation_guard": False, "saturation_eps": 1e-4,
    "deficient_columns": "keep", "deficient_eps": 1e-4,  # keep | drop | reproject
    "svd_oversample": 4, "svd_niter": 4,  # torch.svd_lowrank q = 4r, niter = 4
    "lr": 1e-3, "weight_decay": 0.01, "batch_size": 64, "epochs": 10,
    "head_scale": 30.0,
}
# The reference's epoch list per MTIL order (KL12); KeepLoRA+ has its own.
PROFILES = {"mtil": {"epochs": [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 5]}, "micro": MICRO_LORA | {"alpha": 8.0}}
SCENARIOS = {"mtil-order2": {"epochs": [5, 2, 5, 5, 5, 5, 10, 10, 10, 10, 10]}}
PLUS_PROFILES = PROFILES | {"mtil": {"epochs": 5}}
PLUS_SCENARIOS = {"mtil-order2": {"epochs": [5, 1, 1, 5, 5, 5, 5, 5, 5, 5, 5]}}


class KeepLoRA(LoRAFamily):
    NAME = "keeplora"
    DESCRIPTION = ("KeepLoRA: LoRA restricted to the residual subspace (orthogonal to pre-trained principal "
                   "directions and earlier tasks' features), gradient-initialised, merged per task")
    PAPER = "Luo et al., KeepLoRA (ICLR 2026, arXiv 2601.19659); reference MaolinLuo/KeepLoRA MTIL/"
    DEFAULTS = DEFAULTS
    PROFILE_DEFAULTS = PROFILES
    SCENARIO_DEFAULTS = SCENARIOS
    SWITCHES = ("rank", "alpha", "weight_subspace_side", "feature_stat", "saturation_guard", "deficient_columns",
                "deficient_eps", "svd_oversample", "svd_niter", "v_weight_threshold", "t_weight_threshold",
                "v_feature_threshold", "t_feature_threshold")
    STATE = ("bases", "heads", "_weights_done")
    plus = False  # KeepLoRA+ adds a per-task cosine head

    def __init__(self, ctx):
        super().__init__(ctx)
        self.bases: dict[str, torch.Tensor] = {}  # module key -> protected basis P (D x k), input side
        self.heads: dict[str, torch.Tensor] = {}  # KeepLoRA+: task key -> frozen class means (C x E)
        self.adapters: dict[str, lora.LoRAAdapter] = {}
        self.report: dict = {}
        self.head: nn.Parameter | None = None
        self.current_key = ""
        self._weights_done = False
        if self.plus:
            ctx.classifier.logit_hooks.append(self._head_logits)

    # -- configuration ----------------------------------------------------------------------------------
    def thr(self, name: str, tower: str) -> float:
        return self.params[f"{TOWER_PREFIX[tower]}_{name}"]

    def switches(self) -> dict:
        return super().switches() | {"variant": self.NAME}

    # -- KL3: pre-trained principal subspace, once -----------------------------------------------------
    @torch.no_grad()
    def init_weight_bases(self, clip) -> None:
        side = self.params["weight_subspace_side"]
        for tower, _, i, mha in attention_modules(clip):
            thr = self.thr("weight_threshold", tower)
            if thr <= 1e-8:
                continue
            blocks = dict(zip("qkv", mha.in_proj_weight.chunk(3, dim=0))) | {"o": mha.out_proj.weight}
            for t, W in blocks.items():
                self.bases[f"{tower}.{i}.{t}"] = weight_basis(W.float(), thr, side)

    # -- KL4: gradient estimation ------------------------------------------------------------------------
    def estimate_gradients(self, strategy) -> dict[str, torch.Tensor]:
        """Mean over batches of the batch-mean CE gradient w.r.t. each q/k/v/o weight (grads enabled only
        on those weights: same result as the reference's all-parameter backward, far cheaper — KL4)."""
        clip, clf = self.classifier.clip, self.classifier
        weights = {}
        for tower, _, i, mha in attention_modules(clip):
            weights[(tower, i)] = (mha.in_proj_weight, mha.out_proj.weight)
            for w in weights[(tower, i)]:
                w.requires_grad_(True)
                w.grad = None
        loader = self.accum_loader(strategy)
        clf.train()  # as the reference (KL4); text features are then recomputed with gradients per batch
        n = 0
        for x, y in loader:
            x, y = x.to(strategy.device), y.to(strategy.device)
            with self.autocast():
                logits = clf(x)
            F.cross_entropy(logits.float(), y).backward()
            n += 1
        grads = {}
        for (tower, i), (w_in, w_out) in weights.items():
            for t, g in zip("qkv", w_in.grad.chunk(3, dim=0)):
                grads[f"{tower}.{i}.{t}"] = g / n
            grads[f"{tower}.{i}.o"] = w_out.grad / n
            for w in (w_in, w_out):
                w.grad = None
                w.requires_grad_(False)
        return grads

    def accum_loader(self, strategy):
        """The reference's accum_loader: the task's training data, shuffled, drop_last (equal batches)."""
        data = strategy.experience.dataset
        bs = self.params["batch_size"]
        return strategy.loader(data, shuffle=True, batch_size=bs, drop_last=len(data) >= bs)

    # -- KL5-KL6: initialisation ------------------------------------------------------------------------
    @torch.no_grad()
    def init_adapters(self, clip, grads) -> None:
        r = self.params["rank"]
        self.adapters = lora.attach(clip, rank=r, alpha=self.params["alpha"], init="zeros")
        skipped, norms, deficient = [], {}, {}
        for key, a in list(self.adapters.items()):
            Gt = grads[key].T.float()  # (in, out): rows index the input dimension
            before = Gt.norm()
            Gt = project_out(Gt, self.bases.get(key))
            after = Gt.norm()
            norms[key] = float(after / before) if before > 0 else 0.0
            if self.params["saturation_guard"] and (before == 0 or after / before < self.params["saturation_eps"]):
                skipped.append(key)  # KL15: the projected gradient is ~0, an SVD would give arbitrary directions
                continue
            q = min(self.params["svd_oversample"] * r, *Gt.shape)
            U, S, V = torch.svd_lowrank(Gt.cpu(), q=q, niter=self.params["svd_niter"])
            A, B0, lost = gradient_factors(U, S, V, r, self.bases.get(key), self.params["deficient_columns"],
                                           self.params["deficient_eps"])
            if lost:
                deficient[key] = lost
            a.A.copy_(A.to(a.A))
            a.B.copy_(B0.to(a.B))
            a.add_to_base(-1.0)  # W <- W - s (A B0)^T: the network function is unchanged at step 0
        for key in skipped:
            self.adapters.pop(key)
        if skipped:
            log.warning("KeepLoRA: %d module(s) skipped, projected gradient ~0 (protected subspace saturated): %s",
                        len(skipped), ", ".join(skipped[:8]) + (" ..." if len(skipped) > 8 else ""))
        for a in self.adapters.values():
            a.A.requires_grad_(False)
            a.B.requires_grad_(True)
        self.report["skipped_modules"] = skipped
        self.report["deficient_columns"] = deficient  # module -> columns below deficient_eps * S_0 (KL18)
        self.report["projected_grad_norm_ratio"] = _summary(norms)

    # -- KL11: KeepLoRA+ head -----------------------------------------------------------------------------
    @torch.no_grad()
    def init_head(self, strategy) -> None:
        clf = self.classifier
        C = clf.num_classes
        sums = None
        counts = torch.zeros(C, device=strategy.device)
        for x, y in self.accum_loader(strategy):
            x, y = x.to(strategy.device), y.to(strategy.device)
            with self.autocast():
                z = clf.image_features(x).float()
            sums = torch.zeros(C, z.shape[1], device=z.device) if sums is None else sums
            sums.index_add_(0, y, z)
            counts.index_add_(0, y, torch.ones_like(y, dtype=counts.dtype))
        means = F.normalize(sums / counts.clamp_min(1)[:, None], dim=-1)
        self.head = nn.Parameter(means)

    def _head_logits(self, clf, img_feats, logits):
        """Adds each class block's head (KL11). A CIL classifier spans several steps: their heads are stacked
        in class order, and blocks without a head (tasks not trained yet) add nothing."""
        blocks, any_head = [], False
        for key, n in clf.class_parts:
            W = self.head if self.head is not None and key == self.current_key else self.heads.get(key)
            any_head |= W is not None
            blocks.append(F.normalize(W.to(img_feats.device), dim=-1) if W is not None
                          else img_feats.new_zeros(n, img_feats.shape[1], dtype=torch.float32))
        if not any_head:
            return logits
        return logits + self.params["head_scale"] * img_feats.float() @ torch.cat(blocks).T

    # -- Avalanche callbacks --------------------------------------------------------------------------------
    def before_training_exp(self, strategy, **kw):
        clip = self.classifier.clip
        self.report = {}
        self.current_key = self.classifier.class_key
        if not self._weights_done:  # KL3, before the first task only
            self.init_weight_bases(clip)
            self._weights_done = True
        grads = self.estimate_gradients(strategy)
        self.init_adapters(clip, grads)
        if self.plus:
            self.init_head(strategy)

    def param_groups(self, strategy):
        """B of the visual adapters, B of the text adapters (and the KeepLoRA+ head): empty when every module
        is saturated, and then nothing trains on this task."""
        v = [a.B for k, a in self.adapters.items() if k.startswith("visual")]
        t = [a.B for k, a in self.adapters.items() if k.startswith("text")]
        groups = [{"params": g} for g in (v, t) if g]
        if groups and self.plus:
            groups.append({"params": [self.head]})
        return groups

    def after_training_exp(self, strategy, **kw):
        super().after_training_exp(strategy, **kw)  # merge: W <- W + s (A B)^T; net change s (A (B - B0))^T
        if self.plus:
            self.heads[self.current_key] = self.head.detach().clone()
            self.head = None
        self.update_bases(strategy)

    # -- feature statistics and subspace growth ------------------------------------------------------------
    def collect_features(self, strategy) -> StatAccumulator:
        """Images: the accumulation loader, in eval mode. Text: one forward of the task's prompts at full
        context (padding positions included, as the reference)."""
        self.classifier.eval()
        return self.attention_statistics(strategy, self.params["feature_stat"], self.accum_loader(strategy))

    def update_bases(self, strategy) -> None:
        acc = self.collect_features(strategy)
        self.report["feature_stat_mb"] = acc.nbytes() / 2**20
        sizes = {}
        for key in module_keys(self.classifier.clip):
            tower, block, t = key.split(".")
            M = acc.values[f"{tower}.{block}.{'o' if t == 'o' else 'qkv'}"]
            thr = self.thr("feature_threshold", tower)
            if thr > 0:
                self.bases[key], _ = grow_basis(self.bases.get(key), M, thr, acc.kind)
            sizes[key] = int(self.bases[key].shape[1]) if key in self.bases else 0
        self.report["basis_sizes"] = sizes

    def task_report(self) -> dict:
        return self.report


def _summary(d: dict[str, float]) -> dict:
    vals = list(d.values())
    return {"min": min(vals), "mean": sum(vals) / len(vals), "max": max(vals)} if vals else {}


class KeepLoRAPlus(KeepLoRA):
    NAME = "keeplora-plus"
    DESCRIPTION = "KeepLoRA+: KeepLoRA plus a per-task cosine head initialised from class means"
    PAPER = "Luo et al., KeepLoRA (ICLR 2026), CosineClassifier variant"
    PROFILE_DEFAULTS = PLUS_PROFILES
    SCENARIO_DEFAULTS = PLUS_SCENARIOS
    ALIASES = ("keeplora+",)
    plus = True
