"""``make bench-gpu`` on a CPU with tiny settings (issue 28): the path a GPU run takes works, each row is one
trial (two for the cache-on row: capture, then read) in its own process, and the prefix cache is written only
by the cache-on row. On a GPU the same command measures the released shape; docs/benchmarks.md says whether
that has run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_gpu_runs_its_rows_on_a_cpu_with_tiny_settings(tmp_path):
    out = tmp_path / "rows.json"
    cmd = [sys.executable, "-m", "benchmarks.gpu", "--tiny", "--clips", "12", "--steps", "2", "--depths", "28"]
    run = subprocess.run([*cmd, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [(r["depth"], r["prefix_cache"]) for r in rows] == [(28, False), (28, True)]
    off, on = rows
    assert off["steps"] == on["steps"] == 2 and off["clips"] == on["clips"] == 12
    assert off["prefix_cache_bytes"] == 0 and off["capture_step_seconds"] is None
    assert on["prefix_cache_bytes"] > 0 and on["capture_step_seconds"] > 0
    assert off["peak_vram_bytes"] is None and off["device"] == "cpu"  # no VRAM figure is made up on a CPU
    assert "| cpu | 12 | 28 | on | " in run.stdout and "n/a (CPU)" in run.stdout
