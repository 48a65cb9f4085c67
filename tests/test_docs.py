"""The README and docs/ say true things: a short README, links that land, make targets and tests that exist.

The README is the user's five-minute page (at most 250 lines); benchmarks, guarantees and design notes live in
docs/. Each link between them must reach a file and, with a ``#fragment``, one of its headings; each ``make X``
the README shows must be a Makefile target; each test docs/reliability.md names as holding a guarantee must
exist in tests/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 250
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    in_code = False
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def test_slug_follows_github():
    assert slug("Search strategy (`make bench-search`)") == "search-strategy-make-bench-search"
    assert slug("Judgment: verdicts, the one ranking, unseen clips") == "judgment-verdicts-the-one-ranking-unseen-clips"


def test_the_readme_is_a_five_minute_read():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move detail to docs/"
    )


def test_the_readme_links_the_three_docs_pages():
    text = README.read_text()
    for name in ("docs/benchmarks.md", "docs/reliability.md", "docs/design.md"):
        assert (ROOT / name).is_file(), name
        assert f"]({name}" in text, f"README.md does not link {name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_reaches_a_file_and_heading(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: link to {target}: {dest} does not exist"
        if fragment:
            assert dest.suffix == ".md", f"{page.name}: {target}: an anchor into a file that is not Markdown"
            assert fragment in anchors(dest), f"{page.name}: {target}: no heading '{fragment}' in {dest.name}"


def test_every_make_target_the_readme_shows_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, flags=re.MULTILINE))
    shown = set(re.findall(r"(?:`|^)make ([a-z][\w-]*)", README.read_text(), flags=re.MULTILINE))
    assert {"test", "lint", "search", "report", "export"} <= shown
    assert shown <= targets, f"README.md shows make targets the Makefile lacks: {sorted(shown - targets)}"


def test_make_test_lints_first_and_ci_runs_make_test():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: lint\b", makefile, flags=re.MULTILINE)
    lint = makefile.split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "ruff check ." in lint and "ruff format --check ." in lint
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "make test"


def test_every_test_named_in_reliability_exists():
    text = (ROOT / "docs" / "reliability.md").read_text()
    defined = {
        (path.name, name)
        for path in (ROOT / "tests").glob("test_*.py")
        for name in re.findall(r"^def (test_\w+)", path.read_text(), flags=re.MULTILINE)
    }
    names = {name for _, name in defined}
    qualified = re.findall(r"tests/(test_\w+\.py)::(test_\w+)", text)
    bare = set(re.findall(r"`(test_\w+)`", text)) | set(re.findall(r"[(,] ?`?(test_\w+)`?", text))
    files = set(re.findall(r"tests/(test_\w+\.py)", text))
    assert len(qualified) >= 5 and len(bare) >= 15, "docs/reliability.md no longer names the tests it relies on"
    for file in files:
        assert (ROOT / "tests" / file).is_file(), f"docs/reliability.md names tests/{file}, which does not exist"
    for pair in qualified:
        assert pair in defined, f"docs/reliability.md names tests/{pair[0]}::{pair[1]}, which does not exist"
    missing = sorted(n for n in bare if n not in names)
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
