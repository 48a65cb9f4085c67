"""``xtts-tune``: a thin command line over the library. It parses arguments, calls one library function,
and owns the terminal (progress lines, tables, one-line errors for user mistakes)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class Progress:
    """Live progress line on a terminal; evaluation lines always."""

    def __init__(self, stream=sys.stdout, prefix: str = ""):
        self.stream = stream
        self.tty = stream.isatty()
        self.prefix = prefix
        self.last_val = None
        self.best = None
        self._live = False

    def _line(self, text: str) -> None:
        if self._live:
            self.stream.write("\r\033[K")
            self._live = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            self._line(f"{self.prefix}{event['params']}; {event['planned_steps']} optimizer steps planned")
        elif kind == "step" and self.tty:
            val = f"{self.last_val:.4f}" if self.last_val is not None else "-"
            train = f"{event['train_loss']:.4f}" if event.get("train_loss") is not None else "-"
            self.stream.write(
                f"\r\033[K{self.prefix}epoch {event['epoch']:.2f}  step {event['step']}/{event['planned_steps']}  "
                f"train {train}  last val {val}"
            )
            self.stream.flush()
            self._live = True
        elif kind == "eval":
            self.last_val = event["val_loss"]
            self.best = event.get("best_val_loss")
            train = f"{event['train_loss']:.4f}" if event.get("train_loss") is not None else "   -  "
            self._line(
                f"{self.prefix}eval  step {event['step']:>5}  epoch {event['epoch']:.2f}  train {train}  "
                f"val {event['val_loss']:.4f} (mel {event['val_loss_mel_ce']:.4f} text {event['val_loss_text_ce']:.4f})"
                f"  best {self.best:.4f}"
            )
        elif kind == "message":
            self._line(f"{self.prefix}{event['text']}")


def _quiet_third_party() -> None:
    for name in ("TTS", "trainer", "fsspec", "numba", "matplotlib", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
    warnings.filterwarnings("ignore", category=FutureWarning)


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean a user mistake: printed as one line, no traceback."""
    from xtts_tune.analysis import NoRecommendationError
    from xtts_tune.config import ConfigError
    from xtts_tune.confirm import ConfirmError
    from xtts_tune.data import DataError
    from xtts_tune.demo_data import DemoDataError
    from xtts_tune.export import ExportError
    from xtts_tune.model import BaseModelError
    from xtts_tune.study import StorageError, StudyMismatchError

    return (
        ConfigError, DataError, BaseModelError, DemoDataError, FileNotFoundError, StudyMismatchError,
        StorageError, NoRecommendationError, ConfirmError, ExportError,
    )


# --- commands ------------------------------------------------------------------------------------------


def cmd_trial(args) -> int:
    from xtts_tune.config import load_config
    from xtts_tune.trial import run_trial

    cfg = load_config(args.config, args.set)
    progress = Progress()
    run_dir = Path(args.run_dir) if args.run_dir else None
    print(f"trial: {cfg.source} → base {cfg.base_model}, data {cfg.data_path}")
    result = run_trial(cfg, run_dir=run_dir, progress=progress)
    _print_trial_result(result)
    return 0


def _print_trial_result(result) -> None:
    if result.stop_reason == "early_stopped":
        print(f"early stopping fired at step {result.steps} (no improvement for the patience window)")
    else:
        print(f"finished: {result.stop_reason} after {result.steps}/{result.planned_steps} optimizer steps")
    if result.skipped_batches:
        print(f"skipped {result.skipped_batches} micro-batch(es) with a non-finite loss")
    print(f"best validation loss {result.best_val_loss:.4f} at step {result.best_step} (epoch {result.best_epoch:.2f})")
    print(f"best checkpoint: {result.checkpoint_path}")
    print(f"curve (JSON):    {result.curve_path}")
    print(f"wall time {result.wall_seconds:.1f} s")


def cmd_train(args) -> int:
    from xtts_tune.export import run_final_training

    result = run_final_training(Path(args.config), overrides=args.set, progress=Progress())
    _print_trial_result(result)
    return 0


def cmd_demo_data(args) -> int:
    from xtts_tune.demo_data import generate_demo_data

    t = time.time()
    paths = generate_demo_data(Path(args.out))
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"done in {time.time() - t:.1f} s")
    return 0


