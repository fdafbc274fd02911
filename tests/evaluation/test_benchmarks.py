"""llmlab.evaluation.benchmarks: the frozen files keep their promises; the builders' parts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from llmlab.data.datasets import load_wiki_summaries
from llmlab.evaluation.benchmarks import (
    FAQ_MC_FILE,
    answer_snippet,
    build_faq_mc,
    content_words,
    load_faq_mc,
    load_wiki_mc,
    pick_distractors,
    plain_text,
)


@pytest.fixture(scope="module")
def wiki():
    return load_wiki_mc()


def test_wiki_mc_shape_and_balance(wiki):
    assert (len(wiki.dev), len(wiki.test)) == (100, 200)
    items = wiki.dev + wiki.test
    assert len({it.id for it in items}) == 300
    assert all(len(set(it.choices)) == 4 for it in items)
    assert Counter(it.answer for it in items) == {0: 75, 1: 75, 2: 75, 3: 75}  # "always A" = 25%
    assert "CC BY-SA" in wiki.licence


def test_wiki_mc_items_come_from_the_articles(wiki):
    articles = {a.title: a for a in load_wiki_summaries()}
    for it in wiki.dev + wiki.test:
        info = wiki.info[it.id]
        gold = articles[it.choices[it.answer]]
        assert gold.title == info["title"] and gold.description in it.question
        assert gold.title.lower() not in it.question.lower()  # no giveaway
        for k, choice in enumerate(it.choices):
            other = articles[choice]
            assert other.topic == gold.topic  # distractors from the same topic
            if k != it.answer:  # ...and no second right answer by its own description
                assert not content_words(gold.description) <= content_words(other.description)


def test_wiki_mc_distractors_are_near_neighbours(wiki, embedder):
    """The distractors are closer to the gold article in MiniLM space than random articles of
    the same topic (the point of 'hard by design'), on a sample of 10 items."""
    from llmlab.search.embeddings import embed

    articles = {a.title: a for a in load_wiki_summaries()}
    rng = np.random.default_rng(0)
    by_topic = {}
    for a in articles.values():
        if a.description:
            by_topic.setdefault(a.topic, []).append(a)
    for it in wiki.test[:10]:
        gold = articles[it.choices[it.answer]]
        others = [articles[c] for k, c in enumerate(it.choices) if k != it.answer]
        pool = by_topic[gold.topic]
        randoms = [pool[i] for i in rng.choice(len(pool), 10, replace=False)]
        texts = [f"{a.title}: {a.description}" for a in [gold, *others, *randoms]]
        v = embed(texts)  # (14, 384)
        sims = v[1:] @ v[0]
        assert sims[:3].min() > np.median(sims[3:])


def test_faq_mc_shape(embedder):
    faq = load_faq_mc()
    assert len(faq.test) == 32 and not faq.dev
    assert Counter(it.answer for it in faq.test) == {0: 8, 1: 8, 2: 8, 3: 8}
    assert all(len(set(it.choices)) == 4 for it in faq.test)


def test_faq_mc_file_is_what_the_builder_writes(embedder):
    import json

    from llmlab.data.datasets import data_file

    rows = [json.loads(line) for line in data_file(FAQ_MC_FILE).read_text().splitlines()]
    assert build_faq_mc() == rows


def test_pick_distractors_by_hand():
    vectors = np.array([[1, 0], [0.9, 0.44], [0.8, 0.6], [0.6, 0.8], [0, 1.0]], dtype=np.float32)
    titles = ["Gold", "Near", "Same words", "Mid", "Far"]
    descriptions = [
        "edible red fruit",
        "a vegetable",
        "edible red fruit of a vine",
        "a nut",
        "a car",
    ]
    # "Same words" is nearer than "Mid" but its description contains every content word of the
    # gold's (a second right answer): skipped
    assert pick_distractors(0, range(5), vectors, descriptions, titles, k=3) == [1, 3, 4]
    with pytest.raises(ValueError, match="usable distractors"):
        pick_distractors(0, range(3), vectors, descriptions, titles, k=3)


def test_rest_markup_becomes_plain_text():
    assert plain_text("Use :func:`len` or ``x[0]``; see :pep:`8`.") == "Use len or x[0]; see PEP 8."
    assert plain_text("`Cython <https://cython.org>`_ compiles::") == "Cython compiles:"
    # sentences are added until 8 words, then the text is cut at 12 words
    assert answer_snippet("Yes. You can. It works in most cases. More later.") == (
        "Yes. You can. It works in most cases."
    )
    long = " ".join(f"w{i}" for i in range(40)) + "."
    assert answer_snippet(long) == " ".join(f"w{i}" for i in range(12)) + " ..."
