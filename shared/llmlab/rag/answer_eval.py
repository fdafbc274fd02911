"""Grading "chat with your docs" on real documentation: right, wrong, or abstained, and at what cost.

The eval sets (``phase-4-rag/data/docs-eval/``, provenance and licences in its README) are
folders of real documentation nobody here wrote (a Python library's user guide pages and the
READMEs of Debian packages), each with questions whose answers were checked by hand in the
files: the gold file, its line range, and the strings a right answer must contain; plus
off-topic questions the folder cannot answer. ``tune`` chose the settings; ``test`` and
``test2`` were kept for reporting.

Covers:
- ``load_eval_set(name)`` -> ``EvalSet`` (the folder and its ``EvalQuestion``s).
- ``grade(answer, q)``: ``"right"`` (answered, a citation in the gold file, and every group of
  ``must`` strings matched: one alternative of each, as a whole token), ``"wrong"`` (answered
  otherwise: an off-topic question answered is wrong) or ``"abstained"``; ``on_gold_lines``:
  a citation overlaps the gold lines.
- ``tally(grades)``: right / wrong / abstained counts of the on-topic questions, and how many
  off-topic questions were refused.
- ``selective_curve(scores, right, off_scores, thresholds)``: for each threshold, the share of
  on-topic questions answered (coverage), the share of those that are right (accuracy), the
  wrong answers left, and the share of off-topic questions refused: the trade abstention makes.

Leaves out: judging paraphrased answers (a right answer must contain the gold strings) and
partial credit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmlab.data.datasets import data_file

EVAL_DIR = "phase-4-rag/data/docs-eval"
SETS = ("tune", "test", "test2")


@dataclass(frozen=True)
class EvalQuestion:
    """A question about an eval folder: ``file`` and ``lines`` (1-based, inclusive) hold the
    answer; ``must``: groups of strings, one of each group must be in a right answer."""

    id: str
    question: str
    file: str = ""
    lines: tuple[int, int] = (0, 0)
    must: tuple[tuple[str, ...], ...] = ()
    off_topic: bool = False


@dataclass
class EvalSet:
    """An eval folder of real documentation and its questions."""

    name: str
    folder: Path
    questions: list[EvalQuestion] = field(default_factory=list)

    @property
    def on_topic(self) -> list[EvalQuestion]:
        return [q for q in self.questions if not q.off_topic]

    @property
    def off_topic(self) -> list[EvalQuestion]:
        return [q for q in self.questions if q.off_topic]


def load_eval_set(name: str) -> EvalSet:
    """The eval set ``name`` (one of ``SETS``): its folder and questions, in file order."""
    if name not in SETS:
        raise ValueError(f"Unknown eval set {name!r}: use one of {', '.join(SETS)}.")
    path = data_file(f"{EVAL_DIR}/{name}.jsonl")
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            questions.append(
                EvalQuestion(
                    id=r["id"],
                    question=r["question"],
                    file=r.get("file", ""),
                    lines=tuple(r.get("lines", (0, 0))),
                    must=tuple(tuple(g) for g in r.get("must", ())),
                    off_topic=bool(r.get("off_topic", False)),
                )
            )
    return EvalSet(name=name, folder=path.parent / name, questions=questions)


def contains(text: str, wanted: str) -> bool:
    """``wanted`` in ``text`` (ignoring case) as a whole token: ``--enable-debug`` is not found
    in ``--enable-debug-checks``. ``contains("Use --cert.", "--cert") -> True``."""
    before = r"(?<![\w-])" if re.match(r"[\w-]", wanted) else ""
    after = r"(?![\w-])" if re.search(r"[\w]$", wanted) else ""
    return re.search(before + re.escape(wanted) + after, text, re.IGNORECASE) is not None


def grade(answer: Any, q: EvalQuestion) -> str:
    """``"right"``, ``"wrong"`` or ``"abstained"`` for ``answer`` (a ``DocChat`` answer)."""
    if answer.abstained:
        return "abstained"
    if q.off_topic:
        return "wrong"
    cited = {c.passage.source for c in answer.citations}
    text_ok = all(any(contains(answer.answer, m) for m in group) for group in q.must)
    return "right" if q.file in cited and text_ok else "wrong"


def on_gold_lines(answer: Any, q: EvalQuestion) -> bool:
    """A citation of ``answer`` is in the gold file and overlaps the gold lines."""
    lo, hi = q.lines
    return any(
        c.passage.source == q.file and c.passage.first_line <= hi and c.passage.last_line >= lo
        for c in answer.citations
    )


@dataclass
class Tally:
    """Counts over a set: on-topic right / wrong (answered, not right) / abstained; off-topic."""

    right: int = 0
    wrong: int = 0
    abstained: int = 0
    off_refused: int = 0
    off_total: int = 0

    @property
    def answered(self) -> int:
        return self.right + self.wrong

    def row(self) -> str:
        n = self.right + self.wrong + self.abstained
        return (
            f"{self.right:>2}/{n} right, {self.wrong:>2} wrong, {self.abstained:>2} abstained; "
            f"off-topic refused {self.off_refused}/{self.off_total}"
        )


def tally(grades: Sequence[str], questions: Sequence[EvalQuestion]) -> Tally:
    """The ``Tally`` of ``grades[i]`` for ``questions[i]``."""
    t = Tally()
    for g, q in zip(grades, questions, strict=True):
        if q.off_topic:
            t.off_total += 1
            t.off_refused += g == "abstained"
        else:
            setattr(t, g, getattr(t, g) + 1)
    return t


@dataclass(frozen=True)
class CurvePoint:
    """What abstaining below ``threshold`` does: share of on-topic questions answered, share
    of those right, wrong answers left, share of off-topic questions refused."""

    threshold: float
    coverage: float
    accuracy: float
    wrong: int
    off_refused: float


def selective_curve(
    scores: Sequence[float],
    right: Sequence[bool],
    off_scores: Sequence[float],
    thresholds: Sequence[float],
) -> list[CurvePoint]:
    """Selective answering: answer only when the confidence is at least the threshold.

    ``scores``/``right``: each on-topic question's confidence and whether its answer is right
    (when answered); ``off_scores``: the off-topic questions' confidences.
    ``selective_curve([0.9, 0.4], [True, False], [0.3], [0.5])[0].accuracy -> 1.0``.
    """
    if len(scores) != len(right):
        raise ValueError(f"Got {len(scores)} scores but {len(right)} right/wrong flags.")
    out = []
    for t in thresholds:
        kept = [r for s, r in zip(scores, right, strict=True) if s >= t]
        out.append(
            CurvePoint(
                threshold=float(t),
                coverage=len(kept) / len(scores) if scores else 0.0,
                accuracy=sum(kept) / len(kept) if kept else 1.0,
                wrong=len(kept) - sum(kept),
                off_refused=sum(s < t for s in off_scores) / len(off_scores) if off_scores else 1.0,
            )
        )
    return out