def cmd_build_base(args) -> int:
    from xtts_tune.demo_data import generate_demo_data
    from xtts_tune.tiny_base import TinyBaseSpec, build_tiny_base

    corpus = Path(args.corpus) if args.corpus else generate_demo_data(Path(args.data), which=("base",))["base"]
    spec = TinyBaseSpec(seed=args.seed)
    progress = Progress(prefix="[gpt] ")

    def on_progress(kind, *payload):
        if kind == "dvae":
            step, total, loss = payload
            if step % 250 == 0 or step == total:
                print(f"[dvae] step {step}/{total} loss {loss:.4f}", flush=True)
        else:
            progress(payload[0])

    summary = build_tiny_base(corpus, Path(args.out), spec, progress=on_progress)
    usage = summary["dvae"]
    print(
        f"DVAE code usage: {usage['codes_used']}/{usage['codebook_size']} codes, perplexity {usage['perplexity']:.1f}"
    )
    print(f"GPT best validation loss on the base voice: {summary['gpt_best_val_loss']:.4f}")
    print(f"tiny base written to {args.out} in {summary['seconds']:.0f} s")
    return 0


def cmd_search(args) -> int:
    from xtts_tune.config import load_config
    from xtts_tune.study import run_search

    cfg = load_config(args.config, args.set)
    summary = run_search(cfg, n_trials=args.trials, storage=args.storage, progress=_search_progress())
    print(summary.render())
    if getattr(args, "report", True) and not summary.interrupted:
        _report_and_export(cfg, summary.storage)
    return EXIT_INTERRUPTED if summary.interrupted else 0


def _search_progress():
    state: dict = {}

    def on_event(event: dict) -> None:
        kind = event.get("event")
        if kind == "trial_start":
            params = ", ".join(f"{k}={_fmt(v)}" for k, v in event.get("params", {}).items())
            state["p"] = Progress(prefix=f"[trial {event['number']}] ")
            print(f"— trial {event['number']} ({event.get('index', '?')}/{event.get('n_trials', '?')}): {params}")
        elif kind == "trial_end":
            print(
                f"[trial {event['number']}] {event.get('state', '')}  best val {_fmt(event.get('value'))}  "
                f"steps {event.get('steps', '?')}/{event.get('planned_steps', '?')}  "
                f"best so far {_fmt(event.get('best_so_far'))}"
            )
        elif "p" in state:
            state["p"](event)

    return on_event


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _report_and_export(cfg, storage) -> None:
    try:
        from xtts_tune.export import export_best
        from xtts_tune.report import build_report
        from xtts_tune.study import load_study
    except ImportError:  # report/export not available in this build
        return
    study = load_study(cfg.study_name, storage)
    studies = Path(cfg.root) / "studies"
    report = build_report(study, studies / f"{cfg.study_name}-report.html")
    print(f"report: {report}")
    try:
        out = export_best(study, studies / f"{cfg.study_name}-best.yaml")
        print(f"best config: {out}  (train it with: xtts-tune train --config {out})")
    except ValueError as exc:
        print(f"no config exported: {exc}")


def _storage_for(args) -> tuple[str, str]:
    from xtts_tune.config import load_config
    from xtts_tune.study import default_storage

    cfg = load_config(args.config or f"studies/{args.study}.yaml") if (args.config or not args.storage) else None
    name = args.study or (cfg.study_name if cfg else None)
    storage = args.storage or default_storage(cfg)
    return name, storage


def cmd_dashboard(args) -> int:
    import subprocess

    from xtts_tune.study import dashboard_command

    _, storage = _storage_for(args)
    argv = dashboard_command(storage, host=args.host, port=args.port)
    print(f"optuna-dashboard on http://{args.host}:{args.port}  (Ctrl-C to stop)")
    return subprocess.call(argv)


def cmd_report(args) -> int:
    from xtts_tune.report import build_report
    from xtts_tune.study import load_study

    name, storage = _storage_for(args)
    out = Path(args.out) if args.out else Path("studies") / f"{name}-report.html"
    print(f"report: {build_report(load_study(name, storage), out)}")
    return 0


