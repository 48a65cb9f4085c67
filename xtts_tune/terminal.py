"""The terminal: live progress lines, tables and summaries. The only module (besides the CLI) that prints.

The library reports progress through callbacks (``progress(event)``) and returns data (``SearchSummary``,
``ConfirmResult``, ``TrialResult``); this module turns them into lines for a person at a terminal.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from typing import TYPE_CHECKING

from xtts_tune.analysis.evidence.holdout import describe_test_comparison
from xtts_tune.analysis.ranking.sound import describe_probes
from xtts_tune.io import fmt, human_bytes

if TYPE_CHECKING:  # only for annotations: rendering needs no search or torch import
    from xtts_tune.search.confirm import ConfirmResult
    from xtts_tune.search.summary import SearchSummary


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


def quiet_third_party() -> None:
    for name in ("TTS", "trainer", "fsspec", "numba", "matplotlib", "urllib3", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # read by transformers when it is imported, which the command line does only where it needs the model
    # (importing it here to set its level cost every command about 4 s, error lines included)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
    warnings.filterwarnings("ignore", category=FutureWarning)


def route_optuna_logging() -> None:
    """Send Optuna's INFO lines through :mod:`logging` (the application's level decides) instead of its own
    stderr handler, without its traceback of a trial stopped by Ctrl-C or a user mistake (the command line
    prints one line for those)."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    logging.getLogger("optuna").setLevel(logging.NOTSET)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_no_optuna_trial_tracebacks)


def _no_optuna_trial_tracebacks(record: logging.LogRecord) -> bool:
    """Drop Optuna's "Trial N failed" records whose cause the command line reports itself."""
    from xtts_tune.errors import user_error_for

    if not record.name.startswith("optuna") or "failed" not in record.getMessage():
        return True
    exc = record.exc_info[1] if record.exc_info else None
    if exc is None:
        return "failed with value None" not in record.getMessage()
    return not (isinstance(exc, KeyboardInterrupt) or user_error_for(exc) is not None)


def print_trial_result(result, verdict=None) -> None:
    """The trial's outcome; ``verdict`` (:func:`xtts_tune.analysis.ranking.verdicts.curve_verdict`) with its reasons."""
    if result.stop_reason == "early_stopped":
        print(f"early stopping fired at step {result.steps} (no improvement for the patience window)")
    else:
        print(f"finished: {result.stop_reason} after {result.steps}/{result.planned_steps} optimizer steps")
    if result.skipped_batches:
        print(f"skipped {result.skipped_batches} micro-batch(es) with a non-finite loss")
    print(f"best validation loss {result.best_val_loss:.4f} at step {result.best_step} (epoch {result.best_epoch:.2f})")
    if verdict is not None:
        print(f"verdict: {verdict.verdict}")
        for reason in verdict.reasons:
            print(f"  - {reason}")
    print(f"best checkpoint: {result.checkpoint_path}")
    print(f"curve (JSON):    {result.curve_path}")
    print(
        f"wall time {result.wall_seconds:.1f} s, peak memory {human_bytes(result.peak_memory_bytes)} "
        "(resident on CPU, allocated on GPU)"
    )


def print_final_model(model_dir) -> None:
    """Where the loadable XTTS folder went, and a ``speak`` command ready to run on it."""
    if model_dir is None:
        print("no checkpoint was written, so no XTTS folder (train.save_checkpoint is false)")
        return
    print(f"XTTS folder (coqui's Xtts.load_checkpoint loads it): {model_dir}")
    print(
        f'listen: xtts-tune speak --model {model_dir} --text "Hello, this is my fine-tuned voice." '
        f"--speaker-wav ONE_OF_YOUR_CLIPS.wav --out hello.wav"
    )


