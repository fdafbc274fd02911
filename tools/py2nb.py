"""Build a notebook from a "percent" script: `python tools/py2nb.py SRC.py OUT.ipynb`.

Cells are separated by lines starting with `# %%`. A `# %% [markdown]` cell's lines are
written as `# text` comments and become a markdown cell with the `# ` removed. The notebook is
written clean (no outputs, no execution counts), ready to commit.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from strip_notebooks import KERNELSPEC, strip_text  # noqa: E402

KERNEL = {
    "kernelspec": KERNELSPEC,
    "language_info": {"name": "python"},
}


def parse(text: str) -> list[dict]:
    cells: list[dict] = []
    kind, lines = None, []

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(re.sub(r"^# ?", "", ln) for ln in body.splitlines())
        if not body.strip():
            return
        src = body.splitlines(keepends=True)
        cell = {"cell_type": kind, "metadata": {}, "source": src}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)

    for line in text.splitlines():
        m = re.match(r"^# %%(.*)$", line)
        if m:
            flush()
            kind = "markdown" if "[markdown]" in m.group(1) else "code"
            lines = []
        else:
            lines.append(line)
    flush()
    return cells


def main(src: str, out: str) -> None:
    cells = parse(Path(src).read_text(encoding="utf-8"))
    nb = {"cells": cells, "metadata": KERNEL, "nbformat": 4, "nbformat_minor": 5}
    for i, c in enumerate(nb["cells"]):
        c["id"] = f"cell-{i:03d}"
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    # the form git stores (sorted keys, fixed kernelspec): a fresh notebook shows no diff
    Path(out).write_text(strip_text(text), encoding="utf-8")
    print(f"wrote {out}: {len(cells)} cells")


if __name__ == "__main__":
    main(*sys.argv[1:3])
