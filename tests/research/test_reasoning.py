"""Reasoning in code (llmlab.research.reasoning): compare, chain, ties, missing facts, checks."""

from __future__ import annotations

from llmlab.data.documents import Document
from llmlab.research.facts import Fact
from llmlab.research.forms import ask_for, parse_question, then_ask
from llmlab.research.reasoning import check, conclude, fact_sentence

LEADS = {
    "Jaws_film.txt": "Jaws (film)\n\nJaws is a 1975 American thriller film.\n",
    "The_Godfather.txt": "The Godfather\n\nThe Godfather is a 1972 American crime film.\n",
    "Psycho_1960_film.txt": "Psycho (1960 film)\n\nPsycho is a 1960 film directed by Alfred "
    "Hitchcock.\n",
    "Alfred_Hitchcock.txt": "Alfred Hitchcock\n\nSir Alfred Joseph Hitchcock was an English "
    "filmmaker.\n",
    "Mirror_1975_film.txt": "Mirror (1975 film)\n\nMirror is a 1975 Soviet drama film.\n",
    "Rod_Laver.txt": "Rod Laver\n\nRodney George Laver is an Australian tennis player.\n",
}


def fact(ask, source, value, titled=False):
    """The Fact ``llmlab.research.facts.decide`` would give: ``value`` copied from line 3."""
    doc = Document(path=source, text=LEADS[source])
    line = doc.text.split("\n")[2]
    start = doc.text.index(line)
    passage = doc.passage(start, start + len(line))
    return Fact(
        ask=ask,
        value=value,
        source=source,
        passage=passage,
        titled=doc.passage(0, passage.end) if titled else None,
    )


def test_compare_is_a_line_of_code_on_two_checked_facts():
    form = parse_question("Which film came out first: Jaws or The Godfather?")
    a, b = form.asks
    found = conclude(form, [fact(a, "Jaws_film.txt", "1975"), fact(b, "The_Godfather.txt", "1972")])
    assert found.short == "The Godfather" and found.rule == "1972 < 1975"
    assert found.conclusion == "The Godfather (1972) came out before Jaws (1975)."
    assert [c.verified for c in found.checks] == [True, True]
    assert found.parts[1:] == [
        "Jaws was released in 1975 [Jaws_film.txt:3].",
        "The Godfather was released in 1972 [The_Godfather.txt:3].",
    ]
    later = parse_question("Which film came out later: Jaws or The Godfather?")
    facts = [
        fact(later.asks[0], "Jaws_film.txt", "1975"),
        fact(later.asks[1], "The_Godfather.txt", "1972"),
    ]
    assert conclude(later, facts).short == "Jaws"


def test_a_tie_or_a_missing_fact_is_no_answer_with_a_reason():
    form = parse_question("Which film came out first: Jaws or Mirror?")
    a, b = form.asks
    tie = conclude(
        form, [fact(a, "Jaws_film.txt", "1975"), fact(b, "Mirror_1975_film.txt", "1975")]
    )
    assert tie.short == "" and "both are from 1975" in tie.why
    form = parse_question("Which film came out first: Jaws or The Godfather?")
    a, b = form.asks
    lost = Fact(ask=b, value="", source="", passage=None, how="no document")
    gone = conclude(form, [fact(a, "Jaws_film.txt", "1975"), lost])
    assert gone.short == "" and "no document is about 'The Godfather'" in gone.why


def test_a_fact_the_check_does_not_verify_withholds_the_answer():
    form = parse_question("In what year was the film Jaws released?")
    wrong = fact(form.asks[0], "The_Godfather.txt", "1972")  # copied from the wrong article
    found = conclude(form, [wrong])
    assert found.short == "" and not found.checks[0].verified and "check does not find" in found.why


def test_chain_reads_as_two_facts_and_the_answer():
    form = parse_question("What nationality was the director of the film Psycho?")
    first = fact(form.asks[0], "Psycho_1960_film.txt", "Alfred Hitchcock")
    second = fact(then_ask(form, "Alfred Hitchcock"), "Alfred_Hitchcock.txt", "English")
    found = conclude(form, [first, second])
    assert found.short == "English" and fact_sentence(second) == "Alfred Hitchcock was English."
    assert found.conclusion.startswith("The answer is English: Psycho was directed by Alfred")
    stopped = conclude(form, [first])  # the chain's second lookup never ran
    assert stopped.short == "" and "second lookup" in stopped.why


def test_the_title_line_joins_the_citation_when_the_sentence_names_the_entity_otherwise():
    ask = ask_for("nationality", "Rod Laver")
    alone = check(fact(ask, "Rod_Laver.txt", "Australian"))
    assert not alone.verified  # "Rod" is not in "Rodney George Laver is an Australian ..."
    titled = check(fact(ask, "Rod_Laver.txt", "Australian", titled=True))
    assert titled.verified and titled.fact.where == "Rod_Laver.txt:1-3"
    assert titled.cited == "Rod Laver was Australian [Rod_Laver.txt:1-3]."