def search_progress():
    state: dict = {}

    def on_event(event: dict) -> None:
        kind = event.get("event")
        if kind == "trial_start":
            params = ", ".join(f"{k}={fmt(v)}" for k, v in event.get("params", {}).items())
            state["p"] = Progress(prefix=f"[trial {event['number']}] ")
            share = "" if event.get("fidelity") is None else f" on {100 * event['fidelity']:g} % of the train clips"
            print(
                f"— trial {event['number']} ({event.get('index', '?')}/{event.get('n_trials', '?')}{share}): {params}"
            )
        elif kind == "baselines":
            print(
                f"— the base model speaks the {event['texts']} sample texts and the probes score them, and the "
                "target's own held-out clips (once per study; minutes on a CPU)"
            )
        elif kind == "message" and "number" not in event:  # the study's own lines (the dataset's rates)
            print(event["text"])
        elif kind == "trial_end":
            print(
                f"[trial {event['number']}] {event.get('state', '')}  best val {fmt(event.get('value'))}  "
                f"steps {event.get('steps', '?')}/{event.get('planned_steps', '?')}  {best_so_far(event)}"
            )
        elif kind == "warning":
            print(f"warning: {event['message']}")
        elif kind == "preflight":
            print(render_preflight(event))
        elif kind == "eta":
            print(render_eta(event))
        elif kind == "features":
            print(render_features(event))
        elif "p" in state:
            state["p"](event)

    return on_event


def render_preflight(event: dict) -> str:
    """The cost block of a search (:mod:`xtts_tune.search.preflight`), before its first trial.

    >>> print(render_preflight({"clips": 1132, "hours": 0.96, "train": 982, "val": 100, "test": 50,
    ...     "ram_bytes": 3 * 2**30, "vram_bytes": None, "disk": {"feature cache": 2**28, "checkpoints": 2**20},
    ...     "disk_bytes": 2**28 + 2**20, "free_bytes": 2**35, "folder": "runs/x"}))
    cost: 1132 clips, 0.96 h of audio; split 982 train / 100 validation / 50 test
    cost: RAM about 3.0 GiB; VRAM: no estimate for this base (the table is for the released shape)
    cost: disk about 257.0 MiB (feature cache 256.0 MiB, checkpoints 1.0 MiB) of 32.0 GiB free in runs/x
    """
    vram = event.get("vram_bytes")
    vram_text = (
        f"VRAM about {human_bytes(vram)} at the space's most expensive configuration"
        if vram
        else "VRAM: no estimate for this base (the table is for the released shape)"
    )
    parts = ", ".join(f"{k} {human_bytes(v)}" for k, v in event.get("disk", {}).items())
    return (
        f"cost: {event['clips']} clips, {event['hours']:.2f} h of audio; split {event['train']} train / "
        f"{event['val']} validation / {event['test']} test\n"
        f"cost: RAM about {human_bytes(event['ram_bytes'])}; {vram_text}\n"
        f"cost: disk about {human_bytes(event['disk_bytes'])} ({parts}) of {human_bytes(event['free_bytes'])} "
        f"free in {event['folder']}"
    )


def render_eta(event: dict) -> str:
    """The line after each trial: its time, the mean, and the ETA of this worker's remaining trials.

    >>> render_eta({"trial_seconds": 42.0, "mean_seconds": 40.0, "done": 2, "n_trials": 20, "eta_seconds": 720.0})
    'time: this trial 42 s, mean 40 s; 18 of 20 trials left, about 12 min (ETA)'
    """
    left = event["n_trials"] - event["done"]
    eta = event["eta_seconds"]
    when = f"{eta / 60:.0f} min" if eta >= 120 else f"{eta:.0f} s"
    return (
        f"time: this trial {event['trial_seconds']:.0f} s, mean {event['mean_seconds']:.0f} s; {left} of "
        f"{event['n_trials']} trials left, about {when} (ETA)"
    )


def render_features(event: dict) -> str:
    """A line of the feature prep before the first trial.

    >>> render_features({"done": 200, "total": 1132, "elapsed_s": 20.0, "eta_s": 93.2})
    'features: 200 of 1132 clips prepared, 20 s so far, about 93 s left (ETA)'
    """
    eta = event["eta_s"]
    left = f"{eta / 60:.0f} min" if eta >= 120 else f"{eta:.0f} s"
    return (
        f"features: {event['done']} of {event['total']} clips prepared, {event['elapsed_s']:.0f} s so far, "
        f"about {left} left (ETA)"
    )


