"""Tests for llmlab.rag.answer_eval: the eval sets, grading, and the selective-answering curve."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmlab.data.documents import Document
from llmlab.rag.answer_eval import (
    SETS,
    EvalQuestion,
    contains,
    grade,
    load_eval_set,
    on_gold_lines,
    selective_curve,
    tally,
)


@pytest.mark.parametrize("name", SETS)
def test_gold_lines_hold_the_gold_strings(name):
    """Every question's answer was checked by hand: its gold lines are in its file and hold one
    string of each ``must`` group, and no ``must`` string is given away by the question."""
    es = load_eval_set(name)
    assert len(es.on_topic) >= 12 and len(es.off_topic) >= 3
    files = {p.name for p in es.folder.iterdir()}
    for q in es.on_topic:
        assert q.file in files, q.id
        lines = (es.folder / q.file).read_text(encoding="utf-8").split("\n")
        gold = "\n".join(lines[q.lines[0] - 1 : q.lines[1]])
        for group in q.must:
            assert any(contains(gold, m) for m in group), (q.id, group)
            assert not any(contains(q.question, m) for m in group), (q.id, group)


def answer(text, source="a.md", first=1, last=2, abstained=False):
    p = SimpleNamespace(source=source, first_line=first, last_line=last)
    return SimpleNamespace(answer=text, abstained=abstained, citations=[SimpleNamespace(passage=p)])


def test_grade_and_tally():
    q = EvalQuestion(id="x", question="How?", file="a.md", lines=(2, 3), must=(("--cert",),))
    off = EvalQuestion(id="o", question="Capital of France?", off_topic=True)
    assert grade(answer("Use --cert."), q) == "right"
    assert grade(answer("Use --cert-bundle."), q) == "wrong"  # a whole token, not a prefix
    assert grade(answer("Use --cert.", source="b.md"), q) == "wrong"  # the wrong file
    assert grade(answer("", abstained=True), q) == "abstained"
    assert (
        grade(answer("Paris."), off) == "wrong"
        and grade(answer("", abstained=True), off) == "abstained"
    )
    assert on_gold_lines(answer("Use --cert.", first=3, last=9), q)
    assert not on_gold_lines(answer("Use --cert.", first=4, last=9), q)
    t = tally(["right", "wrong", "abstained", "abstained"], [q, q, q, off])
    assert (t.right, t.wrong, t.abstained, t.off_refused, t.off_total) == (1, 1, 1, 1, 1)
    assert contains("send to <bug-gzip@gnu.org>.", "bug-gzip@gnu.org")


def test_selective_curve_trades_coverage_for_accuracy():
    scores, right = [0.9, 0.8, 0.6, 0.4], [True, True, False, False]
    low, mid, high = selective_curve(scores, right, [0.3, 0.5], [0.0, 0.7, 1.0])
    assert (low.coverage, low.accuracy, low.wrong, low.off_refused) == (1.0, 0.5, 2, 0.0)
    assert (mid.coverage, mid.accuracy, mid.wrong, mid.off_refused) == (0.5, 1.0, 0, 1.0)
    assert high.coverage == 0.0 and high.accuracy == 1.0
    with pytest.raises(ValueError, match="right/wrong"):
        selective_curve([0.5], [], [], [0.5])
    with pytest.raises(ValueError, match="Unknown eval set"):
        load_eval_set("nope")
    assert Document  # the records graded are llmlab.data.documents passages
