"""What every test run shares, the notebooks included (pytest loads this file for every path).

1. The environment: tests and the notebook kernels nbval starts (they inherit it) run offline.
   The bundled models need no network, and a test must never wait on one.
2. Tidy notebook outputs. A learner reads every cell's output: a numpy scalar's repr
   (``np.float64(0.34)``), a float printed with 16 digits (``0.4166666666666667``) or a
   library's warning in red is noise that hides the lesson. After each notebook cell runs,
   ``tidy_output_problems`` reads what it printed and fails the cell with what to change. A cell
   that must show such output (a lesson about warnings) says so with ``# noise-ok`` in its source.
   Shape-level problems (a clipped chart label, a wrapped table) are not detected: look.
"""

from __future__ import annotations

import os
import re

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

NUMPY_SCALAR = re.compile(r"\bnp\.(?:float|int|uint|bool|complex|str)\w*\(|\bnp\.(?:True|False)_")
LONG_FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d{10,}(?![\deE])")  # 0.4166666666666667, not 1e-05 forms
WARNING = re.compile(r"warn|deprecat", re.IGNORECASE)
PROGRESS = re.compile(r"\d+%\||it/s|s/it|/s\]|tok/s")  # tqdm bars write to stderr: allowed


def output_texts(outputs: list) -> list[tuple[str, str]]:
    """``(kind, text)`` of each output: ``stdout``, ``stderr`` or ``result`` (text/plain)."""
    texts = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text = out.get("text", "")
            texts.append(
                (out.get("name", "stdout"), "".join(text) if isinstance(text, list) else text)
            )
        elif kind in ("execute_result", "display_data"):
            plain = out.get("data", {}).get("text/plain", "")
            texts.append(("result", "".join(plain) if isinstance(plain, list) else plain))
    return texts


def tidy_output_problems(outputs: list) -> list[str]:
    """What a learner should not see in a cell's output, one line each (empty: tidy).

    >>> tidy_output_problems([{"output_type": "stream", "name": "stdout", "text": "[np.float64(0.5)]"}])
    ['a numpy scalar repr (np.float64(0.5)): print float(x) or format it, e.g. f"{x:.2f}"']
    """
    problems = []
    for kind, text in output_texts(outputs):
        if m := NUMPY_SCALAR.search(text):
            snippet = text[m.start() : text.find(")", m.start()) + 1] or m.group(0)
            problems.append(
                f'a numpy scalar repr ({snippet}): print float(x) or format it, e.g. f"{{x:.2f}}"'
            )
        if kind != "stderr" and (m := LONG_FLOAT.search(text)):
            problems.append(
                f"a float with {len(m.group(0).split('.')[1])} decimals ({m.group(0)}): round it"
            )
        if kind == "stderr":
            for line in text.replace("\r", "\n").splitlines():
                if WARNING.search(line) and not PROGRESS.search(line):
                    problems.append(f"a warning on stderr ({line.strip()[:120]}): fix its cause")
                    break
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    outputs = getattr(item, "test_outputs", None)  # nbval's cells keep what they printed
    source = getattr(getattr(item, "cell", None), "source", "")
    if outputs and "noise-ok" not in source:
        problems = tidy_output_problems(outputs)
        if problems:
            raise AssertionError(
                "This cell's output is untidy for a learner:\n  - " + "\n  - ".join(problems)
            )
    return result