def best_so_far(event: dict) -> str:
    """The recommended trial so far, and the lowest validation loss beside it when another trial has it.

    >>> best_so_far({"recommended": 3, "best_so_far": 6.338, "lowest": 3.376, "lowest_number": 5})
    'recommended so far: trial 3 (6.338); lowest loss: trial 5 (3.376)'
    """
    number, lowest = event.get("recommended"), event.get("lowest_number")
    text = (
        f"recommended so far: trial {number} ({fmt(event.get('best_so_far'))})"
        if number is not None
        else "recommended so far: none"
    )
    if lowest is not None and lowest != number:
        text += f"; lowest loss: trial {lowest} ({fmt(event.get('lowest'))})"
    return text


def confirm_progress():
    state: dict = {}

    def on_event(event: dict) -> None:
        kind = event.get("event")
        if kind == "confirm_start":
            state["p"] = Progress(prefix=f"[trial {event['number']} seed {event['seed']}] ")
            print(f"— run {event['index']}/{event['total']}: trial {event['number']} with seed {event['seed']}")
        elif kind == "confirm_end":
            print(
                f"[trial {event['number']} seed {event['seed']}] best val {fmt(event.get('best_val_loss'))} "
                f"at step {event.get('best_step')}  ({event.get('verdict') or 'no verdict'})"
            )
        elif kind == "eval" and "p" in state:  # evaluation lines only: one run is short
            state["p"](event)

    return on_event


def render_summary(summary: SearchSummary) -> str:
    """The search summary: one row per trial, the best trial, compute, disk and the next steps."""
    lines = [f"study '{summary.study_name}' ({_redact(summary.storage)}): {len(summary.rows)} trial(s)"]
    header = f"{'#':>4}  {'state':<8}  {'best val':>9}  {'steps':>11}  {'verdict':<13}  ckpt  params"
    lines += [header, "-" * len(header)]
    for r in summary.rows:
        val = f"{r.best_val_loss:.4f}" if r.best_val_loss is not None else "-"
        steps = f"{r.steps}/{r.planned_steps}" if r.steps is not None else "-"
        params = "  ".join(f"{k}={fmt(v, 3)}" for k, v in r.params.items())
        mark = "*" if r.number == summary.best_number else " "
        lines.append(
            f"{r.number:>4}{mark} {r.state:<8}  {val:>9}  {steps:>11}  {(r.verdict or '-'):<13}  "
            f"{'yes' if r.checkpoint else '-':<4}  {params}"
        )
    if summary.best_number is not None:
        params = ", ".join(f"{k}={fmt(v, 3)}" for k, v in summary.best_params.items())
        lines.append(f"recommended: trial {summary.best_number}, validation loss {summary.best_value:.4f} ({params})")
        if summary.passed_over:
            lines.append(f"  passed over: {summary.passed_over}")
        if summary.noise is not None:
            ties = ", ".join(map(str, summary.near_ties)) or "none"
            lines.append(
                f"  near-ties (within {summary.noise:.1%} of the lowest validation loss, the seed noise measured "
                f"on a real hour): {ties}"
            )
        lines.append(f"  unseen clips: {describe_test_comparison(summary.test_comparison, summary.best_number)}")
    elif summary.no_recommendation:
        lines.append(f"recommended: none yet ({summary.no_recommendation})")
    lines += [line for line in (summary.forgetting, summary.forgetting_ear) if line]
    spoken = [r for r in summary.rows if r.samples]
    if spoken:
        lines.append("listening samples:")
        lines += [f"  trial {r.number}: {', '.join(r.samples)}" for r in spoken]
    heard = [(f"trial {r.number}", r.probes) for r in summary.rows if r.probes]
    heard += [
        (name, p)
        for name, p in (("base model", summary.probes_base), ("the target's own clips", summary.probes_ceiling))
        if p
    ]
    if heard:
        lines.append(
            "by ear (speaker similarity to the target, CER of an ASR transcript, samples flagged; N texts x one seed):"
        )
        lines += [f"  {name}: {describe_probes(p)}" for name, p in heard]
    if summary.planned_steps:
        lines.append(
            f"compute: {summary.total_steps}/{summary.planned_steps} optimizer steps "
            f"({100 * summary.compute_saved:.0f}% saved by pruning and early stopping)"
        )
    if summary.rungs:
        lines.append(summary.rungs)
    lines.append(
        f"disk: {human_bytes(summary.disk_bytes)} in {summary.trials_dir} "
        f"(best checkpoints kept for the top {summary.keep_top_k} trials)"
    )
    if summary.data_check:
        lines.append(summary.data_check)
    if summary.interrupted:
        lines.append(
            "interrupted: the running trial was marked FAILED and queued again; run the same command to continue"
        )
    # next steps that work when copied as they are, from any folder: the YAML's absolute path (or the study
    # name and its storage when the search did not start from a YAML)
    if summary.config_path:
        which = f"--config {summary.config_path}"
        which += "" if summary.default_storage else f" --storage '{_redact(summary.storage)}'"
    else:
        which = f"--study {summary.study_name} --storage '{_redact(summary.storage)}'"
    lines += [
        "next steps:",
        f"  xtts-tune dashboard {which}      # optuna-dashboard on http://127.0.0.1:8080",
        f"  xtts-tune report {which}",
        f"  xtts-tune export {which}",
    ]
    return "\n".join(lines)