def cmd_export(args) -> int:
    from xtts_tune.export import export_best
    from xtts_tune.study import load_study

    name, storage = _storage_for(args)
    out = Path(args.out) if args.out else Path("studies") / f"{name}-best.yaml"
    path = export_best(load_study(name, storage), out, trial_number=args.trial, fmt=args.format)
    print(f"best config: {path}")
    return 0


def cmd_confirm(args) -> int:
    from xtts_tune.confirm import confirm_top_trials

    name, storage = _storage_for(args)
    print(f"confirm: study '{name}', top {args.top} candidates, {args.seeds} other seeds each")
    result = confirm_top_trials(
        name, storage, top=args.top, seeds=args.seeds, progress=_confirm_progress(), config_path=args.config
    )
    print(result.render())
    return 0


def _confirm_progress():
    state: dict = {}

    def on_event(event: dict) -> None:
        kind = event.get("event")
        if kind == "confirm_start":
            state["p"] = Progress(prefix=f"[trial {event['number']} seed {event['seed']}] ")
            print(f"— run {event['index']}/{event['total']}: trial {event['number']} with seed {event['seed']}")
        elif kind == "confirm_end":
            print(
                f"[trial {event['number']} seed {event['seed']}] best val {_fmt(event.get('best_val_loss'))} "
                f"at step {event.get('best_step')}  ({event.get('verdict') or 'no verdict'})"
            )
        elif kind == "eval" and "p" in state:  # evaluation lines only: one run is short
            state["p"](event)

    return on_event


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# --- parser --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xtts-tune", description=__doc__.split("\n")[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log library details")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp, required=True):
        sp.add_argument("--config", required=required, help="study YAML (e.g. studies/demo.yaml)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")

    t = sub.add_parser("trial", help="run one fine-tune trial and print its curve")
    with_config(t)
    t.add_argument("--run-dir", help="where the checkpoint and curve go (default: output_dir/trial-<time>)")
    t.set_defaults(func=cmd_trial)

    tr = sub.add_parser("train", help="final fine-tune from an exported config")
    with_config(tr)
    tr.set_defaults(func=cmd_train)

    d = sub.add_parser("demo-data", help="generate the demo base and target voices with espeak-ng")
    d.add_argument("out")
    d.set_defaults(func=cmd_demo_data)

    b = sub.add_parser("build-base", help="rebuild the tiny embedded base model (make demo-base)")
    b.add_argument("--out", default="xtts_tune/assets/tiny_base")
    b.add_argument("--corpus", help="LJSpeech-style base corpus (default: generate the demo base voice)")
    b.add_argument("--data", default="data/demo", help="where to generate the demo corpus")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=cmd_build_base)

    s = sub.add_parser("search", help="run (or continue) the Optuna study")
    with_config(s)
    s.add_argument("--trials", type=int, default=20, help="trials this worker runs")
    s.add_argument("--storage", help="SQLAlchemy URL (default sqlite:///studies/<study>.db)")
    s.add_argument("--no-report", dest="report", action="store_false", help="skip the report and export")
    s.set_defaults(func=cmd_search)

    for name, func, helptext in (
        ("dashboard", cmd_dashboard, "open optuna-dashboard on the study's storage"),
        ("report", cmd_report, "write the study's HTML report"),
        ("export", cmd_export, "export the recommended config to YAML"),
        ("confirm", cmd_confirm, "re-run the top candidates with other seeds; recommend by the mean"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--study", help="study name (default: from --config)")
        sp.add_argument("--config", help="study YAML (default studies/<study>.yaml)")
        sp.add_argument("--storage", help="SQLAlchemy URL")
        if name == "dashboard":
            sp.add_argument("--host", default="127.0.0.1")
            sp.add_argument("--port", type=int, default=8080)
        elif name == "confirm":
            sp.add_argument("--top", type=_positive_int, default=3, help="candidates to confirm (best first)")
            sp.add_argument("--seeds", type=_positive_int, default=3, help="other seeds per candidate")
        else:
            sp.add_argument("--out")
        if name == "export":
            sp.add_argument("--trial", type=int, help="export this trial instead of the recommendation")
            sp.add_argument("--format", choices=["yaml", "coqui"], default="yaml")
        sp.set_defaults(func=func)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _quiet_third_party()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted; results written so far are kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
