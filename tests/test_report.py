"""The HTML report: one offline file with every figure, checked as text and in a real browser.

The browser tests run Debian's chromium headless (``apt-get install -y chromium``; the Makefile
and CI install it) and are skipped, saying so, only when no chromium can be found.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import zlib
from pathlib import Path

import optuna
import plotly.offline
import pytest
from optuna.trial import TrialState
from test_analysis import add_trial, new_study, synthetic_curve, synthetic_study

from xtts_tune.analysis.records import trial_value
from xtts_tune.report.page import PLOT_IDS, build_report

# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_study(tmp_path_factory: pytest.TempPathFactory) -> optuna.Study:
    """100 trials: mixed verdicts, pruned and failed trials, 2 still running."""
    study = synthetic_study(tmp_path_factory.mktemp("big") / "study.db", 98)
    add_trial(study, "healthy", 3.1, state=TrialState.RUNNING)
    add_trial(study, "healthy", 3.1, state=TrialState.RUNNING)
    # a runner may store the curve so far: 3 evaluations (diagnosable) and 1 (not yet)
    for trial, points in zip(study.trials[-2:], (3, 1)):
        curve = synthetic_curve("healthy", level=3.1)[:points]
        study._storage.set_trial_user_attr(trial._trial_id, "curve", curve)
    return study


@pytest.fixture(scope="module")
def big_report(big_study: optuna.Study, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("report") / "nested" / "demo-report.html"
    started = time.perf_counter()
    path = build_report(big_study, out)
    return path, time.perf_counter() - started


def _without_plotlyjs(text: str) -> str:
    bundle = plotly.offline.get_plotlyjs()
    assert text.count(bundle) == 1, "plotly.js must be embedded exactly once"
    return text.replace(bundle, "")


def _plot_div(text: str, plot_id: str) -> str:
    match = re.search(rf'<div id="{plot_id}" class="([^"]*)"', text)
    assert match, f"no <div id={plot_id!r}> in the report"
    return match.group(1)


# --- the file ---------------------------------------------------------------------------------------


def test_report_is_one_offline_file_with_every_plot(big_report: tuple[Path, float]) -> None:
    path, seconds = big_report
    assert path.is_file() and path.name == "demo-report.html"
    text = path.read_text(encoding="utf-8")
    rest = _without_plotlyjs(text)
    for plot_id in PLOT_IDS:
        assert "plotly-graph-div" in _plot_div(text, plot_id), plot_id
    assert 'id="trials-table"' in text and 'id="summary"' in text
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", rest, re.I)
    assert "http://" not in rest and "https://" not in rest
    assert '"showSendToCloud": false' in rest
    assert seconds < 15, f"building the 100-trial report took {seconds:.1f} s"


def test_summary_and_table_content(big_study: optuna.Study, big_report: tuple[Path, float]) -> None:
    text = big_report[0].read_text(encoding="utf-8")
    assert "Recommended: trial" in text
    assert "data/demo/target" in text and "embedded" in text  # dataset and base model
    assert "2 trials are still running: this report is a snapshot." in text
    assert "planned optimizer steps spent" in text
    rows = re.findall(r'<tr data-trial="(\d+)">', text)
    assert [int(n) for n in rows] == [t.number for t in big_study.trials]
    assert text.count(">running</td>") == 2 and ">fail</td>" in text


def test_report_with_running_and_failed_trials_only(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    add_trial(study, "healthy", 3.0, state=TrialState.FAIL)
    add_trial(study, "healthy", 3.0, state=TrialState.RUNNING)
    text = build_report(study, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "No recommendation yet" in text
    assert "has no completed trial to recommend yet" in text
    for plot_id in ("plot-history", "plot-importances", "plot-parallel"):
        assert _plot_div(text, plot_id) == "plot-note"
    for plot_id in ("plot-curves-all", "plot-curves", "plot-intermediate", "plot-overfit-map"):
        assert "plotly-graph-div" in _plot_div(text, plot_id)  # the running trial's values


def test_report_with_a_single_trial(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    add_trial(study, "healthy", 3.0)
    text = build_report(study, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Recommended: trial 0" in text
    assert "is the study&#x27;s only completed trial" in text
    assert _plot_div(text, "plot-importances") == "plot-note"
    assert _plot_div(text, "plot-parallel") == "plot-note"
    assert "Needs at least two completed trials" in text
    for plot_id in ("plot-curves-all", "plot-curves", "plot-history", "plot-intermediate", "plot-overfit-map"):
        assert "plotly-graph-div" in _plot_div(text, plot_id)


def test_report_of_an_empty_study(tmp_path: Path) -> None:
    study = new_study(tmp_path / "s.db")
    text = build_report(study, tmp_path / "r.html").read_text(encoding="utf-8")
    for plot_id in PLOT_IDS:
        assert _plot_div(text, plot_id) == "plot-note"
    assert "no trials" in text


# --- in a real browser ------------------------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]
OFFLINE = ["--proxy-server=127.0.0.1:9"]  # an unreachable proxy: any network fetch fails
BENIGN_CONSOLE = ("fallback to software WebGL", "GL Driver Message")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium not found: install it with `apt-get install -y chromium` to run the browser test")


def _run_chromium(page: Path, profile: Path, extra: list[str]) -> subprocess.CompletedProcess[str]:
    command = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def _console_problems(stderr: str) -> list[str]:
    """Every console message is a problem (the report logs nothing) unless known to be benign."""
    lines = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    return [line for line in lines if not any(b in line for b in BENIGN_CONSOLE)]


def _png_colours(path: Path) -> tuple[int, float]:
    """Distinct colours and the share of non-white pixels of a PNG screenshot."""
    try:
        from PIL import Image
    except ImportError:
        return _png_colours_zlib(path)
    image = Image.open(path).convert("RGB")
    total = image.width * image.height
    colours = image.getcolors(maxcolors=total) or []
    white = sum(n for n, colour in colours if colour == (255, 255, 255))
    return len(colours), (total - white) / total


def _png_colours_zlib(path: Path) -> tuple[int, float]:
    """Fallback reader for 8-bit RGB/RGBA non-interlaced PNGs (what chromium writes)."""
    data = path.read_bytes()
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        chunks += [body] if kind == b"IDAT" else []
        pos += 12 + length
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    channels = {2: 3, 6: 4}[header[9]]
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    colours, non_white = set(), 0
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 255
        for i in range(0, stride, channels):
            pixel = bytes(line[i : i + 3])
            colours.add(pixel)
            non_white += pixel != b"\xff\xff\xff"
        previous = line
    return len(colours), non_white / (width * height)


@pytest.mark.slow
@pytest.mark.parametrize("network", ["default", "offline"])
def test_report_renders_in_headless_chromium(
    big_study: optuna.Study, big_report: tuple[Path, float], tmp_path: Path, network: str
) -> None:
    page = big_report[0]
    extra = OFFLINE if network == "offline" else []

    dump = _run_chromium(page, tmp_path / "profile-dom", [*extra, "--dump-dom"])
    assert dump.returncode == 0, dump.stderr[-3000:]
    dom = dump.stdout
    for plot_id in PLOT_IDS:
        classes = _plot_div(dom, plot_id)
        assert "js-plotly-plot" in classes, f"{plot_id} was not rendered by plotly ({classes!r})"
        after = dom.split(f'<div id="{plot_id}"', 1)[1][:20000]
        assert 'class="plot-container' in after, f"{plot_id} has no plot container"
    assert dom.count('class="main-svg"') >= len(PLOT_IDS)
    assert _console_problems(dump.stderr) == []

    # the inline script sorted the table by best validation loss on load (missing values last)
    order = [int(n) for n in re.findall(r'<tr data-trial="(\d+)"', dom)]
    values = {t.number: trial_value(t) for t in big_study.trials}  # a pruned trial: its best, not its last
    expected = sorted(values, key=lambda n: (values[n] is None, values[n] or 0.0, n))
    assert order == expected

    shot = tmp_path / "report.png"
    screen = _run_chromium(page, tmp_path / "profile-shot", [*extra, f"--screenshot={shot}", "--window-size=1400,2000"])
    assert screen.returncode == 0 and shot.is_file(), screen.stderr[-3000:]
    assert _console_problems(screen.stderr) == []
    colours, ink = _png_colours(shot)
    assert colours > 200, f"the screenshot looks blank ({colours} colours)"
    assert ink > 0.2, f"the screenshot is mostly white ({ink:.0%} non-white)"


def test_png_fallback_reader_agrees_with_pil(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    image = pil.new("RGB", (40, 30), (255, 255, 255))
    for x in range(40):
        for y in range(10):
            image.putpixel((x, y), (x * 6, y * 20, 100))
    path = tmp_path / "x.png"
    image.save(path)
    assert _png_colours_zlib(path) == _png_colours(path)
