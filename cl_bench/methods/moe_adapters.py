"""MoE-Adapters (docs/methods-moe.md): a mixture of adapter experts in every block of both towers, one router
per task, the activate-freeze rule, and DDAS routing between the experts and the pre-trained CLIP.

Per task t: train router t and every expert not frozen yet (CE over the task's classes), counting which
experts the router picks; then freeze the ``freeze_top`` most used experts of every block (they stay
selectable by later routers) and, with DDAS, fit task t's autoencoder on frozen image features of its
training images. At test time the task identity (``ddas: false``) or DDAS picks router t or experts off.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from cl_bench import ddas, moe
from cl_bench.api import MICRO_BUDGET, CLMethod
from cl_bench.errors import UserError

# The reference's per-dataset learning rates, MTIL Order I (train_full_shot / train_few_shot scripts). No
# Order-II script is shipped; the rates follow the dataset, so they apply to Order II as well.
LR_FULL = {"Aircraft": 5e-3, "Caltech101": 1e-3, "CIFAR100": 5e-3, "DTD": 1e-3, "EuroSAT": 1e-4, "Flowers": 1e-3,
           "Food": 1e-3, "MNIST": 1e-4, "OxfordPet": 1e-3, "StanfordCars": 1e-3, "SUN397": 1e-3}
LR_FEW = {"Aircraft": 8e-3, "Caltech101": 5e-4, "CIFAR100": 2e-4, "DTD": 5e-3, "EuroSAT": 1e-3, "Flowers": 1e-3,
          "Food": 1e-2, "MNIST": 1e-4, "OxfordPet": 1e-2, "StanfordCars": 1e-2, "SUN397": 1e-2}

DEFAULTS = {
    # Experts: 22 per block, top-2, bottleneck 64, dropout 0.1, output x0.1, all blocks of both towers.
    "experts": 22, "top_k": 2, "adapter_width": 64, "adapter_dropout": 0.1, "adapter_scale": 0.1,
    "towers": ["visual", "text"], "noisy_gating": True, "router_per_task": True,
    # Activate-freeze: after each task the 2 most used experts of every block stop training.
    "activate_freeze": True, "freeze_top": 2,
    # DDAS: sink autoencoder on reference data (1000 steps), one per task (300 steps), code 100, Adam lr 0.01
    # x0.1 every 10 epochs, wd 1e-4, batch 64; threshold 0.0655; one decision per evaluation batch.
    "ddas": True, "ddas_threshold": 0.0655, "ddas_decision": "batch", "ddas_code": 100,
    "ddas_iterations": 301, "ddas_ref_iterations": 1001, "ddas_lr": 0.01, "ddas_weight_decay": 1e-4,
    "ddas_batch_size": 64, "ddas_ref_count": 2000,
    # Training: 1000 iterations (0..1000), batch 64, AdamW wd 0, warm-up 100 + cosine, ls 0.2, fp32.
    "iterations": 1001, "batch_size": 64, "eval_batch_size": 128, "lr": 1e-3, "lr_per_task": LR_FULL,
    "weight_decay": 0.0, "warmup": 100, "label_smoothing": 0.2, "precision": "fp32",
}
# The reference's cil/ code: 2 experts, top-2 (dense), one shared router, no freezing, no DDAS, one epoch,
# lr 1e-3, 30 warm-up steps, no label smoothing, batch 128 (CIFAR-100) or 64 (TinyImageNet).
CIL = {"experts": 2, "top_k": 2, "router_per_task": False, "activate_freeze": False, "ddas": False,
       "iterations": 0, "epochs": 1, "lr": 1e-3, "lr_per_task": {}, "warmup": 30, "label_smoothing": 0.0}
PROFILES = {
    # The shared micro budget; lr not tuned yet (the top of the reference's range, for 150 steps instead of
    # 1000). Code 16 keeps the autoencoder a bottleneck on the tiny backbone's 128-d features (ViT-B/16: 512
    # -> 100), otherwise it learns the identity and cannot tell domains apart.
    "micro": MICRO_BUDGET | {"lr": 5e-3, "lr_per_task": {}, "warmup": 15, "label_smoothing": 0.0,
                             "eval_batch_size": 256, "ddas_code": 16},
    "cil": CIL | {"batch_size": 128},
}
SCENARIOS = {
    "mtil-fewshot": {"iterations": 501, "lr_per_task": LR_FEW, "ddas_threshold": 0.0585},
    "cil-tinyimagenet": {"batch_size": 64},
    "cil-micro": {k: CIL[k] for k in ("experts", "top_k", "router_per_task", "activate_freeze", "ddas")},
}


class MoEAdapters(CLMethod):
    NAME = "moe-adapters"
    DESCRIPTION = ("MoE-Adapters: per-block mixture of adapter experts with per-task top-k routers, activate-"
                   "freeze, and DDAS autoencoders routing between the experts and zero-shot CLIP")
    PAPER = ("Yu et al., Boosting Continual Learning of Vision-Language Models via Mixture-of-Experts Adapters "
             "(CVPR 2024); reference JiazuoYu/MoE-Adapters4CL mtil/ and cil/")
    DEFAULTS = DEFAULTS
    PROFILE_DEFAULTS = PROFILES
    SCENARIO_DEFAULTS = SCENARIOS
    SWITCHES = ("experts", "top_k", "adapter_width", "adapter_dropout", "adapter_scale", "towers", "noisy_gating",
                "router_per_task", "activate_freeze", "freeze_top", "ddas", "ddas_threshold", "ddas_decision",
                "ddas_code", "ddas_iterations", "ddas_ref_iterations")
    STATE = ("frozen", "trained", "autoencoders")

    def __init__(self, ctx):
        super().__init__(ctx)
        p = self.params
        self._check(p)
        self.n_routers = len(ctx.scenario.tasks) if p["router_per_task"] else 1
        self.blocks = moe.attach(ctx.classifier.clip, p["towers"], experts=p["experts"], routers=self.n_routers,
                                 top_k=p["top_k"], width=p["adapter_width"], dropout=p["adapter_dropout"],
                                 scale=p["adapter_scale"], noisy=p["noisy_gating"])
        self.frozen: dict[str, list[int]] = {}  # block key -> experts frozen so far
        self.trained: list[int] = []  # task indices whose router (or the shared one) has been trained
        self.autoencoders: dict[str, dict] = {}  # DDAS: "task index" or ddas.SINK -> autoencoder state dict
        self.report: dict = {}
        self.text_route: int | None = None
        self.routes: torch.Tensor | None = None  # per-sample routes of the evaluation batch (-1: zero-shot)
        self._text: dict[int, torch.Tensor] = {}  # route -> class embeddings, per evaluation class set
        self._aes: dict[str, ddas.AutoEncoder] = {}
        self.eval_task = 0
        if p["ddas"]:
            self.reference_dataset(check_only=True)  # fail before training when the reference data is missing
        ctx.classifier.logit_hooks.append(self._route_logits)

    @staticmethod
    def _check(p) -> None:
        if not 1 <= p["top_k"] <= p["experts"]:
            raise UserError(f"moe-adapters needs 1 <= top_k <= experts, got top_k={p['top_k']} "
                            f"experts={p['experts']}")
        if not 0 <= p["freeze_top"] <= p["experts"]:
            raise UserError(f"freeze_top={p['freeze_top']} must be between 0 and experts={p['experts']}")
        if p["ddas_decision"] not in ("batch", "sample"):
            raise UserError(f"ddas_decision={p['ddas_decision']!r}: use batch (the reference) or sample")
        bad = set(p["towers"]) - set(moe.ROOTS)
        if bad or not p["towers"]:
            raise UserError(f"towers={p['towers']}: choose from {sorted(moe.ROOTS)}")

    def router(self, task: int) -> int:
        return task if self.params["router_per_task"] else 0

    def set_routes(self, image, text) -> None:
        moe.set_route(self.blocks, "visual", image)
        if text != self.text_route:
            self.classifier.invalidate()  # the class embeddings depend on the text route
        self.text_route = text
        moe.set_route(self.blocks, "text", text)

    # -- training -----------------------------------------------------------------------------------------
    def before_training_exp(self, strategy, **kw):
        t = strategy.experience.current_experience
        r = self.router(t)
        self.report, self.routes = {}, None
        for key, b in self.blocks.items():
            b.counts.zero_()
            frozen = set(self.frozen.get(key, ()))
            for e, expert in enumerate(b.experts):
                expert.requires_grad_(e not in frozen)
            for i, (g, n) in enumerate(zip(b.w_gate, b.w_noise)):
                g.requires_grad_(i == r)
                n.requires_grad_(i == r)
        self.set_routes(r, r)

    def after_training_exp(self, strategy, **kw):
        t = strategy.experience.current_experience
        for b in self.blocks.values():
            b.requires_grad_(False)
        self.set_routes(None, None)
        self.report["usage"] = {k: b.counts.tolist() for k, b in self.blocks.items()}
        if self.params["activate_freeze"]:
            newly = 0
            for key, b in self.blocks.items():
                order = sorted(range(len(b.counts)), key=lambda e: (-int(b.counts[e]), e))
                top = order[: self.params["freeze_top"]]
                before = set(self.frozen.get(key, ()))
                self.frozen[key] = sorted(before | set(top))
                newly += len(set(top) - before)
            self.report["newly_frozen"] = newly
            self.report["frozen_total"] = sum(len(v) for v in self.frozen.values())
        if t not in self.trained:
            self.trained.append(t)
        if self.params["ddas"]:
            self.fit_autoencoders(strategy, t)

    # -- DDAS ---------------------------------------------------------------------------------------------
    def reference_dataset(self, check_only: bool = False):
        """Images for the sink autoencoder: the tiny backbones' own pre-training world, else TinyImageNet's
        training split under the data root."""
        from cl_bench import registry

        ctx = self.ctx
        if getattr(ctx.backbone, "reference_data", None) is not None:  # the tiny backbones' pre-training world
            if check_only:
                return None
            x, _ = ctx.backbone.reference_data(self.params["ddas_ref_count"], 20_000 + ctx.config.seed)
            return TensorDataset(x, torch.zeros(len(x), dtype=torch.long))
        data = registry.get_scenario("cil-tinyimagenet").data  # reached through the registry: no benchmark import
        root = data.resolve_root(self.params.get("data_root", ""))
        folder = Path(root) / "tiny-imagenet-200" / "train"
        if not folder.is_dir():
            raise UserError(f"moe-adapters DDAS needs TinyImageNet as reference data, not found: {folder} "
                            "(put tiny-imagenet-200 under the data root, or --set ddas=false)")
        if check_only:
            return None
        return data.images("TinyImageNet", "train", root, ctx.backbone)

    @torch.no_grad()
    def frozen_features(self, x: torch.Tensor) -> torch.Tensor:
        """DDAS inputs: the pre-trained CLIP's image embedding (experts off), in (0, 1)."""
        saved = [b.route for k, b in self.blocks.items() if k.startswith("visual.")]
        moe.set_route(self.blocks, "visual", None)
        with self.autocast():
            f = self.classifier.image_features(x)
        for b, r in zip((b for k, b in self.blocks.items() if k.startswith("visual.")), saved):
            b.route = r
        return ddas.ae_input(f)

    def fit_autoencoders(self, strategy, t: int) -> None:
        p, dev = self.params, strategy.device
        self.classifier.eval()
        fit = dict(code=p["ddas_code"], lr=p["ddas_lr"], weight_decay=p["ddas_weight_decay"], device=dev)
        bs = p["ddas_batch_size"]
        dim = int(self.classifier.clip.visual.output_dim)
        if ddas.SINK not in self.autoencoders:
            data = self.reference_dataset()
            gen = torch.Generator().manual_seed(7919 * (self.ctx.config.seed + 1))
            loader = DataLoader(data, batch_size=bs, shuffle=True, generator=gen, num_workers=p["num_workers"])
            ae = ddas.train_autoencoder(lambda: (self.frozen_features(x.to(dev)) for x, _ in loader), dim,
                                        iterations=p["ddas_ref_iterations"], decay_every=10 * len(loader),
                                        seed=self.ctx.config.seed * 1000 + 999, **fit)
            self.autoencoders[ddas.SINK] = {k: v.detach().cpu() for k, v in ae.state_dict().items()}
        loader = strategy.loader(strategy.experience.dataset, shuffle=True, batch_size=bs)
        ae = ddas.train_autoencoder(lambda: (self.frozen_features(x.to(dev)) for x, *_ in loader), dim,
                                    iterations=p["ddas_iterations"], decay_every=10 * len(loader),
                                    seed=self.ctx.config.seed * 1000 + t, **fit)
        self.autoencoders[str(t)] = {k: v.detach().cpu() for k, v in ae.state_dict().items()}

    def autoencoder_modules(self, device) -> dict[str, ddas.AutoEncoder]:
        """The sink first (it wins ties, as in the reference), then the trained tasks' autoencoders."""
        out = {}
        for key in [ddas.SINK, *[str(t) for t in self.trained]]:
            sd = self.autoencoders[key]
            ae = ddas.AutoEncoder(sd["enc.weight"].shape[1], sd["enc.weight"].shape[0])
            ae.load_state_dict(sd)
            out[key] = ae.to(device).eval()
        return out

    # -- evaluation ---------------------------------------------------------------------------------------
    def before_eval_exp(self, strategy, **kw):
        self.eval_task = strategy.experience.current_experience
        self._text = {}
        use_ddas = self.params["ddas"] and self.trained and ddas.SINK in self.autoencoders
        self._aes = self.autoencoder_modules(strategy.device) if use_ddas else {}

    def eval_routes(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample router index for an evaluation batch, -1 for the pre-trained path."""
        n = x.shape[0]
        if not self.trained:
            return torch.full((n,), -1, dtype=torch.long)
        if not self.params["ddas"]:
            j = self.eval_task
            seen = j in self.trained or not self.params["router_per_task"]
            return torch.full((n,), self.router(j) if seen else -1, dtype=torch.long)
        return self.routes_from_features(self.frozen_features(x))

    @torch.no_grad()
    def routes_from_features(self, u: torch.Tensor) -> torch.Tensor:
        """DDAS: per-sample router index from autoencoder inputs ``u`` (N, D), -1 for zero-shot."""
        errors = {k: ae.errors(u.to(next(ae.parameters()).device)) for k, ae in self._aes.items()}
        picks = ddas.select(errors, self.params["ddas_threshold"], self.params["ddas_decision"] == "batch")
        return torch.tensor([-1 if k is None else self.router(int(k)) for k in picks], dtype=torch.long)

    def before_eval_forward(self, strategy, **kw):
        routes = self.eval_routes(strategy.mb_x)
        common = Counter(routes.tolist()).most_common(1)[0][0]
        self.routes = routes
        self.set_routes(routes, None if common < 0 else common)
        self.count_routes(routes)

    def count_routes(self, routes: torch.Tensor) -> None:
        """Where the evaluated task's test images went: its own experts, zero-shot, or another task's experts."""
        name = self.ctx.scenario.tasks[self.eval_task].name
        stats = self.report.setdefault("routing", {}).setdefault(name, {"own": 0, "zero_shot": 0, "other": 0})
        own = (routes == self.router(self.eval_task)) & (self.eval_task in self.trained)
        stats["own"] += int(own.sum())
        stats["zero_shot"] += int((routes < 0).sum())
        stats["other"] += int(((routes >= 0) & ~own).sum())

    def after_eval_exp(self, strategy, **kw):
        self.routes = None
        self.set_routes(None, None)

    def text_for(self, route: int) -> torch.Tensor:
        """Class embeddings of the current class set through router ``route`` (-1: pre-trained)."""
        if route not in self._text:
            keep = self.text_route
            self.set_routes(self.routes, None if route < 0 else route)
            self._text[route] = self.classifier.text_features()
            self.set_routes(self.routes, keep)
        return self._text[route]

    def _route_logits(self, clf, img, logits):
        """Rows whose route differs from the text route the classifier used are recomputed with the class
        embeddings of their own route (per-sample DDAS mixes routes within a batch)."""
        if self.routes is None or clf.training:
            return logits
        text = -1 if self.text_route is None else self.text_route
        other = self.routes.to(logits.device) != text
        if not other.any():
            return logits
        logits = logits.clone()
        for r in self.routes[other.cpu()].unique().tolist():
            rows = (self.routes == r).nonzero().squeeze(1).to(logits.device)
            txt = self.text_for(r).to(img.dtype)
            logits[rows] = (clf.clip.logit_scale.exp() * img[rows] @ txt.T).to(logits.dtype)
        return logits

    # -- what the results file records --------------------------------------------------------------------
    def task_report(self) -> dict:
        return self.report
