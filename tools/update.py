"""`make update`: bring in the course's latest version, keeping what you typed and your outputs.

Why not plain `git pull`: a lesson you ran and saved holds outputs, and git, which compares a
file's size before its content, sees it as changed even though the output filter
(tools/strip_notebooks.py) would store nothing new; `git pull` then refuses to touch it ("Your
local changes ... would be overwritten by merge"). This script:

1. refreshes git's view of your files, so a notebook that differs only in outputs counts as
   unchanged;
2. remembers every notebook's outputs, then runs `git pull --autostash` (your typed edits are
   put aside, the update is merged, your edits are put back);
3. gives each cell its outputs back where its code did not change;
4. if the course changed the very lines you changed, keeps the course's new file in place and
   saves yours next to your other experiments, in `my-work/` (named `<file>.mine-<date>`), and
   says so. Nothing you wrote is ever lost: git also keeps it in `git stash list` until you drop it.

Standard library only, so it runs before the environment exists. Leaves out: merging a
notebook cell by cell (nbdime does that) and anything but the current branch's upstream.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def notebook_outputs(path: Path) -> dict[str, tuple[str, list, int | None]]:
    """``{cell id: (source, outputs, execution_count)}`` of a notebook's code cells with outputs."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return {}
    kept = {}
    for cell in cells:
        if cell.get("cell_type") == "code" and cell.get("outputs") and "id" in cell:
            source = "".join(cell.get("source", []))
            kept[cell["id"]] = (source, cell["outputs"], cell.get("execution_count"))
    return kept


def restore_outputs(path: Path, kept: dict[str, tuple[str, list, int | None]]) -> int:
    """Put outputs back into the cells whose id and code are unchanged; return how many."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    restored = 0
    for cell in nb.get("cells", []):
        old = kept.get(cell.get("id"))
        if cell.get("cell_type") == "code" and old and "".join(cell.get("source", [])) == old[0]:
            cell["outputs"], cell["execution_count"] = old[1], old[2]
            restored += 1
    if restored:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return restored


def save_mine(rel: str, text: str, root: Path) -> Path:
    """Write your version of ``rel`` into ``my-work/`` under a name that never overwrites."""
    stamp = time.strftime("%Y-%m-%d")
    name = Path(rel).name
    target = root / "my-work" / f"{Path(name).stem}.mine-{stamp}{Path(name).suffix}"
    n = 2
    while target.exists():
        target = target.with_name(f"{Path(name).stem}.mine-{stamp}-{n}{Path(name).suffix}")
        n += 1
    target.parent.mkdir(exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def update(root: Path = ROOT) -> int:
    if git("rev-parse", "--git-dir", cwd=root).returncode != 0:
        print("This folder is not a git clone: download the course again to update it.")
        return 1
    git("update-index", "-q", "--refresh", cwd=root)  # outputs-only notebooks count as unchanged
    notebooks = git("ls-files", "*.ipynb", cwd=root).stdout.split()
    kept = {rel: notebook_outputs(root / rel) for rel in notebooks}
    kept = {rel: outs for rel, outs in kept.items() if outs}
    mine = {  # what you typed, as on disk, in case the course changed the same lines
        rel: (root / rel).read_text(encoding="utf-8")
        for rel in git("diff", "--name-only", "HEAD", cwd=root).stdout.split()
        if (root / rel).is_file()
    }
    before = git("rev-parse", "HEAD", cwd=root).stdout.strip()
    pulled = git("-c", "merge.autoStash=true", "pull", "--autostash", "--no-edit", cwd=root)
    unmerged = git("ls-files", "--unmerged", cwd=root).stdout.splitlines()  # no filter runs
    conflicts = sorted({line.split("\t", 1)[1] for line in unmerged if "\t" in line})
    if pulled.returncode != 0 and not conflicts:
        print("The update could not be fetched or merged; nothing of yours was changed.")
        print((pulled.stderr or pulled.stdout).strip())
        return 1
    for rel in conflicts:  # the course changed what you changed: its version, yours saved
        saved = save_mine(rel, mine.get(rel, (root / rel).read_text(encoding="utf-8")), root)
        git("checkout", "HEAD", "--", rel, cwd=root)
        print(f"{rel}: the course changed the lines you edited. The new version is in place;")
        print(f"  yours is saved as {saved.relative_to(root)} (and in `git stash list`).")
    if conflicts:
        git("reset", "-q", cwd=root)  # what merged cleanly stays in your files, unstaged
    restored = sum(restore_outputs(root / rel, outs) for rel, outs in kept.items())
    git("update-index", "-q", "--refresh", cwd=root)
    after = git("rev-parse", "HEAD", cwd=root).stdout.strip()
    if after == before:
        print("Already up to date.")
    else:
        changed = git("diff", "--stat", before, after, cwd=root).stdout.strip().splitlines()
        print(f"Updated: {changed[-1].strip() if changed else 'new commits'}.")
    edits = git("diff", "--name-only", cwd=root).stdout.split()
    if edits:
        print(f"Your edits are kept in {len(edits)} file(s): {', '.join(edits[:5])}")
    if restored:
        print(f"Outputs kept in {restored} cell(s) whose code did not change.")
    return 0


if __name__ == "__main__":
    sys.exit(update())
