"""The package's shape: layers that must not import torch, one-job modules, public docstring examples that run.

These hold the promises of the module map in docs/design.md: the analysis, report and export layers never import
torch or coqui; no module imports another's private names or the CLI; only the CLI, the terminal layer and
the benchmark print; no module is over 400 lines and each says what it is for; every public function's
example runs.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xtts_tune"
BENCHMARKS = ROOT / "benchmarks"
PACKAGE_FILES = sorted(p for p in PACKAGE.rglob("*.py") if "assets" not in p.parts)
MODULE_FILES = PACKAGE_FILES + sorted(BENCHMARKS.rglob("*.py"))
# The floors, lowest first (docs/design.md, "Module map"): a module imports from its own floor or one below,
# never from a floor above. The judgment (analysis) sits below the search because the search calls it (the
# ranking keeps checkpoints, the summary names the pick); it never calls the search back.
LAYERS = [
    (
        "xtts_tune",
        "xtts_tune.errors",
        "xtts_tune.values",
        "xtts_tune.schema",
        "xtts_tune.overrides",
        "xtts_tune.config",
        "xtts_tune.io",
        "xtts_tune.lazy",
        "xtts_tune.stamps",
        "xtts_tune.record",
    ),
    ("xtts_tune.data",),
    ("xtts_tune.probes",),
    ("xtts_tune.model",),
    ("xtts_tune.training",),
    ("xtts_tune.doctor",),
    ("xtts_tune.embedded",),
    ("xtts_tune.analysis",),
    ("xtts_tune.search", "xtts_tune.search.fidelity"),
    ("xtts_tune.report", "xtts_tune.export"),
    ("xtts_tune.terminal", "xtts_tune.terminal_curve", "xtts_tune.terminal_doctor"),
    ("xtts_tune.cli", "xtts_tune.__main__"),
]
PRINTING = {
    "xtts_tune.cli",
    "xtts_tune.terminal",
    "xtts_tune.terminal_curve",
    "xtts_tune.terminal_doctor",
}  # and the benchmark commands under benchmarks
TORCH_FREE = [
    "xtts_tune.analysis",
    "xtts_tune.analysis.evidence.confirmations",
    "xtts_tune.analysis.curve.diagnosis",
    "xtts_tune.analysis.examples",
    "xtts_tune.analysis.ranking.explain",
    "xtts_tune.analysis.ranking.recommend",
    "xtts_tune.analysis.records",
    "xtts_tune.analysis.statistics",
    "xtts_tune.analysis.study_analysis",
    "xtts_tune.analysis.curve.thresholds",
    "xtts_tune.analysis.ranking.verdicts",
    "xtts_tune.analysis.data_curve",
    "xtts_tune.report",
    "xtts_tune.report.data_curve",
    "xtts_tune.report.figures",
    "xtts_tune.report.page",
    "xtts_tune.report.samples",
    "xtts_tune.export",
    "xtts_tune.terminal",
    "xtts_tune.io",
    "xtts_tune.config",
    "xtts_tune.probes",
    "xtts_tune.probes.records",
    "xtts_tune.probes.thresholds",
    "xtts_tune.probes.text",
    "xtts_tune.probes.provenance",
    "xtts_tune.record",
    "xtts_tune.analysis.ranking.sound",
    "xtts_tune.analysis.ranking.order",
    "xtts_tune.analysis.rungs",
    "xtts_tune.analysis.ranking.forgetting",
    "xtts_tune.report.forgetting",
    "xtts_tune.record.forgetting",
    "xtts_tune.schema",
    "xtts_tune.lazy",
]
# the doctests that load the base model or train: minutes, not seconds
SLOW_EXAMPLES = {
    "xtts_tune.training.loop",
    "xtts_tune.training.final",
    "xtts_tune.training.data_curve",  # trains twice on the demo
    "xtts_tune.search.runner",
    "xtts_tune.search.opening",  # loads the base and prepares the demo data
    "xtts_tune.search.confirm",
    "xtts_tune.model.base",
    "xtts_tune.training.prepare",
    "xtts_tune.model.speak",
    "benchmarks.search.record",
    "xtts_tune.probes.score",  # loads the speaker encoder and the ASR model
    "xtts_tune.doctor.run",  # embeds 13 real clips
    "xtts_tune.search.forgetting",  # loads the base and speaks the demo base voice's held-out clips
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_analysis_report_and_export_never_import_torch_or_coqui():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in TORCH_FREE)
        + "from xtts_tune.analysis.examples import example_study\n"
        + "from xtts_tune.analysis import analyze\n"
        + "analyze(example_study())\n"
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio', 'TTS', 'trainer')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout[:500]


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small_and_says_what_it_is_for(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 400, f"{path} has {len(text.splitlines())} lines: split it"
    if path.name != "__main__.py":
        assert ast.get_docstring(ast.parse(text)), f"{path} opens without a docstring saying what it is for"


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_imports_no_cli_imports_and_only_the_terminal_prints(path):
    name = module_name(path)
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xtts_tune"):
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            assert not private, f"{name} imports private names {private} from {node.module}"
            if name != "xtts_tune.cli":
                assert node.module != "xtts_tune.cli", f"{name} imports the CLI"
        if isinstance(node, ast.Import):
            assert all(a.name != "xtts_tune.cli" for a in node.names) or name == "xtts_tune.cli"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            assert name in PRINTING or name.startswith("benchmarks"), f"{name}:{node.lineno} prints"


def floor(name: str) -> int:
    """The floor of a module: the longest prefix of it that :data:`LAYERS` names."""
    best, rank = "", None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, i
    assert rank is not None, f"{name} is on no floor of LAYERS: add its room there and to docs/design.md"
    return rank


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every xtts_tune module an AST imports (at the top or inside a function), with its line."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("xtts_tune", "benchmarks"):
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] in ("xtts_tune", "benchmarks")]
    return out


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_from_a_floor_above_it_nor_the_benchmarks(path):
    name = module_name(path)
    for line, target in _imported(ast.parse(path.read_text())):
        assert not target.startswith("benchmarks"), f"{name}:{line} imports {target}: benchmarks are not shipped"
        assert floor(target) <= floor(name), (
            f"{name}:{line} imports {target}, a floor above it ({LAYERS[floor(target)][0]} over "
            f"{LAYERS[floor(name)][0]}): move the shared piece down"
        )


def test_the_floor_check_catches_an_arrow_back_up():
    tree = ast.parse("def f():\n    from xtts_tune.model.base import LoadedBase\n")
    ((_, target),) = _imported(tree)
    assert floor(target) > floor("xtts_tune.data.features")


def _modules_with_examples() -> list:
    params = []
    for path in MODULE_FILES:
        if ">>> " in path.read_text():
            name = module_name(path)
            marks = [pytest.mark.slow] if name in SLOW_EXAMPLES else []
            params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples_run(name, monkeypatch, tmp_path):
    """Every example in a docstring runs as written, from the project root (as the README's commands do)."""
    monkeypatch.chdir(ROOT)
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in doctest.DocTestFinder().find(module, name) if t.examples]
    assert tests, f"{name} mentions '>>> ' but no example was found"
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)[-4000:]


def test_every_public_api_function_has_an_example():
    import xtts_tune

    for name in xtts_tune.__all__:
        if name == "__version__":
            continue
        obj = getattr(xtts_tune, name)
        doc = obj.__doc__ or ""
        module_doc = sys.modules[obj.__module__].__doc__ or ""
        assert ">>> " in doc or ">>> " in module_doc, f"xtts_tune.{name} has no example in its docstring"
