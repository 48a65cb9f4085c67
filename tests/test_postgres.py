"""Several workers on one PostgreSQL study (the documented way to use several machines).

The ``slow`` tests start a throwaway PostgreSQL server on 127.0.0.1 (Debian's ``postgresql`` package:
``initdb``/``pg_ctl`` from ``/usr/lib/postgresql/<version>/bin``), run against it and stop it afterwards.
Where the server binaries are not installed they are skipped with a message naming the package
(``.ci/run`` installs it, so CI always runs them). The quick test needs no server.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState
from test_study import spawn_worker, study_raw, worker_events

from xtts_tune.record import TrialRecord
from xtts_tune.search.storage import StorageError, load_study, open_storage

INSTALL_HINT = "apt-get install -y postgresql"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bindir() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian layout first, then PATH)."""

    def version(path: str) -> tuple:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.parent.name))

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl", path=str(Path(initdb).parent)):
        return Path(initdb).parent
    return None


class PostgresServer:
    """A throwaway cluster in a temporary folder, owned by the ``postgres`` user when we run as root
    (the server refuses to run as root)."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="xtts-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port: int | None = None
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(f"running as root and there is no 'postgres' user to run the server as ({INSTALL_HINT})")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            runuser = shutil.which("runuser")
            self.as_user = [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-s", "/bin/sh", "-c"]

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = list(argv)
        if self.as_user and self.as_user[0] == "su":  # su takes one shell command line
            cmd = self.as_user + [" ".join(f"'{a}'" for a in argv)]
        elif self.as_user:
            cmd = self.as_user + cmd
        proc = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def start(self) -> str:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        last = None
        for _ in range(3):  # the free port may be taken between bind and start: try another
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                break
            except RuntimeError as exc:
                last = f"{exc}\n{self.log.read_text() if self.log.is_file() else ''}"
        else:
            raise RuntimeError(f"the PostgreSQL server did not start:\n{last}")
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "xtts")
        return self.url("xtts")

    def url(self, database: str, driver: str = "+psycopg") -> str:
        return f"postgresql{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def createdb(self, name: str) -> str:
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").is_file():
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on 127.0.0.1 with an empty database ``xtts``; yields the server."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            f"PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH); run: {INSTALL_HINT}"
        )
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------- quick


def test_an_unreachable_postgresql_server_is_a_one_line_storage_error():
    import psycopg  # noqa: F401  (the pinned driver; SQLAlchemy 2.1's default for a plain postgresql:// URL)

    port = free_port()  # nothing listens there
    for url in (
        f"postgresql://postgres:secret@127.0.0.1:{port}/xtts",
        f"postgresql+psycopg://postgres@127.0.0.1:{port}/xtts",
    ):
        t0 = time.monotonic()
        with pytest.raises(StorageError) as err:
            open_storage(url, heartbeat_interval=5, grace_period=10)
        message = str(err.value)
        assert "\n" not in message and len(message) < 400
        assert f"127.0.0.1:{port}/xtts" in message and "secret" not in message
        assert "OperationalError" in message and "ModuleNotFound" not in message  # the driver is there
        assert time.monotonic() - t0 < 30


# ------------------------------------------------------------------------------------- a real server (slow)


OPEN = r"""
import sys, time
from xtts_tune.search.storage import open_storage
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
open_storage(sys.argv[1], heartbeat_interval=5, grace_period=10)
print("ok", flush=True)
"""


@pytest.mark.slow
def test_workers_opening_a_fresh_database_at_once_all_succeed(postgres):
    """Optuna creates its tables on first open; several workers starting together must not collide."""
    url = postgres.createdb("race")
    at = time.time() + 4  # after the imports: all open at the same moment
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, url, str(at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0 and out.strip() == "ok", err[-2000:]


@pytest.mark.slow
def test_two_workers_run_one_study_on_postgresql(postgres, demo_target, tmp_path):
    """Two worker processes (like two machines) share one study on PostgreSQL and one output folder
    (like ``make search WORKERS=2``): 2 trials each, 4 trials in the study, nothing lost, and a report."""
    from xtts_tune.report.page import build_report

    url = postgres.url("xtts")
    raw = study_raw("pg", demo_target, tmp_path / "out", heartbeat_interval=5, grace_period=20)
    raw["train"]["num_threads"] = 1  # two processes on two cores
    workers = [spawn_worker(raw, tmp_path, url, 2, f"w{i}") for i in range(2)]
    runs = []
    try:
        for i, proc in enumerate(workers):
            events = worker_events(proc, timeout=600)
            assert proc.returncode == 0, (tmp_path / f"w{i}.stderr").read_text()[-3000:]
            (done,) = [e for e in events if e["event"] == "done"]
            assert len(done["trials_run"]) == 2 and not done["interrupted"]  # each worker runs its own n_trials
            runs.append(set(done["trials_run"]))
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not runs[0] & runs[1]
    study = load_study("pg", url)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3] == sorted(runs[0] | runs[1])  # distinct, none lost
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert all(TrialRecord.from_trial(t).curve and TrialRecord.from_trial(t).best_val_loss is not None for t in trials)
    assert all(t.intermediate_values for t in trials)
    assert len([t for t in trials if t.user_attrs.get("enqueued") == "guide"]) == 1  # enqueued once
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # the workers sampled different configs
    assert set(study.user_attrs["fingerprint"]) == {"dataset", "split", "base_model"}
    report = build_report(load_study("pg", url), tmp_path / "pg-report.html")
    html = report.read_text()
    assert report.stat().st_size > 10_000 and "plot-curves-all" in html
    assert all(f"trial {t.number} (" in html for t in trials)  # every trial's curve is drawn
