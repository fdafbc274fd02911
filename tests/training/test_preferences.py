"""llmlab.training.preferences: the two sets of preference pairs and the held-out split."""

from __future__ import annotations

import pytest

from llmlab.data.datasets import WikiArticle, load_preferences, load_wiki_summaries
from llmlab.training.preferences import (
    PreferencePair,
    fact_swap_pairs,
    lead_predicate,
    polite_pairs,
    split_pairs,
)


def test_polite_pairs_come_from_rasbts_file():
    pairs = polite_pairs()
    raw = load_preferences()
    assert len(pairs) == sum(p.chosen != p.rejected for p in raw) == 1094
    assert all(p.chat and p.chosen != p.rejected for p in pairs)
    with_input = next(p for p in raw if p.input)
    pair = next(p for p in pairs if p.chosen == with_input.chosen)
    assert pair.prompt == f"{with_input.instruction}\n\n{with_input.input}"
    assert pair.text("Yes.") == pair.prompt + "\nYes."


def test_lead_predicate_reads_the_first_sentence():
    art = WikiArticle(
        title="Tyto",
        extract="Tyto is a genus of owls in the family Tytonidae. It has 20 species.",
        description="Genus of birds",
        topic="Biology and health sciences",
    )
    assert lead_predicate(art) == ("is", "a genus of owls in the family Tytonidae.")
    other = WikiArticle(
        title="X", extract="The X (born 1900) was a man.", description="", topic="People"
    )
    assert lead_predicate(other) is None


def test_fact_swap_pairs_keep_the_style_and_swap_the_fact():
    pairs = fact_swap_pairs(50, seed=3)
    assert pairs == fact_swap_pairs(50, seed=3)  # fixed by the seed
    assert pairs != fact_swap_pairs(50, seed=4)
    topic_of = {}
    for a in load_wiki_summaries():
        if (found := lead_predicate(a)) is not None:
            topic_of.setdefault(found[1], set()).add(a.topic)
    for p in pairs:
        assert not p.chat and p.chosen != p.rejected
        assert p.chosen.startswith(" ") and p.rejected.startswith(" ")
        title, verb = p.prompt.rsplit(" ", 1)
        assert verb in {"is", "was", "are", "were"}
        # the rejected predicate belongs to an article of the same topic as the chosen one
        assert topic_of[p.chosen[1:]] & topic_of[p.rejected[1:]]
    with pytest.raises(ValueError, match="n must be"):
        fact_swap_pairs(0)


def test_split_is_disjoint_and_fixed():
    pairs = [PreferencePair(prompt=str(i), chosen="a", rejected="b") for i in range(20)]
    train, held = split_pairs(pairs, 5, seed=1)
    assert len(train) == 15 and len(held) == 5
    assert {p.prompt for p in train}.isdisjoint(p.prompt for p in held)
    assert (train, held) == split_pairs(pairs, 5, seed=1)
    with pytest.raises(ValueError, match="n_heldout"):
        split_pairs(pairs, 20)
