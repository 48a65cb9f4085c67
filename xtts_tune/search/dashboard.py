"""The ``optuna-dashboard`` command for a study's storage, with its artifact folder (curves, samples), and
running it as a child that stops with its parent (SIGTERM and SIGINT are passed on, then waited for)."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

import optuna

from xtts_tune.record import StudyRecord
from xtts_tune.search.storage import open_storage, redact, sqlite_path

logger = logging.getLogger(__name__)


def dashboard_command(
    storage_url: str, host: str = "127.0.0.1", port: int = 8080, *, artifact_dir: str | Path | None = None
) -> list[str]:
    """The ``optuna-dashboard`` argv for a storage; ``--artifact-dir`` is the study's artifact folder
    (looked up in the storage's studies when not given) so the dashboard shows each trial's curve file."""
    exe = Path(sys.executable).parent / "optuna-dashboard"
    argv = [str(exe) if exe.exists() else "optuna-dashboard", storage_url, "--host", host, "--port", str(port)]
    if artifact_dir is None:
        artifact_dir = _artifact_dir_from_storage(storage_url)
    if artifact_dir is not None:
        argv += ["--artifact-dir", str(artifact_dir)]
    return argv


def _artifact_dir_from_storage(url: str) -> Path | None:
    db = sqlite_path(url)
    if db is not None and not db.is_file():
        return None
    try:
        storage = open_storage(url)
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            folder = StudyRecord.from_attrs(summary.user_attrs).artifact_dir
            if folder and Path(folder).is_dir():
                return Path(folder)
    except Exception as exc:  # the dashboard still works without artifacts
        logger.debug("no artifact folder found in %s: %s", redact(url), exc)
    return None


def run_forwarding_signals(argv: list[str]) -> int:
    """Run ``argv`` as a child process and return its exit status; SIGTERM, SIGINT and SIGHUP sent to this
    process are passed on to the child, and the child is waited for, so stopping the parent never leaves the
    child serving its port. The child has its own process group, so a Ctrl-C at the terminal reaches it once
    (through us). A child stopped by a signal returns 128 + the signal's number, as a shell does."""
    child = subprocess.Popen(argv, process_group=0)

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:  # a handler that raised anyway: keep waiting for the child
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code
