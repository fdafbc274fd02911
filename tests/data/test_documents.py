"""Tests for llmlab.data.documents: a Document, the Passage of a span, and where it points."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab.data.documents import Document, Passage
from llmlab.search.semantic_index import Hit


def test_passage_of_a_span_has_its_text_offsets_and_lines():
    doc = Document(path="notes/a.md", text="# A\nOne.\nTwo.\n\nThree.\n")
    p = doc.passage(4, 13)
    assert p == Passage(
        source="notes/a.md", start=4, end=13, first_line=2, last_line=3, text="One.\nTwo."
    )
    assert p.where == "notes/a.md:2-3"
    assert doc.passage(15, 21).where == "notes/a.md:5"  # one line: no range
    assert doc.line_starts == [0, 4, 9, 14, 15, 22]


@pytest.mark.parametrize("span", [(3, 3), (5, 2), (-1, 4), (0, 99)])
def test_an_empty_or_outside_span_is_refused(span):
    with pytest.raises(ValueError, match="start < end"):
        Document(path="a.md", text="abc\ndef\n").passage(*span)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ab \n", min_size=1, max_size=60), st.data())
def test_lines_count_newlines_before_the_span(text, data):
    doc = Document(path="x.txt", text=text)
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    p = doc.passage(start, end)
    assert p.text == text[start:end]
    assert p.first_line == text.count("\n", 0, start) + 1
    assert p.last_line == text.count("\n", 0, end - 1) + 1


def test_a_hit_points_at_its_passage_or_its_id():
    p = Document(path="a.md", text="alpha\nbeta\n").passage(6, 10)
    assert Hit(id=3, text=p.text, score=0.5, passage=p).where == "a.md:2"
    assert Hit(id="faq-7", text="x", score=0.1).where == "faq-7"
