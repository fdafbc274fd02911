"""Tests for the research question set (llmlab.data.datasets.load_research_questions)."""

from __future__ import annotations

from llmlab.data.datasets import load_research_questions, load_wiki_summaries
from llmlab.research.corpus import wiki_filename


def test_question_set_shape():
    qs = load_research_questions()
    assert len(qs) >= 30
    assert sum(q.hops == 2 for q in qs) >= 8  # some need two articles
    assert len({q.question for q in qs}) == len(qs) and len({q.id for q in qs}) == len(qs)
    for q in qs:
        assert q.question.endswith("?") and q.answers and q.hops == len(q.gold)
        assert q.sources == tuple(wiki_filename(t) for t in q.gold)


def test_answers_appear_in_the_gold_leads():
    by_title = {a.title: a.extract for a in load_wiki_summaries()}
    for q in load_research_questions():
        leads = " ".join(by_title[t] for t in q.gold)  # KeyError: a gold title is not an article
        for answer in q.answers:
            assert answer in leads, (q.id, answer)


def test_two_hop_questions_need_both_articles():
    """Each gold article of a two-hop question holds something the other lacks: a "which first"
    question names both titles; the chained question's answer is in the second (person) lead."""
    by_title = {a.title: a.extract for a in load_wiki_summaries()}
    for q in load_research_questions():
        if q.kind == "director_nationality":
            film, person = q.gold
            assert person in by_title[film] and q.answers[0] in by_title[person]
        elif q.kind == "which_first":
            assert all(t.split(" (")[0] in q.question for t in q.gold)


def test_heldout_questions_come_from_other_articles_and_their_descriptions():
    """phase-5-agents/data/check_heldout.py asks about the corpus's distractors only, with gold
    answers from each article's description (not from the lead the agent reads)."""
    import importlib.util

    from llmlab.data.datasets import REPO

    path = REPO / "phase-5-agents" / "data" / "check_heldout.py"
    spec = importlib.util.spec_from_file_location("check_heldout", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.build()
    kinds = {r["kind"] for r in rows}
    assert kinds == {"nationality", "born_first", "capital"} and len(rows) >= 60
    gold_names = {t.split(" (")[0] for q in load_research_questions() for t in q.gold}
    assert not any(g in r["question"] for r in rows for g in gold_names)  # no tuned-on article
    descriptions = {a.title.split(" (")[0]: a.description for a in load_wiki_summaries()}
    for r in rows:
        if r["kind"] == "nationality":
            person = r["question"].removeprefix("What nationality was ").rstrip("?")
            assert descriptions[person].startswith(r["answers"][0]), r
