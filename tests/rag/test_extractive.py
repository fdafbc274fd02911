"""Tests for llmlab.rag.extractive: answer units, coverage, and the best unit for a question."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from llmlab.data.documents import Document
from llmlab.rag.extractive import (
    Extractor,
    answer_units,
    asks_how,
    corpus_idf,
    coverage,
    literal,
    stems,
)

RST = """Installation
============

.. _install:

To install it, run::

    $ python -m pip install thing

Proxies
-------

If you need a proxy, pass ``proxies`` to any request.
Environment variables work too:

- HTTP_PROXY
- HTTPS_PROXY

.. note:: Proxies may need credentials.
"""

MD = """# Tool

[![Build](https://ci.example/badge.svg)](https://ci.example)

[lz4]: https://lz4.github.io/lz4/

1. Create the dictionary

   `tool --train samples/* -o dict`

2. Use it

   `tool -D dict FILE`

~~~
code with

a blank line
~~~
"""


def texts(text):
    return [text[u.start : u.end] for u in answer_units(text)]


def test_units_keep_what_an_answer_needs_and_drop_markup():
    rst = texts(RST)
    assert rst[0] == "To install it, run::\n\n    $ python -m pip install thing"  # + its code
    assert "Installation" not in "".join(rst) and ".. _install:" not in "".join(rst)
    assert rst[1].startswith("If you need a proxy") and rst[1].endswith("- HTTPS_PROXY")  # "too:"
    assert rst[2] == ".. note:: Proxies may need credentials."  # a directive with text stays
    assert [u.heading for u in answer_units(RST)] == ["Installation", "Proxies", "Proxies"]
    md = texts(MD)
    assert "badge" not in "".join(md) and "lz4.github" not in "".join(md)
    assert md[0] == "1. Create the dictionary\n\n   `tool --train samples/* -o dict`"
    assert md[-1].endswith("`tool -D dict FILE`\n\n~~~\ncode with\n\na blank line\n~~~")  # whole


def test_a_rest_underline_of_tildes_is_not_a_code_fence():
    text = "Title\n~~~~~\n\nFirst.\n\nSecond.\n"
    assert texts(text) == ["First.", "Second."]


def test_long_paragraphs_are_also_offered_sentence_by_sentence():
    long = " ".join(f"Sentence {i} says something about topic {i}." for i in range(20))
    units = answer_units(long)
    assert {u.kind for u in units} == {"sentence", "prose"} and len(units) == 21
    assert all(long[u.start : u.end].strip() == long[u.start : u.end] for u in units)


def test_words_stems_coverage_and_literals():
    assert stems("Compiling XZ with debugging") == {"compi", "xz", "debug"}
    idf = corpus_idf(["compile the code", "debug the code", "code code"])
    assert idf("xz") > idf("debug") > idf("code")  # never seen > rare > everywhere
    assert coverage("How do I debug code?", "to debug, read the code", idf) == 1.0
    assert 0 < coverage("How do I debug xz?", "to debug, read the code", idf) < 0.5
    assert coverage("the of and", "anything", idf) == 0.0
    assert literal("Use the --cert option.") and literal("mail <bug@gnu.org>")
    assert not literal("It is fast and well-known.")
    assert asks_how("How do I copy a file?") and asks_how("Which option sets it?")
    assert not asks_how("Why is the sky blue?")


class WordEmbedder:
    """Bag-of-words vectors: cosine = shared words (a stand-in for MiniLM)."""

    def __init__(self, vocab):
        self.vocab = {w: i for i, w in enumerate(sorted(vocab))}

    def __call__(self, texts):
        out = np.zeros((len(texts), len(self.vocab)), np.float32)
        for r, t in enumerate(texts):
            for w in stems(t):
                if w in self.vocab:
                    out[r, self.vocab[w]] = 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_the_best_unit_is_located_and_excluding_it_gives_the_next():
    doc = Document(path="guide.rst", text=RST)
    vocab = set().union(*(stems(t) for t in [RST, "How do I set a proxy?"]))
    ex = Extractor(lambda s: doc, WordEmbedder(vocab), corpus_idf([RST]))
    hit = SimpleNamespace(passage=doc.passage(0, len(RST)))
    found = ex.best("How do I set a proxy?", [hit])
    assert found.passage.source == "guide.rst" and "proxies" in found.passage.text
    assert found.passage.text == RST[found.passage.start : found.passage.end]
    assert found.ranked[0].score == found.score >= found.ranked[-1].score
    u = found.best.unit
    again = ex.best("How do I set a proxy?", [hit], exclude={("guide.rst", u.start, u.end)})
    assert again.passage.start != found.passage.start or again.passage.end != found.passage.end
    assert ex.best("anything", []) is None


@pytest.mark.parametrize("name", ["tune", "test"])
def test_extract_answers_most_eval_questions_right(name, embedder, tmp_path_factory, monkeypatch):
    """The default mode on two eval folders of real documentation: most questions right, with
    the right file cited, and every off-topic question refused (checks the tables in notes.md)."""
    from llmlab.rag.answer_eval import grade, load_eval_set, tally
    from llmlab.rag.docchat import DocChat
    from llmlab.search.docs_index import open_index

    # the index cache is shared with tests/cli/test_ask.py's example commands (same worker)
    monkeypatch.setenv("LLMLAB_DOCS_CACHE", str(tmp_path_factory.getbasetemp() / "docs-eval-index"))
    es = load_eval_set(name)
    bot = DocChat(open_index(es.folder, embedder=embedder, progress=False)[0])
    grades = [
        grade(a, q)
        for a, q in zip(bot.ask_many([q.question for q in es.questions]), es.questions, strict=True)
    ]
    t = tally(grades, es.questions)
    assert t.right >= 10 and t.wrong <= 2 and t.off_refused == t.off_total, t.row()
