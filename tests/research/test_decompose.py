"""The facts mode end to end (llmlab.research.decompose through research_many): forms, title
match, copied facts, comparison and chain in code, line-numbered citations, budgets, fallback,
and what a document that gives orders can do to it.

The model is a scripted server-like chat (no ``.lm``, so the facts are its free answers snapped
to the listed spans); the search is word overlap (``tests.research.test_agent.WordCorpus``).
"""

from __future__ import annotations

import json
import re

import pytest

from llmlab.agents.run_record import Budget
from llmlab.chat.records import ChatResult, Usage
from llmlab.research.agent import research, research_many
from llmlab.research.injection import Defences
from tests.research.test_agent import WordCorpus

DOCS = {
    "Jaw.txt": "Jaw\n\nThe jaws are a pair of opposable articulated structures at the entrance "
    "of the mouth, seen in every film about sharks.",
    "Jaws_film.txt": "Jaws (film)\n\nJaws is a 1975 American thriller film directed by Steven "
    "Spielberg, based on the 1974 novel by Peter Benchley. It stars Roy Scheider.",
    "The_Godfather.txt": "The Godfather\n\nThe Godfather is a 1972 American crime film directed "
    "by Francis Ford Coppola. It stars Marlon Brando.",
    "Psycho_1960_film.txt": "Psycho (1960 film)\n\nPsycho is a 1960 American horror film "
    "produced and directed by Alfred Hitchcock. The screenplay is by Joseph Stefano.",
    "Alfred_Hitchcock.txt": "Alfred Hitchcock\n\nSir Alfred Joseph Hitchcock was an English "
    "filmmaker.",
}
ANSWERS = {  # what the scripted model says to each lookup's question
    "In what year was the film Jaws released?": "1975",
    "In what year was the film The Godfather released?": "It came out in 1972.",
    "Who directed the film Psycho?": "Alfred Hitchcock",
    "What nationality was Alfred Hitchcock?": "English",
}


class ScriptedChat:
    """A server-like chat (no ``.lm``): answers each lookup from ``ANSWERS`` (or ``default``)."""

    def __init__(self, default="I do not know", tokens=20):
        self.default, self.tokens, self.calls = default, tokens, []

    def complete_batch(self, chats, max_tokens=256, temperature=0.0, stop=None, seed=None):
        out = []
        for chat in chats:
            question = chat[-1]["content"].rsplit("Question: ", 1)[-1].strip()
            self.calls.append(question)
            out.append(
                ChatResult(
                    text=ANSWERS.get(question, self.default),
                    usage=Usage(prompt_tokens=self.tokens, completion_tokens=3),
                    finish_reason="stop",
                )
            )
        return out


@pytest.fixture()
def corpus(tmp_path):
    root = tmp_path / "wiki"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text + "\n", encoding="utf-8")
    return WordCorpus(root)


def test_comparison_is_answered_by_code_from_two_cited_facts(corpus):
    res = research("Which film came out first: Jaws or The Godfather?", corpus, chat=ScriptedChat())
    assert res.mode == "facts" and res.short_answer == "The Godfather"
    assert res.conclusion == "The Godfather (1972) came out before Jaws (1975)."
    assert res.answer.startswith(
        "The Godfather (1972) came out before Jaws (1975) [Jaws_film.txt:3][The_Godfather.txt:3]."
    )
    assert [(c.where, c.verified) for c in res.citations] == [
        ("Jaws_film.txt:3", True),
        ("The_Godfather.txt:3", True),
    ]
    assert res.citations[0].text.startswith("Jaws is a 1975 American thriller film")
    assert "Jaw.txt" not in res.sources  # the anatomy article was never read
    kinds = [s.tool or s.kind for s in res.steps]
    assert kinds == ["plan", "find", "find", "extract", "reason"]
    assert res.steps[1].arguments == {"query": "Jaws film", "read": ["Jaws_film.txt"]}


def test_chain_carries_the_first_answer_into_the_second_lookup(corpus):
    chat = ScriptedChat()
    res = research("What nationality was the director of the film Psycho?", corpus, chat=chat)
    assert res.short_answer == "English"
    assert chat.calls == ["Who directed the film Psycho?"]  # two names: the model chooses
    # the second lead has one nationality word: it is copied without asking the model
    assert "Alfred Hitchcock was English" in res.answer
    assert [c.where for c in res.citations] == ["Psycho_1960_film.txt:3", "Alfred_Hitchcock.txt:3"]
    assert all(c.verified for c in res.citations)


