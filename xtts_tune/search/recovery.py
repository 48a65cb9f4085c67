"""Instant crash recovery on one machine: trials whose worker process is gone are re-run at once.

Each running trial records its worker (user attribute ``worker``: host name, machine id, process id, the
process's start time and the trial's number; a retried trial inherits its predecessor's attributes, and the
number tells those apart). When a search starts, every RUNNING trial recorded on this machine whose process
no longer exists (killed, crashed, power loss) is marked FAILED and its params are queued to run again,
exactly as Optuna's heartbeat does after ``search.grace_period`` seconds: the killed trial is the next one
this search runs. Trials of workers on other machines are left to the heartbeat (``heartbeat_interval``,
``grace_period``), since their processes cannot be seen from here.

"This machine" is the host name plus the kernel's boot id and PID namespace (two containers on one host do
not see each other's processes); the start time guards against a process id reused by another process.

>>> me = worker_identity()
>>> same_machine(me), process_alive(me)
(True, True)
>>> process_alive({**me, "started": -1})  # the same id, another process
False
"""

from __future__ import annotations

import copy
import logging
import os
import socket
from pathlib import Path

import optuna
from optuna.trial import TrialState

from xtts_tune.record import TrialRecord, write_trial_attrs
from xtts_tune.search.storage import retry_callback

logger = logging.getLogger(__name__)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def machine_id() -> str:
    """The running kernel (boot id) and PID namespace: processes with one machine id can see each other."""
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return f"{_read('/proc/sys/kernel/random/boot_id')}/{namespace}"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None where it cannot be read."""
    stat = _read(f"/proc/{pid}/stat")
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def worker_identity() -> dict:
    """This process, as a running trial records it."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "machine": machine_id(), "pid": pid, "started": start_time(pid)}


def same_machine(worker: dict) -> bool:
    return worker.get("host") == socket.gethostname() and worker.get("machine") == machine_id()


def process_alive(worker: dict) -> bool:
    """Whether the worker's process still runs (on this machine)."""
    pid = worker.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True  # unknown: leave it to the heartbeat
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    started = worker.get("started")
    return started is None or start_time(pid) in (None, started)


def recover_dead_local_trials(study: optuna.Study, max_retry: int | None) -> list[int]:
    """Fail the RUNNING trials of dead workers on this machine and queue their params again (up to
    ``max_retry`` retries, as the heartbeat does); return their numbers."""
    storage = study._storage
    callback = retry_callback(max_retry)
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = TrialRecord.from_trial(trial).worker
        if worker is None or worker.get("trial") != trial.number:
            continue  # not recorded yet (or inherited from the trial it retries)
        if not same_machine(worker) or process_alive(worker):
            continue
        try:
            write_trial_attrs(storage, trial._trial_id, TrialRecord(stop_reason="worker process gone").to_attrs())
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker recovered it first
        logger.warning("trial %d: its worker (pid %s) is gone; its params run again", trial.number, worker.get("pid"))
        callback(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
        recovered.append(trial.number)
    return recovered
