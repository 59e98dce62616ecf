"""Command line: ``cl-bench run | list | show | leaderboard | data check|fetch|index | sweep | bench | pretrain-tiny``
(docs/ holds a guide per command)."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.markup import escape

from .errors import UserError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cl-bench", description="Continual-learning benchmark for CLIP models.")
    ap.add_argument("--debug", action="store_true", help="show the full traceback of an unexpected error")
    sub = ap.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="train a method on a scenario, evaluating after every task")
    r.add_argument("--method", required=True, help="method name (see `cl-bench list`)")
    r.add_argument("--scenario", required=True, help="scenario name (see `cl-bench list`)")
    r.add_argument("--backbone", default=None, help="tiny, tiny-test or an open_clip model (default: scenario's)")
    r.add_argument("--pretrained", default=None, help="open_clip pretrained tag (openai), a weights file, or none "
                   "(random weights)")
    r.add_argument("--data-root", default=None, metavar="DIR",
                   help="folder holding the datasets, for scenarios that read data from disk (default: "
                        "$CL_BENCH_DATA)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", default="results", help="results root (default: results)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario or method hyper-parameter (repeatable)")
    r.add_argument("--config", default=None, help="YAML file of hyper-parameters (same keys as --set)")
    r.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--resume", action="store_true", help="continue an interrupted run from its last task")

    sub.add_parser("list", help="registered methods and scenarios")

    s = sub.add_parser("show", help="render the tables of a results file")
    s.add_argument("file")

    lb = sub.add_parser("leaderboard", help="tables of mean ± std over seeds from results files")
    lb.add_argument("results", nargs="+", help="results files or folders (searched for seed*.json)")
    lb.add_argument("--scenario", default=None, help="which scenario, when the files hold several")
    lb.add_argument("--out", default=None, help="write to this file instead of stdout")
    lb.add_argument("--format", choices=["md", "csv"], default="md")
    lb.add_argument("--show", action="store_true", help="also render the tables in the terminal")

    d = sub.add_parser("data", help="inspect the on-disk datasets of the real scenarios")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dc = dsub.add_parser("check", help="which datasets of a scenario are found, missing or wrongly laid out")
    dc.add_argument("--scenario", required=True, help="scenario name, e.g. mtil or cil-cifar100")
    dc.add_argument("--data-root", default=None, metavar="DIR", help="folder holding the datasets "
                    "(default: $CL_BENCH_DATA)")
    dc.add_argument("--deep", action="store_true", help="also decode every image to find unreadable files")
    from .registry import data_commands

    for extension in data_commands():  # e.g. data fetch and data index, from the real-data benchmarks
        extension.add_parsers(dsub)

    sw = sub.add_parser("sweep", help="run every (method, seed) of scenarios here or on SLURM, or report on a sweep",
                        description="Run every (scenario, method, seed) as a separate `cl-bench run --resume`, "
                        "locally or as a SLURM job array; docs/sweeps.md is the guide.")
    sw.add_argument("--scenario", nargs="+", default=None, help="one or more scenarios")
    sw.add_argument("--methods", nargs="+", default=None, help="method names, or all (default)")
    sw.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2")
    sw.add_argument("--out", default="results")
    sw.add_argument("--device", default="auto")
    sw.add_argument("--backbone", default=None, help="passed to every run (default: the scenario's)")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to every run")
    sw.add_argument("--leaderboard", default=None, metavar="FILE.md", help="write the leaderboard here")
    sw.add_argument("--fresh", action="store_true",
                    help="start every run again (default: keep finished runs, resume interrupted ones)")
    sw.add_argument("--executor", choices=["local", "slurm"], default="local",
                    help="local: child processes here (default); slurm: one job per run as a job array")
    sw.add_argument("--status", default=None, metavar="DIR",
                    help="instead of running: a table of every run under this results folder (with --scenario, "
                         "also the planned runs that are missing)")
    loc = sw.add_argument_group("local executor")
    loc.add_argument("--jobs", type=int, default=None,
                     help="runs at once (default: 1 on CPU; one per GPU slot on GPUs)")
    loc.add_argument("--runs-per-gpu", type=int, default=1, metavar="K",
                     help="with N visible GPUs, pin each run to one GPU and keep at most N*K going (default 1)")
    sl = sw.add_argument_group("slurm executor (flags win over --slurm-config)")
    sl.add_argument("--slurm-config", default=None, metavar="FILE.yaml",
                    help="partition, time, gpus, cpus, mem_gb, max_running, plus any submitit SLURM parameter")
    sl.add_argument("--partition", default=None)
    sl.add_argument("--time", default=None, help="time limit per job: minutes or D-HH:MM:SS (default 720)")
    sl.add_argument("--gpus", type=int, default=None, help="GPUs per job (default 1)")
    sl.add_argument("--cpus", type=int, default=None, help="CPUs per job (default 8)")
    sl.add_argument("--mem-gb", type=float, default=None, help="memory per job in GB (default 64)")
    sl.add_argument("--max-running", type=int, default=None, help="jobs of the array running at once (default 64)")
    sl.add_argument("--wait", action="store_true", help="wait for the jobs, then report (and write --leaderboard)")

    b = sub.add_parser("bench", help="training/eval img/s, peak memory and MFU of a method on a backbone")
    b.add_argument("--backbone", default="tiny-test", help="tiny, tiny-test or an open_clip ViT (default: tiny-test)")
    b.add_argument("--pretrained", default="none", help="none (random weights, default), a tag or a weights file")
    b.add_argument("--method", required=True, help="method name (see `cl-bench list`)")
    b.add_argument("--batch-size", type=int, default=64)
    b.add_argument("--steps", type=int, default=20, help="timed steps (default: 20)")
    b.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    b.add_argument("--classes", type=int, default=10, help="classes (prompts) of the synthetic task (default: 10)")
    b.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"],
                   help="auto: bf16 on CUDA where supported, fp32 on CPU")
    b.add_argument("--compile", action="store_true", help="torch.compile the image encoder")
    b.add_argument("--peak-tflops", type=float, default=None, help="the device's dense peak (default: from the "
                   "table of known GPUs; none on CPU)")
    b.add_argument("--device", default="auto", help="cpu, cuda or auto")
    b.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a method hyper-parameter (repeatable)")
    b.add_argument("--out", required=True, metavar="FILE.json", help="write the report here")

    p = sub.add_parser("pretrain-tiny", help="pre-train and cache the tiny backbone (done automatically)")
    p.add_argument("--backbone", default="tiny", choices=["tiny", "tiny-test"])
    return ap


def cmd_run(args, console: Console) -> int:
    from . import registry
    from .config import make_config, parse_set
    from .render import make_progress, print_results
    from .runner import Run

    method, scenario = registry.get_method(args.method), registry.get_scenario(args.scenario)
    overrides = parse_set(args.overrides)
    if args.data_root is not None:
        if "data_root" not in scenario.defaults:
            raise UserError(f"--data-root: scenario {scenario.name} reads no data from disk; drop --data-root "
                            "(it is for scenarios such as mtil or cil-cifar100)")
        if "data_root" in overrides and str(overrides["data_root"]) != args.data_root:
            raise UserError("--data-root and --set data_root= disagree; give the data root once")
        overrides["data_root"] = args.data_root
    cfg = make_config(method=method, scenario=scenario, backbone=args.backbone, pretrained=args.pretrained,
                      seed=args.seed, device=args.device, out=args.out, config_file=args.config,
                      overrides=overrides)
    check_writable(args.out)
    progress = make_progress(console, args.quiet)
    run = Run(cfg, progress=progress, log=console.print)
    try:
        if progress is not None:
            with progress:
                res = run.execute(resume=args.resume)
        else:
            res = run.execute(resume=args.resume)
    except KeyboardInterrupt:
        console.print(f"interrupted: finished tasks are in {run.path}; continue with the same command "
                      "plus --resume")
        return 130
    print_results(console, res)
    console.print(f"results: {run.path}")
    return 0


def check_writable(out: str) -> None:
    """Refuse an unusable --out before anything trains."""
    import tempfile
    from pathlib import Path

    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the results (e.g. --out results)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise UserError(f"--out {out} is not writable ({e.strerror or type(e).__name__}); give a folder you can "
                        "write to") from None


def cmd_list(args, console: Console) -> int:
    from rich.table import Table

    from . import registry

    for title, items in (("Methods", registry.methods()), ("Scenarios", registry.scenarios())):
        t = Table(title=title, title_justify="left")
        t.add_column("name", style="bold")
        t.add_column("description")
        t.add_column("source")
        for name, (obj, source) in sorted(items.items()):
            aliases = getattr(obj, "ALIASES", ())
            t.add_row(name + (f" ({', '.join(aliases)})" if aliases else ""),
                      getattr(obj, "DESCRIPTION", None) or obj.description, source)
        console.print(t)
    return 0


def cmd_show(args, console: Console) -> int:
    from .render import print_results
    from .results import load_results

    print_results(console, load_results(args.file))
    return 0


def cmd_pretrain(args, console: Console) -> int:
    from .backbone import tiny_path
    from .pretrain import pretrain_tiny
    from .render import make_progress

    progress = make_progress(console, False)
    if progress is not None:
        with progress:
            rep = pretrain_tiny(args.backbone, progress=progress)
    else:
        rep = pretrain_tiny(args.backbone)
    console.print(f"pre-trained {args.backbone} in {rep['seconds']:.0f} s (loss {rep['loss_first']:.2f} -> "
                  f"{rep['loss_last']:.2f}); cached at {tiny_path(args.backbone)}")
    return 0


def _write(path: str, text: str, console: Console) -> None:
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    console.print(f"wrote {path}")


def cmd_leaderboard(args, console: Console) -> int:
    from .leaderboard import build_leaderboard, load_runs, to_csv, to_markdown
    from .render import print_leaderboard

    lb = build_leaderboard(load_runs(args.results), scenario=args.scenario)
    text = to_markdown(lb) if args.format == "md" else to_csv(lb)
    if args.show:
        print_leaderboard(lb, console)
    if args.out:
        _write(args.out, text, console)
    elif not args.show:
        print(text, end="")
    return 0


def cmd_data(args, console: Console) -> int:
    """``data check``: one row per dataset of the scenario; exit 1 when any is missing or wrongly laid out."""
    from .registry import data_commands

    for extension in data_commands():  # fetch, index
        if args.data_command in extension.DATA_COMMANDS:
            return extension.DATA_COMMANDS[args.data_command](args, console)
    import os

    from rich.markup import escape
    from rich.table import Table

    from . import registry

    scenario = registry.get_scenario(args.scenario)
    if scenario.data is None:
        with_data = sorted(name for name, (s, _) in registry.scenarios().items() if s.data is not None)
        raise UserError(f"scenario {scenario.name} reads no data from disk; nothing to check (try "
                        f"{', '.join(with_data)})")
    root = scenario.data.resolve_root(args.data_root)
    rows = scenario.data.check(root, deep=args.deep)
    style = {"found": "green", "missing": "red", "wrong layout": "red"}
    t = Table(title=escape(f"{scenario.name}: datasets under {root}"), title_justify="left",
              caption="train, test: samples found / expected", caption_justify="left")
    t.add_column("dataset", style="bold", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("train", justify="right", no_wrap=True)
    t.add_column("test", justify="right", no_wrap=True)
    t.add_column("folder", overflow="fold", no_wrap=True)

    def count(found, expected):
        text = f"{'-' if found is None else f'{found:,}'} / {expected:,}"
        return f"[yellow]{text}[/yellow]" if found is not None and found != expected else text

    for r in rows:
        t.add_row(r.dataset, f"[{style[r.status]}]{r.status}[/{style[r.status]}]",
                  count(r.train, r.expected_train), count(r.test, r.expected_test),
                  escape(os.path.relpath(r.path, root) + "/"))
    console.print(t)
    for r in rows:  # full paths on their own lines (soft-wrapped, so they can be copied)
        if r.status == "missing":
            console.print(f"[red]{r.dataset} missing[/red]: " + escape(f"expected folder {r.path} with layout "
                          f"{root / r.layout}"), soft_wrap=True, highlight=False)
        elif r.status == "wrong layout":
            console.print(f"[red]{r.dataset} wrong layout[/red]: {escape(r.message)}", soft_wrap=True,
                          highlight=False)
    bad = [r for r in rows if r.status != "found"]
    if bad:
        console.print(f"{len(bad)} of {len(rows)} datasets missing or wrongly laid out: "
                      f"{', '.join(r.dataset for r in bad)}")
        return 1
    sizes = [r.dataset for r in rows if not r.sizes_match]
    console.print(f"all {len(rows)} datasets found" + (f"; sample counts differ from the protocol's (yellow) for "
                                                        f"{', '.join(sizes)}" if sizes else ""), soft_wrap=True)
    return 0


SLURM_FLAGS = ("slurm_config", "partition", "time", "gpus", "cpus", "mem_gb", "max_running")


def cmd_sweep(args, console: Console) -> int:
    from .sweep import plan, run_args

    if args.status is not None:
        from .sweep_status import collect, print_status

        expected = plan(args.methods or ["all"], args.seeds or [0, 1, 2], args.scenario) if args.scenario else None
        print_status(console, args.status, collect(args.status, expected))
        return 0
    if not args.scenario:
        raise UserError("sweep needs --scenario (or --status DIR to report on a sweep)")
    if args.leaderboard and len(args.scenario) > 1:
        raise UserError("--leaderboard takes one scenario; sweep one at a time or run `cl-bench leaderboard "
                        "OUT/SCENARIO` per scenario afterwards")
    given = [f"--{k.replace('_', '-')}" for k in SLURM_FLAGS if getattr(args, k) is not None] + \
        (["--wait"] if args.wait else [])
    if args.executor == "local" and given:
        raise UserError(f"{', '.join(given)} only apply to --executor slurm; add it or drop them")
    if args.executor == "slurm" and (args.jobs is not None or args.runs_per_gpu != 1):
        raise UserError("--jobs and --runs-per-gpu apply to --executor local; with slurm use --max-running and "
                        "--gpus")
    specs = plan(args.methods or ["all"], args.seeds or [0, 1, 2], args.scenario)
    extra = run_args(args.backbone, args.overrides)

    def say(msg: str) -> None:
        console.print(msg, soft_wrap=True, highlight=False)

    if args.executor == "slurm":
        failed = _sweep_slurm(args, specs, extra, say)
        if failed is None:
            return 0
    else:
        from .sweep import SweepInterrupted, sweep

        try:
            done = sweep(specs=specs, out=args.out, device=args.device, extra=extra, jobs=args.jobs,
                         runs_per_gpu=args.runs_per_gpu, fresh=args.fresh, log=say)
        except SweepInterrupted as e:
            say(f"sweep interrupted: {e}; no queued run was started. Re-run the same command to resume.")
            return 130
        failed = [(s.method, s.seed) for s, code, _ in done if code != 0]
    if args.leaderboard:
        from pathlib import Path

        from .leaderboard import build_leaderboard, load_runs, to_markdown

        [scenario] = args.scenario
        lb = build_leaderboard(load_runs([Path(args.out) / scenario]), scenario=scenario)
        _write(args.leaderboard, to_markdown(lb), console)
    if failed:
        console.print(f"[red]{len(failed)} run(s) failed:[/red] {failed}")
        return 1
    return 0


def _sweep_slurm(args, specs, extra, say) -> list | None:
    """Submit the unfinished runs as one job array. Returns the failed runs after --wait, else None."""
    from pathlib import Path

    from .slurm import pending, slurm_executor, slurm_options, submit

    if args.leaderboard and not args.wait:
        raise UserError("--leaderboard with --executor slurm needs --wait (or run `cl-bench leaderboard` once "
                        "the jobs are done)")
    opts = slurm_options({k: getattr(args, k) for k in SLURM_FLAGS if k != "slurm_config"}, args.slurm_config)
    executor = slurm_executor(Path(args.out) / "logs" / "submitit" / "%j", opts)
    todo, finished = pending(specs, out=args.out, device=args.device, backbone=args.backbone,
                             overrides=args.overrides, fresh=args.fresh)
    if finished:
        say(f"{len(finished)} of {len(specs)} run(s) already finished; not submitted")
    if not todo:
        say("nothing to submit")
        return [] if args.wait else None
    check_writable(args.out)
    jobs = submit(executor, todo, out=args.out, device=args.device, extra=extra,
                  fresh=args.fresh)
    status = f"cl-bench sweep --status {args.out}"
    say(f"submitted {len(jobs)} run(s) as SLURM job array {jobs[0].job_id.split('_')[0]} (at most "
        f"{opts['max_running']} at once, {opts['time']} min each, requeued with --resume up to "
        f"{opts['max_requeues']} times); follow them with `{status}`")
    if not args.wait:
        return None
    failed = []
    for spec, job in zip(todo, jobs):
        try:
            job.result()
            say(f"ok     {spec.scenario} {spec.method} seed {spec.seed}")
        except Exception as e:  # the job's own error, recorded by submitit
            say(f"FAILED {spec.scenario} {spec.method} seed {spec.seed}: {' '.join(str(e).split())[:300]}")
            failed.append((spec.method, spec.seed))
    return failed


def cmd_bench(args, console: Console) -> int:
    from .bench import report_table, run_bench, write_report
    from .config import parse_set

    report = run_bench(backbone=args.backbone, pretrained=args.pretrained, method=args.method,
                       batch_size=args.batch_size, steps=args.steps, warmup=args.warmup, classes=args.classes,
                       precision=args.precision, compile=args.compile, peak_tflops=args.peak_tflops,
                       device=args.device, overrides=parse_set(args.overrides), log=console.print)
    console.print(report_table(report))
    console.print(f"wrote {write_report(report, args.out)}")
    return 0


COMMANDS = {"sweep": cmd_sweep, "run": cmd_run, "list": cmd_list, "show": cmd_show, "pretrain-tiny": cmd_pretrain,
            "leaderboard": cmd_leaderboard, "data": cmd_data, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    err = Console(stderr=True)
    try:
        return COMMANDS[args.command](args, console)
    except UserError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True, highlight=False)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        return 130
    except Exception as e:  # a bug or an unforeseen condition: one line (a run's results are marked failed)
        if args.debug:
            raise
        msg = " ".join(str(e).split())[:500] or "(no message)"
        err.print(f"[red]error:[/red] {escape(type(e).__name__)}: {escape(msg)} (re-run with --debug for the "
                  "traceback)", soft_wrap=True, highlight=False)
        return 1


if __name__ == "__main__":
    sys.exit(main())