def render_confirm(result: ConfirmResult) -> str:
    """A small table (one row per confirmed trial) and the recommendation with its first reasons."""
    seeds = sorted({r.seed for t in result.trials for r in t.runs})
    head = f"{'trial':>5}  {'original':>14}  " + "  ".join(f"{'seed ' + str(s):>10}" for s in seeds)
    head += f"  {'mean ± std':>17}  {'n':>2}"
    lines = [
        f"study '{result.study_name}': {len(result.trials)} candidate(s) confirmed with other seeds "
        f"({result.runs_done} run(s) trained, {result.runs_skipped} already stored) in {result.wall_seconds:.0f} s",
        head,
        "-" * len(head),
    ]
    chosen = result.recommendation.trial_number if result.recommendation else None
    for t in result.trials:
        by_seed = {r.seed: r for r in t.runs}
        cells = []
        for s in seeds:
            r = by_seed.get(s)
            cells.append(f"{'-' if r is None else _loss(r.best_val_loss):>10}")
        original = f"{t.original_value:.4f} (s{t.original_seed})"
        stats = f"{t.mean:.4f} ± {t.std:.4f}" if math.isfinite(t.mean) else "a run failed"
        mark = "*" if t.number == chosen else " "
        lines.append(f"{t.number:>4}{mark}  {original:>14}  {'  '.join(cells)}  {stats:>17}  {t.n:>2}")
    if result.recommendation is not None:
        rec = result.recommendation
        basis = (
            f"mean {rec.mean_val_loss:.4f} ± {rec.std_val_loss:.4f} over {rec.n_seeds} seeds"
            if rec.mean_val_loss is not None
            else f"validation loss {rec.val_loss:.4f}, one seed"
        )
        lines.append(f"recommended: trial {rec.trial_number} ({basis}), stop at step {rec.stop_step}")
        lines += [f"  - {r}" for r in rec.reasons[:3]]
        lines += [f"  next: {s}" for s in rec.next_steps]
    else:
        lines.append(f"no recommendation: {result.no_recommendation}")
    lines.append(f"runs: {result.confirm_dir}")
    return "\n".join(lines)


def _loss(value: float | None) -> str:
    if value is None:
        return "failed"
    return f"{value:.4f}" if math.isfinite(value) else "inf"


def _redact(url: str) -> str:
    from xtts_tune.search.storage import redact

    return redact(url)
