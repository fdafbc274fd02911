"""Keep notebook outputs in your working copy, and out of git.

Two jobs, one set of rules (``nbstripout`` with the settings below):

- ``python tools/strip_notebooks.py --install`` (run by ``make`` setup) installs the git filter:
  git runs nbstripout on every ``*.ipynb`` as it stores it (``git add``, ``git status``,
  ``git diff``), so a notebook you ran and saved in JupyterLab keeps its outputs on disk while
  git sees it exactly as committed. ``.gitattributes`` (committed) names the filter; the filter
  command itself lives in ``.git/config``, which is why setup installs it.
- ``python tools/strip_notebooks.py FILE...`` (``make clean-notebooks``) rewrites files in place
  the same way, so a stripped file equals what the filter stores.

Stripped: outputs, execution counts, run-time metadata (language version, widget state, cell
timings). Kept: cell ids (so a saved notebook matches the committed one) and a fixed kernelspec,
the one JupyterLab writes when it runs the project's kernel.

Leaves out: merging (nbdime does that) and notebooks outside git (nothing to protect there).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# nbstripout's own defaults (its command line adds them; strip_text must too).
NBSTRIPOUT_DEFAULT_KEYS = [
    "metadata.signature",
    "metadata.widgets",
    "cell.metadata.collapsed",
    "cell.metadata.ExecuteTime",
    "cell.metadata.execution",
    "cell.metadata.heading_collapsed",
    "cell.metadata.hidden",
    "cell.metadata.scrolled",
]
# Keys nbstripout removes on top of its defaults (outputs, counts, cell timings, widget state).
EXTRA_KEYS = [
    "metadata.language_info.codemirror_mode",
    "metadata.language_info.file_extension",
    "metadata.language_info.mimetype",
    "metadata.language_info.nbconvert_exporter",
    "metadata.language_info.pygments_lexer",
    "metadata.language_info.version",
    "metadata.toc",
    "metadata.vscode",
    "cell.metadata.jupyter",
    "cell.metadata.trusted",
    "cell.metadata.editable",
    "cell.metadata.deletable",
]
# What JupyterLab writes when it runs the project's kernel: committing the same means a saved
# notebook differs from the committed one only in what the filter strips.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def filter_command(python: str = sys.executable) -> str:
    """The clean-filter command git runs (nbstripout, keeping cell ids)."""
    return f'"{python}" -m nbstripout --keep-id'


def _git(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def install(repo: Path = ROOT, python: str = sys.executable) -> str:
    """Install the nbstripout git filter in ``repo``; return a one-line status."""
    probe = _git("rev-parse", "--git-dir", cwd=repo)
    if probe.returncode != 0:
        return "not a git checkout: notebook outputs are not filtered (nothing to commit anyway)"
    cmd = filter_command(python)
    for key, value in [
        ("filter.nbstripout.clean", cmd),
        ("filter.nbstripout.smudge", "cat"),
        ("filter.nbstripout.required", "true"),
        ("filter.nbstripout.extrakeys", " ".join(EXTRA_KEYS)),
        ("diff.ipynb.textconv", cmd + " -t"),
    ]:
        done = _git("config", key, value, cwd=repo)
        if done.returncode != 0:
            raise RuntimeError(f"git config {key} failed: {done.stderr.strip()}")
    attrs = (
        (repo / ".gitattributes").read_text(encoding="utf-8")
        if (repo / ".gitattributes").exists()
        else ""
    )
    if "filter=nbstripout" not in attrs:
        raise RuntimeError(f"{repo / '.gitattributes'} must contain '*.ipynb filter=nbstripout'")
    return "git filter nbstripout installed: notebook outputs stay on disk, out of commits"


def strip_text(text: str) -> str:
    """A notebook's JSON as the git filter stores it (what ``nbstripout --keep-id`` writes)."""
    import nbformat
    from nbstripout import strip_output

    nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    nb.metadata["kernelspec"] = nbformat.from_dict(KERNELSPEC)
    nb = strip_output(
        nb,
        keep_output=False,
        keep_count=False,
        keep_id=True,
        extra_keys=NBSTRIPOUT_DEFAULT_KEYS + EXTRA_KEYS,
    )
    out = nbformat.writes(nb)
    return out if out.endswith("\n") else out + "\n"


def strip(path: Path) -> bool:
    """Strip ``path`` in place; True if it changed."""
    before = path.read_text(encoding="utf-8")
    after = strip_text(before)
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


if __name__ == "__main__":
    if sys.argv[1:] == ["--install"]:
        print(install())
    else:
        for name in sys.argv[1:]:
            if strip(Path(name)):
                print(f"stripped {name}")
