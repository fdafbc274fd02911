"""The repository keeps its promises: notebooks committed clean and in the lesson shape, links
that resolve, one README per phase, a learning plan with its structure, and CI running exactly
the README's test command.

Notebook checks read what git has *committed or staged* (``git show :path``), never the working
copy: running and saving a lesson in JupyterLab puts outputs on disk, and that is fine, because
the nbstripout git filter keeps them out of commits (tools/strip_notebooks.py). Outside a git
checkout (a downloaded zip) there is nothing to commit, so the working copy is read.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import strip_notebooks  # noqa: E402

PHASES = sorted(p for p in ROOT.glob("phase-*") if p.is_dir())
NOTEBOOKS = sorted(p for p in ROOT.glob("phase-*/*.ipynb"))
MARKDOWN = [ROOT / "README.md", ROOT / "LEARNING_PLAN.md", *sorted(ROOT.glob("phase-*/*.md"))]


def _git(*args: str, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True)


@cache
def in_git() -> bool:
    if shutil.which("git") is None:
        return False
    out = _git("rev-parse", "--show-toplevel")
    return out.returncode == 0 and Path(out.stdout.strip()).resolve() == ROOT


def committed_text(path: Path) -> str:
    """What the next commit holds for ``path``: the staged blob if git tracks it, else what
    ``git add`` would store (the working copy through the clean filter), else the working copy."""
    if not in_git():
        return path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix()
    staged = _git("show", f":{rel}")
    if staged.returncode == 0:
        return staged.stdout
    text = path.read_text(encoding="utf-8")
    filt = _git("check-attr", "filter", "--", rel).stdout.strip().rsplit(": ", 1)[-1]
    clean = _git("config", f"filter.{filt}.clean").stdout.strip()
    if filt not in {"unset", "unspecified", ""} and clean:
        out = subprocess.run(
            clean,
            shell=True,
            cwd=ROOT,
            input=text,
            capture_output=True,
            text=True,
            encoding="utf-8",
        )
        assert out.returncode == 0, f"the {filt} filter failed on {rel}: {out.stderr}"
        return out.stdout
    return text


def _cells(nb: Path) -> list[dict]:
    return json.loads(committed_text(nb))["cells"]


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def test_layout_matches_the_design_card():
    for name in [
        "README.md",
        "LEARNING_PLAN.md",
        "pyproject.toml",
        ".ci/run",
        "shared/llmlab/__init__.py",
        ".gitattributes",
        "phase-1-tokenization",
        "phase-1-embeddings",
        "phase-2-generation",
        "phase-3-transformer",
        "phase-4-rag",
        "phase-5-agents",
        "tests",
    ]:
        assert (ROOT / name).exists(), name
    for phase in PHASES:
        assert (phase / "README.md").is_file(), f"{phase.name} needs a README listing its files"


def _has_nbstripout() -> bool:
    import importlib.util

    return importlib.util.find_spec("nbstripout") is not None


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(nb):
    text = committed_text(nb)
    for cell in json.loads(text)["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{nb.name}: what git stores has outputs. Run `make setup` (installs the git "
                "filter that strips them), then `git add` the notebook again"
            )
    if _has_nbstripout():  # the committed text is the filter's fixed point, so a run-and-saved
        # copy of it shows no change in `git status`
        assert strip_notebooks.strip_text(text) == text, (
            f"{nb.name} is stored in another form than the git filter writes: run "
            "`make clean-notebooks`, then `git add` it"
        )


def test_this_checkout_keeps_outputs_out_of_git():
    if not in_git():
        pytest.skip("not a git checkout: nothing is committed, outputs may stay")
    attrs = (ROOT / ".gitattributes").read_text(encoding="utf-8")
    assert re.search(r"^\*\.ipynb filter=nbstripout$", attrs, re.M)
    rel = NOTEBOOKS[0].relative_to(ROOT).as_posix()
    assert _git("check-attr", "filter", "--", rel).stdout.strip().endswith("nbstripout")
    clean = _git("config", "filter.nbstripout.clean").stdout
    assert "nbstripout" in clean, "the git filter is not installed here: run `make setup`"


def _as_saved_by_jupyterlab(text: str) -> str:
    """A notebook as JupyterLab autosaves it after "Run all": outputs, counts, run metadata."""
    nb = json.loads(text)
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = i + 1
        cell["outputs"] = [{"name": "stdout", "output_type": "stream", "text": [f"out {i}\n"]}]
        cell["metadata"]["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    nb["metadata"]["language_info"] = {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": "3.11.2",
    }
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


@pytest.mark.slow
def test_a_run_and_saved_notebook_shows_no_change_in_git(tmp_path):
    """Install the filter in a scratch repo, commit a lesson, save it with outputs: git finds no
    change to commit, and what it would store has no outputs."""
    if shutil.which("git") is None or not _has_nbstripout():
        pytest.skip("needs git and nbstripout (make setup installs it)")
    repo = tmp_path / "clone"
    repo.mkdir()
    assert _git("init", "-q", cwd=repo).returncode == 0
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    strip_notebooks.install(repo, sys.executable)
    lesson = repo / "lesson.ipynb"
    clean = strip_notebooks.strip_text(NOTEBOOKS[0].read_text(encoding="utf-8"))
    lesson.write_text(clean, encoding="utf-8")
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    assert _git("add", ".", cwd=repo).returncode == 0
    assert _git(*ident, "commit", "-qm", "lesson", cwd=repo).returncode == 0

    saved = _as_saved_by_jupyterlab(clean)
    lesson.write_text(saved, encoding="utf-8")
    assert '"outputs": [\n' in saved and "out 3" in saved  # the working copy keeps its outputs
    # `git status` may list it (git compares file sizes first), but there is no change in it:
    assert _git("diff", cwd=repo).stdout == ""
    assert _git("add", "-u", cwd=repo).returncode == 0  # what `git commit -a` would record
    assert _git("status", "--porcelain", cwd=repo).stdout == ""
    assert _git("diff", "--cached", cwd=repo).stdout == ""
    assert _git("show", ":lesson.ipynb", cwd=repo).stdout == clean
    assert "out 3" in lesson.read_text(encoding="utf-8")  # git never touched the working copy


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


def _sections(text: str, level: str) -> dict[str, str]:
    parts = re.split(rf"^{level} (.+)$", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_learning_plan_keeps_its_structure():
    """The plan is the learner's living tracker: its wording changes, its shape does not."""
    plan = (ROOT / "LEARNING_PLAN.md").read_text(encoding="utf-8")
    sections = _sections(plan, "##")
    for name in ["Current Status", "Session Log", "Resources Created"]:
        assert name in sections, f"LEARNING_PLAN.md needs a '## {name}' section"
    phases = [t for t in sections if t.startswith("Phase ")]
    assert [p.split(":")[0] for p in phases] == [f"Phase {i}" for i in range(1, 7)], phases
    checkbox = re.compile(r"^\s*- \[[ xX]\] \*\*.+\*\*", re.M)
    for title in phases[:5]:
        body = _sections(sections[title], "###")
        assert "Topics" in body and checkbox.search(body["Topics"]), f"{title}: topics"
        projects = [t for t in body if t.startswith("Project:")]
        assert projects and checkbox.search(body[projects[0]]), f"{title}: project checkbox"
    assert checkbox.search(sections[phases[5]]), "Phase 6: deep-dive checkboxes"
    log = sections["Session Log"]
    assert re.search(r"^\| *Date *\|", log, re.M), "Session Log: a table with a Date column"
    assert re.search(r"^\| *\d{4}-\d{2}-\d{2} *\|", log, re.M), "Session Log: at least one row"
    assert re.search(r"^\|.*\]\([^)]+\)", sections["Resources Created"], re.M)


def test_next_steps_link_the_notebook():
    status = _sections((ROOT / "LEARNING_PLAN.md").read_text(encoding="utf-8"), "##")
    steps = status["Current Status"].split("Next steps", 1)[-1]
    bare = re.findall(r"(?<![(/\w-])(phase-[\w-]+/[\w-]+\.ipynb)(?!\))", steps)
    assert "](phase-" in steps and not bare, f"link these notebooks: {bare}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in readme
    assert re.search(r"^make test$", ci, re.M)
    assert re.search(r"^make browser-test$", ci, re.M), "CI drives the lab in a real browser too"


def test_ruff_is_clean():
    """`ruff check .` lints every .py and .ipynb (config in pyproject.toml)."""
    ruff = Path(sys.executable).with_name("ruff")
    exe = str(ruff) if ruff.exists() else shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    out = subprocess.run([exe, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
