"""Question forms read by rule (llmlab.research.forms): lookups, comparisons, chains, and None."""

from __future__ import annotations

import pytest

from llmlab.data.datasets import load_research_questions
from llmlab.research.forms import ask_for, parse_question, then_ask


@pytest.mark.parametrize(
    ("question", "relation", "entity", "noun"),
    [
        ("In what year was the film Jaws released?", "year", "Jaws", "film"),
        ("When was the novel Dracula published?", "year", "Dracula", "novel"),
        (
            "Who directed the film 2001: A Space Odyssey?",
            "director",
            "2001: A Space Odyssey",
            "film",
        ),
        ("Who was the director of Psycho?", "director", "Psycho", ""),
        (
            "Who wrote the novel One Hundred Years of Solitude?",
            "author",
            "One Hundred Years of Solitude",
            "novel",
        ),
        ("Who is the author of the book Dracula?", "author", "Dracula", "novel"),
        ("What is the capital of Turkey?", "capital", "Turkey", ""),
        ("Which country is Bogotá the capital of?", "country", "Bogotá", ""),
        ("What nationality was Alfred Hitchcock?", "nationality", "Alfred Hitchcock", ""),
        ("When was Marie Curie born?", "born", "Marie Curie", ""),
    ],
)
def test_lookups(question, relation, entity, noun):
    form = parse_question(question)
    assert form is not None and form.kind == "lookup"
    (ask,) = form.asks
    assert (ask.relation, ask.entity, ask.noun) == (relation, entity, noun)


def test_compare_reads_both_things_and_the_direction():
    form = parse_question("Which film came out first: Jaws or The Godfather?")
    assert form.kind == "compare" and form.pick == "first"
    assert [a.entity for a in form.asks] == ["Jaws", "The Godfather"]
    assert form.asks[0].question == "In what year was the film Jaws released?"
    assert form.asks[0].cloze == "Jaws was released in"
    later = parse_question("Who was born later, Marie Curie or Albert Einstein?")
    assert later.pick == "last" and later.asks[1].relation == "born"
    assert parse_question("Which came first, Jaws or Psycho?").kind == "compare"


def test_chain_puts_the_first_answer_into_the_second_question():
    form = parse_question("What nationality was the director of the film Psycho?")
    assert form.kind == "chain" and form.asks[0].question == "Who directed the film Psycho?"
    second = then_ask(form, "Alfred Hitchcock")
    assert second.question == "What nationality was Alfred Hitchcock?"
    assert second.answer_type == "nationality" and second.cloze == "Alfred Hitchcock was"
    born = parse_question("In what year was the director of Psycho born?")
    assert born.kind == "chain" and born.asks[0].entity == "Psycho"  # not "Psycho born"
    assert then_ask(born, "Alfred Hitchcock").relation == "born"
    assert (
        then_ask(born, "  ") is None and then_ask(parse_question("Who wrote Dracula?"), "X") is None
    )


def test_a_title_that_looks_like_a_chain_stays_a_lookup():
    form = parse_question("Who directed the film The Director of Nothing?")
    assert form.kind == "lookup" and form.asks[0].entity == "The Director of Nothing"


@pytest.mark.parametrize(
    "question",
    ["What is the weather like?", "Why did the Roman Empire fall?", "Compare Jaws and Psycho."],
)
def test_other_questions_are_not_guessed(question):
    assert parse_question(question) is None


def test_every_question_of_the_set_is_read_with_its_kind():
    kinds = {
        "film_year": "lookup",
        "film_director": "lookup",
        "novel_author": "lookup",
        "capital": "lookup",
        "which_first": "compare",
        "director_nationality": "chain",
    }
    for q in load_research_questions():
        form = parse_question(q.question)
        assert form is not None and form.kind == kinds[q.kind], q.question


def test_bad_input():
    with pytest.raises(ValueError, match="empty"):
        parse_question("  ")
    assert (
        ask_for("year", "Dracula", "book").question
        == "In what year was the novel Dracula published?"
    )
