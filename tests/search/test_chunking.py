"""Chunking: exact offsets for every strategy, full coverage, size limits, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmlab.data.headings import find_headings
from llmlab.search.chunking import (
    STRATEGIES,
    TokenCounter,
    chunk_text,
    count_tokens,
    embedder_tokenizer,
    sentence_spans,
)

DOC = """Title
=====

Intro paragraph. It has two sentences.

First section
-------------

Python is a programming language. It was created by Guido van Rossum.
Lists are mutable; tuples are not!  Why? Because tuples are hashable.

Second section
--------------

Cats purr. Dogs bark. Birds sing in the morning and fly south in winter.
"""


def fake_embed(texts):
    """Letter-count vectors, unit length: a deterministic stand-in for the embedder."""
    v = np.array([[t.lower().count(c) + 0.1 for c in "abcdefghijklmnopqrstuvwxyz"] for t in texts])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunks(text, strategy, size, overlap=0):
    return chunk_text(text, strategy, size=size, overlap=overlap, embed=fake_embed)


def check(text, result, size=None):
    for c in result:
        assert text[c.start : c.end] == c.text and c.text.strip() == c.text and c.text
    covered = set()
    for c in result:
        covered.update(range(c.start, c.end))
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and i not in covered]
    assert not missing, f"characters not in any chunk: {[text[i] for i in missing][:10]}"
    assert [c.start for c in result] == sorted(c.start for c in result)
    if size is not None:
        counter = TokenCounter(text)
        assert all(counter.count(c.start, c.end) <= size for c in result)


words = st.sampled_from(
    [
        "Python",
        "list",
        "the",
        "tokens",
        "naïve",
        "日本",
        "x",
        "!",
        "Why?",
        "end.",
        "\n",
        "\n\n",
        "  ",
        "====",
        "# Title\n",
        "straße",
        "12.5",
    ]
)
texts = st.lists(words, min_size=1, max_size=80).map(" ".join).filter(str.strip)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.sampled_from(STRATEGIES), st.integers(1, 40), st.integers(0, 10))
def test_offsets_coverage_and_size_for_every_strategy(text, strategy, size, overlap):
    overlap = min(overlap, size - 1)
    result = chunks(text, strategy, size, overlap)
    check(text, result, size)


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=200).filter(str.strip), st.sampled_from(STRATEGIES))
def test_any_unicode_text_keeps_exact_offsets(text, strategy):
    check(text, chunks(text, strategy, size=8, overlap=2))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_size_limit_holds_when_each_chunk_is_tokenized_alone(strategy):
    result = chunks(DOC * 3, strategy, size=20)
    check(DOC * 3, result, 20)
    # re-tokenizing a chunk on its own can differ by a word piece at a cut inside a word
    assert all(count_tokens(c.text) <= 21 for c in result)


def test_tokens_strategy_windows_and_overlap():
    text = " ".join(f"w{i}" for i in range(100))  # "w0 w1 ... w99"
    n = count_tokens(text)
    result = chunks(text, "tokens", size=30, overlap=10)
    assert len(result) == -(-(n - 10) // 20)  # windows start every size - overlap tokens
    counter = TokenCounter(text)
    for a, b in zip(result, result[1:], strict=False):
        assert counter.count(b.start, a.end) == 10  # exactly `overlap` tokens repeated


def test_recursive_prefers_paragraph_then_sentence_boundaries():
    text = "Alpha beta gamma. Delta epsilon.\n\nZeta eta theta. Iota kappa."
    result = chunks(text, "recursive", size=12)
    assert [c.text for c in result] == [
        "Alpha beta gamma. Delta epsilon.",
        "Zeta eta theta. Iota kappa.",
    ]
    result = chunks(text, "recursive", size=5)
    assert result[0].text == "Alpha beta gamma."


def test_sentences_never_cut_a_sentence_that_fits():
    result = chunks(DOC, "sentences", size=25)
    for s, e in sentence_spans(DOC):
        if count_tokens(DOC[s:e].strip()) <= 25:
            assert any(
                c.start <= s + (len(DOC[s:e]) - len(DOC[s:e].lstrip())) and e <= c.end
                for c in result
            ), DOC[s:e]


def test_headings_found_and_chunks_stay_inside_sections():
    heads = find_headings(DOC)
    assert [h.title for h in heads] == ["Title", "First section", "Second section"]
    assert [h.level for h in heads] == ["=", "-", "-"]
    md = "# One\ntext one\n\n## Two\ntext two\n"
    assert [(h.title, h.level) for h in find_headings(md)] == [("One", "#"), ("Two", "##")]
    result = chunks(DOC, "headings", size=200)
    assert len(result) == 3 and result[1].text.startswith("First section")
    for c in chunks(DOC, "headings", size=12):
        assert not ("Cats" in c.text and "Guido" in c.text)


def test_semantic_breaks_where_the_topic_changes_with_the_real_embedder():
    text = (
        "Cats purr when content. Kittens love to chase yarn. A cat sleeps most of the day. "
        "Stock markets fell sharply today. Investors sold bonds and shares. "
        "Interest rates rose at the central bank."
    )
    result = chunk_text(text, "semantic", size=200, threshold=20)
    assert len(result) == 2
    assert result[0].text.endswith("most of the day.") and result[1].text.startswith("Stock")


def test_tokenizer_is_the_embedders():
    from llmlab.search.embeddings import default_embedder

    text = "Tokenization of naïve text, straße."
    st_ids = default_embedder().tokenizer(text, add_special_tokens=False)["input_ids"]
    assert embedder_tokenizer().encode(text, add_special_tokens=False).ids == st_ids


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(text="", size=10), "non-empty"),
        (dict(text="  \n", size=10), "non-empty"),
        (dict(text="hi", size=0), "positive"),
        (dict(text="hi", size=10, overlap=10), "smaller than size"),
        (dict(text="hi", size=10, overlap=-1), "at least 0"),
        (dict(text="hi", strategy="words"), "Unknown strategy"),
        (dict(text="hi", strategy="semantic", threshold=150), "percentile"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        chunk_text(**kwargs)
