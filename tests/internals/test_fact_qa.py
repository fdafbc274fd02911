"""Tests for llmlab.internals.fact_qa: seeded items, prompt layouts, and one real answer."""

from __future__ import annotations

import pytest

from llmlab.internals import fact_qa


def test_items_are_seeded_and_consistent():
    a, b = fact_qa.make_items(3, 5, seed=0), fact_qa.make_items(3, 5, seed=0)
    assert a == b and a != fact_qa.make_items(3, 5, seed=1)
    for it in a:
        assert len(set(it.names)) == 5 and it.answer == it.cities[it.ask]
    with pytest.raises(ValueError, match="n_facts"):
        fact_qa.make_items(1, 0, seed=0)


def test_question_placement():
    it = fact_qa.Item(("Bob", "Ann"), ("Oslo", "Rome"), 1)
    q = "Which city does Ann live in?"
    assert fact_qa.user_message(it, "after").endswith(q)
    assert fact_qa.user_message(it, "before").startswith(q)
    both = fact_qa.user_message(it, "both")
    assert both.startswith(q) and both.endswith(q) and "Bob lives in Oslo." in both
    with pytest.raises(ValueError, match="order"):
        fact_qa.user_message(it, "middle")


def test_ask_one_fact_is_answered(lm):
    assert len(fact_qa.city_ids(lm)) == len(fact_qa.CITIES)
    ans = fact_qa.ask(lm, fact_qa.Item(("Bob",), ("Tokyo",), 0), "before")
    assert ans.correct and ans.said == "Tokyo" and ans.p_correct > 0.5 and ans.n_tokens > 10
