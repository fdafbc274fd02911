"""The repository keeps its promises: clean notebooks that follow the lesson shape, links that
resolve, one README per phase, and CI running exactly the README's test command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PHASES = sorted(p for p in ROOT.glob("phase-*") if p.is_dir())
NOTEBOOKS = sorted(p for p in ROOT.glob("phase-*/*.ipynb"))
MARKDOWN = [ROOT / "README.md", ROOT / "LEARNING_PLAN.md", *sorted(ROOT.glob("phase-*/*.md"))]


def _cells(nb: Path) -> list[dict]:
    return json.loads(nb.read_text(encoding="utf-8"))["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def test_layout_matches_the_design_card():
    for name in [
        "README.md", "LEARNING_PLAN.md", "pyproject.toml", ".ci/run", "shared/llmlab/__init__.py",
        "phase-1-tokenization", "phase-1-embeddings", "phase-2-generation",
        "phase-3-transformer", "phase-4-rag", "phase-5-agents", "tests",
    ]:
        assert (ROOT / name).exists(), name
    for phase in PHASES:
        assert (phase / "README.md").is_file(), f"{phase.name} needs a README listing its files"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(nb):
    for cell in _cells(nb):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{nb.name} has outputs: run `make clean-notebooks`"
            )


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_lesson_shape(nb):
    cells = _cells(nb)
    first, last = _text(cells[0]), _text(cells[-1])
    assert cells[0]["cell_type"] == "markdown" and first.lstrip().startswith("# ")
    assert re.search(r"what you.ll learn", first, re.I), "first cell: title + what you'll learn"
    md = [_text(c) for c in cells if c["cell_type"] == "markdown"]
    code = [_text(c) for c in cells if c["cell_type"] == "code"]
    assert any(re.search(r"try it", m, re.I) for m in md), "needs 'Try it' cells"
    assert any(re.search(r"^\s*assert\b", c, re.M) for c in code), "needs assert checkpoints"
    assert re.search(r"key takeaways", last, re.I) and "notes.md" in last, (
        "last cell: key takeaways + link to notes.md"
    )
    assert not re.search(r"[\"'](/home/|/root/|/work/|C:\\\\)", "\n".join(code)), "absolute path"


def _links(md: Path) -> list[str]:
    text = md.read_text(encoding="utf-8")
    return [t for t in re.findall(r"\]\(([^)#\s]+)[^)]*\)", text) if "://" not in t]


@pytest.mark.parametrize("md", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(md):
    missing = [t for t in _links(md) if not (md.parent / t).exists()]
    assert not missing, f"{md.relative_to(ROOT)} links to missing files: {missing}"


def test_every_notebook_is_on_the_map():
    plan = (ROOT / "LEARNING_PLAN.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for nb in NOTEBOOKS:
        rel = nb.relative_to(ROOT).as_posix()
        assert rel in plan and rel in readme, f"{rel} missing from LEARNING_PLAN.md or README.md"
        assert nb.name in (nb.parent / "README.md").read_text(encoding="utf-8")


def test_learner_status_is_kept():
    plan = (ROOT / "LEARNING_PLAN.md").read_text(encoding="utf-8")
    assert "Tokenization (in progress)" in plan
    assert "## Session Log" in plan and "## Resources Created" in plan


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in readme
    assert re.search(r"^make test$", ci, re.M)


def test_ruff_is_clean():
    """`ruff check .` lints every .py and .ipynb (config in pyproject.toml)."""
    import shutil
    import subprocess
    import sys

    ruff = Path(sys.executable).with_name("ruff")
    exe = str(ruff) if ruff.exists() else shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    out = subprocess.run([exe, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
