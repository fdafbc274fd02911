"""Strip outputs, execution counts and noisy metadata from notebooks, in place.

`python tools/strip_notebooks.py phase-*/*.ipynb` (or `make clean-notebooks`).
Committed notebooks must be clean; tests/test_repo.py checks it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEEP_NB_META = {"kernelspec", "language_info"}


def strip(path: Path) -> bool:
    nb = json.loads(path.read_text(encoding="utf-8"))
    before = json.dumps(nb, sort_keys=True)
    nb["metadata"] = {k: v for k, v in nb.get("metadata", {}).items() if k in KEEP_NB_META}
    for cell in nb.get("cells", []):
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k in {"tags"}}
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    changed = json.dumps(nb, sort_keys=True) != before
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        if strip(Path(name)):
            print(f"stripped {name}")