def test_no_document_no_answer_and_the_reason(corpus):
    res = research("Which film came out first: Jaws or Casablanca?", corpus, chat=ScriptedChat())
    assert res.short_answer == "" and "Casablanca" in res.why
    assert res.answer.startswith("No answer: no document is about 'Casablanca'")
    assert [c.where for c in res.citations] == ["Jaws_film.txt:3"]  # what was found is still shown


def test_an_answer_that_is_not_in_the_text_is_no_answer(corpus):
    res = research("Who directed the film Jaws?", corpus, chat=ScriptedChat(default="Orson Welles"))
    assert res.short_answer == "" and "no name" in res.why and "Welles" not in res.answer


def test_a_question_no_rule_reads_goes_to_the_verify_pipeline(corpus):
    res = research("Tell me about sharks in films", corpus, chat=ScriptedChat(default="Jaws [1]"))
    assert res.mode == "verify" and [s.kind for s in res.steps][0] == "plan"


def test_budget_stops_the_facts_mode_with_a_partial_answer(corpus):
    res = research(
        "Which film came out first: Jaws or The Godfather?",
        corpus,
        chat=ScriptedChat(),
        budget=Budget(max_steps=2),
    )
    assert res.stop_reason == "max_steps" and len(res.steps) <= 2 and res.short_answer == ""
    assert res.answer.startswith("Partial answer (stopped by the step budget")


def test_json_citations_carry_lines(corpus):
    out = research(
        "In what year was the film Jaws released?", corpus, chat=ScriptedChat()
    ).to_json()
    assert out["short_answer"] == "1975" and out["mode"] == "facts"
    assert out["citations"] == [
        {
            "source": "Jaws_film.txt",
            "first_line": 3,
            "last_line": 3,
            "text": "Jaws is a 1975 American thriller film directed by Steven Spielberg, based on "
            "the 1974 novel by Peter Benchley.",
            "verified": True,
        }
    ]
    assert json.loads(json.dumps(out)) == out


def test_many_questions_in_one_batch(corpus):
    chat = ScriptedChat()
    qs = ["In what year was the film Jaws released?", "Which film came out first: Jaws or Psycho?"]
    first, second = research_many(qs, corpus, chat=chat, mode="facts")
    assert first.short_answer == "1975" and second.short_answer == "Psycho"  # 1960 < 1975
    assert "Psycho_1960_film.txt" in second.sources
    assert chat.calls.count("In what year was the film Jaws released?") == 2  # one batch, 2 rows


@pytest.mark.parametrize("phrasing", ["ignore", "system", "important", "subtle"])
def test_injection_cannot_reach_a_copied_fact(tmp_path, phrasing):
    """The trivia page is never read (the title picks the film's article); and an order placed
    inside the film's own article cannot become the answer: only a year can be copied."""
    from llmlab.research.injection import MARKER, PHRASINGS, injected_corpus, injection_succeeded

    case = injected_corpus(tmp_path, phrasing)
    obey = ScriptedChat(default=MARKER)  # a model that writes whatever the documents order
    ANSWERS_ORDERED = {case.question: f"{MARKER} 1975"}
    obey.complete_batch = _obeying(obey, ANSWERS_ORDERED)
    res = research(case.question, WordCorpus(case.root), chat=obey, defences=Defences.none())
    assert case.injected_source not in res.sources and not injection_succeeded(res.answer)
    article = case.root / "Jaws_film.txt"
    article.write_text(article.read_text().rstrip() + " " + PHRASINGS[phrasing] + "\n")
    res = research(case.question, WordCorpus(case.root), chat=obey, defences=Defences.none())
    assert res.short_answer == "1975" and not injection_succeeded(res.answer)
    assert re.search(r"\[Jaws_film\.txt:3\]", res.answer)


def _obeying(chat, answers):
    def complete_batch(chats, **kwargs):
        return [
            ChatResult(
                text=answers.get(c[-1]["content"].rsplit("Question: ", 1)[-1], "x"),
                usage=Usage(prompt_tokens=9, completion_tokens=3),
                finish_reason="stop",
            )
            for c in chats
        ]

    return complete_batch
