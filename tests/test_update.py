"""`make update` (tools/update.py) end to end: a course update pulls cleanly into a working copy
whose lessons were run, saved with outputs and edited.

Each test builds a small "course" repository from the project's own files (the output filter,
the update script and a real lesson), clones it as a learner would, installs the filter, runs
and edits the lesson in the clone, changes the lesson upstream, and runs the update.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSON = "phase-1-tokenization/tokenization-exploration.ipynb"

pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
    pytest.mark.slow,  # a few git operations, each running the output filter
]


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, f"git {' '.join(args)}: {out.stderr}"
    return out.stdout


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def edit(path: Path, change) -> None:
    nb = json.loads(path.read_text())
    change([c for c in nb["cells"] if c["cell_type"] == "code"])
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


@pytest.fixture
def course(tmp_path):
    """(upstream repo, the learner's clone with the filter installed)."""
    up = tmp_path / "course"
    for rel in [
        ".gitattributes",
        ".gitignore",
        "tools/strip_notebooks.py",
        "tools/update.py",
        LESSON,
    ]:
        (up / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, up / rel)
    git(up, "init", "-q", "-b", "main")
    git(up, "-c", "user.name=course", "-c", "user.email=c@example.org", "add", "-A")
    git(up, "-c", "user.name=course", "-c", "user.email=c@example.org", "commit", "-qm", "v1")
    mine = tmp_path / "learner"
    git(tmp_path, "clone", "-q", str(up), str(mine))
    git(mine, "config", "user.name", "learner")
    git(mine, "config", "user.email", "l@example.org")
    subprocess.run([sys.executable, "tools/strip_notebooks.py", "--install"], cwd=mine, check=True)
    return up, mine


def run_and_edit(mine: Path, my_code: str) -> None:
    """What a learner does: run the lesson (outputs saved) and change the second code cell."""

    def change(cells):
        cells[0]["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["ran\n"]}]
        cells[0]["execution_count"] = 1
        cells[1]["source"] = [my_code]

    edit(mine / LESSON, change)


def course_changes(up: Path, index: int, code: str) -> None:
    def change(cells):
        cells[index]["source"] = [code]

    edit(up / LESSON, change)
    git(up, "-c", "user.name=course", "-c", "user.email=c@example.org", "commit", "-qam", "v2")


def update(mine: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/update.py"], cwd=mine, capture_output=True, text=True
    )


def test_plain_git_pull_refuses_what_update_brings(course):
    up, mine = course
    run_and_edit(mine, "my_edit = 1")
    course_changes(up, 2, "course_change = 2")
    refused = subprocess.run(["git", "pull"], cwd=mine, capture_output=True, text=True)
    assert refused.returncode != 0 and "overwritten" in refused.stderr  # the problem
    done = update(mine)
    assert done.returncode == 0, done.stdout + done.stderr
    cells = code_cells(mine / LESSON)
    assert cells[2]["source"] == ["course_change = 2"]  # the course's change arrived
    assert cells[1]["source"] == ["my_edit = 1"]  # the learner's edit stayed
    assert cells[0]["outputs"][0]["text"] == ["ran\n"]  # and the outputs of unchanged cells
    assert git(mine, "diff", "--name-only").split() == [LESSON]  # only the edit differs
    assert "Your edits are kept" in done.stdout


def test_same_lines_changed_keeps_the_course_version_and_saves_yours(course):
    up, mine = course
    run_and_edit(mine, "my_edit = 1")
    course_changes(up, 1, "course_fix = 1")
    done = update(mine)
    assert done.returncode == 0, done.stdout + done.stderr
    cells = code_cells(mine / LESSON)  # valid JSON: no conflict markers in the lesson
    assert cells[1]["source"] == ["course_fix = 1"]
    saved = list((mine / "my-work").glob("tokenization-exploration.mine-*.ipynb"))
    assert len(saved) == 1 and "my_edit = 1" in saved[0].read_text()
    assert "saved as my-work/" in done.stdout
    assert git(mine, "ls-files", "--unmerged") == ""  # nothing left half-merged
    assert "autostash" in git(mine, "stash", "list")  # and git keeps a copy too


def test_nothing_to_update(course):
    _, mine = course
    run_and_edit(mine, "my_edit = 1")
    done = update(mine)
    assert done.returncode == 0 and "Already up to date" in done.stdout
    assert code_cells(mine / LESSON)[1]["source"] == ["my_edit = 1"]
