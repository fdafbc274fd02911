"""Every bundled data set, loaded by name: notebooks never open a data file by relative path.

- ``load_stsb()``: the STS Benchmark English test split (1,379 sentence pairs with human
  similarity scores 0-5), shipped in ``phase-1-embeddings/data/`` with its licence.

Each loader returns plain Python objects (dataclasses, lists), checks the file is there and
says how to get it back if not. Leaves out: downloading anything; every file ships with the
repository or inside an installed package.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # shared/llmlab/datasets.py -> the repository root


class DataNotFoundError(FileNotFoundError):
    """A bundled data file is missing; the message says how to restore it."""


def data_file(relative: str) -> Path:
    """The path of a data file shipped in the repository, or a clear error if it is missing."""
    path = REPO / relative
    if not path.is_file():
        raise DataNotFoundError(
            f"{relative} is missing from {REPO}. It ships with LLM Lab: restore it with "
            f"`git checkout -- {relative}` (llmlab must be installed editable: `pip install -e .`)."
        )
    return path


@dataclass(frozen=True)
class SentencePair:
    """One STS-B row: two sentences and the average human similarity score (0 = unrelated, 5 = same meaning)."""

    sentence1: str
    sentence2: str
    score: float


STSB_FILE = "phase-1-embeddings/data/stsb-en-test.csv"


def load_stsb() -> list[SentencePair]:
    """The STS-B English test split: 1,379 scored sentence pairs (licence: phase-1-embeddings/data/README.md)."""
    with data_file(STSB_FILE).open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if rows and rows[0][:2] == ["sentence1", "sentence2"]:
        rows = rows[1:]  # header
    return [SentencePair(s1, s2, float(score)) for s1, s2, score in rows]
