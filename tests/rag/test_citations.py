"""Tests for llmlab.rag.citations: ALCE citation recall/precision with the word-overlap entailment proxy."""

from __future__ import annotations

import pytest

from llmlab.rag.citations import (
    citation_precision,
    citation_recall,
    citation_scores,
    claims,
    entails,
    key_terms,
    verify_citations,
)

JAWS = (
    "Jaws (film)\n\nJaws is a 1975 American thriller film directed by Steven Spielberg, based "
    "on the 1974 novel by Peter Benchley. It stars Roy Scheider as police chief Martin Brody."
)
PSYCHO = (
    "Psycho (1960 film)\n\nPsycho is a 1960 American horror film produced and directed by "
    "Alfred Hitchcock. The screenplay, written by Joseph Stefano, is based on the 1959 novel "
    "by Robert Bloch."
)
HITCHCOCK = (
    "Alfred Hitchcock\n\nSir Alfred Joseph Hitchcock was an English filmmaker. He is "
    "widely regarded as one of the greatest figures in the history of cinema."
)
ACCRA = "Accra\n\nAccra is the capital and largest city of Ghana."
SOURCES = {
    "Jaws_film.txt": JAWS,
    "Psycho_1960_film.txt": PSYCHO,
    "Alfred_Hitchcock.txt": HITCHCOCK,
    "Accra.txt": ACCRA,
}


def test_faithful_citation_is_verified_with_the_quoted_sentence():
    [check] = verify_citations(
        "Jaws is a 1975 thriller directed by Steven Spielberg [Jaws_film.txt].", SOURCES
    )
    assert check.verified and check.source == "Jaws_film.txt"
    assert check.text.startswith("Jaws is a 1975 American thriller film")  # quoted from the source
    assert check.sentence == "Jaws is a 1975 thriller directed by Steven Spielberg [Jaws_film.txt]."
    assert claims(check.sentence)[0].text == "Jaws is a 1975 thriller directed by Steven Spielberg."


@pytest.mark.parametrize(
    "answer",
    [
        "Jaws was directed by Alfred Hitchcock [Jaws_film.txt].",  # a fact the source does not state
        "Jaws is a 1976 thriller film [Jaws_film.txt].",  # a wrong number
        "Jaws was not directed by Steven Spielberg [Jaws_film.txt].",  # a negation the source lacks
        "Jaws is a 1975 thriller film [Imaginary_film.txt].",  # a source that does not exist
        "Accra is the capital of Ghana [Jaws_film.txt].",  # a true fact cited to the wrong source
    ],
)
def test_fabricated_citations_are_caught(answer):
    checks = verify_citations(answer, SOURCES)
    assert len(checks) == 1 and not checks[0].verified
    assert citation_recall(answer, SOURCES) == 0.0 and citation_precision(answer, SOURCES) == 0.0


def test_missing_source_has_no_quote():
    [check] = verify_citations("Jaws is a 1975 film [nope.txt].", SOURCES)
    assert (check.source, check.text, check.verified) == ("nope.txt", "", False)


def test_two_sources_together_support_a_chained_claim():
    answer = (
        "Psycho was directed by Alfred Hitchcock, an English filmmaker "
        "[Psycho_1960_film.txt][Alfred_Hitchcock.txt]."
    )
    assert not entails(claims(answer)[0].text, PSYCHO)  # neither source alone says it all
    assert not entails(claims(answer)[0].text, HITCHCOCK)
    checks = verify_citations(answer, SOURCES)
    assert [c.verified for c in checks] == [True, True]  # both needed: both count
    assert citation_scores(answer, SOURCES).recall == 1.0


def test_precision_drops_for_an_unneeded_citation_recall_for_an_uncited_sentence():
    answer = (
        "Jaws is a 1975 thriller film [Jaws_film.txt][Accra.txt]. "
        "Accra is the capital of Ghana [Accra.txt]. Psycho is a 1960 horror film."
    )
    s = citation_scores(answer, SOURCES)
    assert (s.n_sentences, s.n_citations) == (3, 3)
    assert s.recall == pytest.approx(2 / 3)  # the uncited third sentence is unsupported
    assert s.precision == pytest.approx(2 / 3)  # Accra.txt is not needed for the Jaws sentence


def test_citation_after_the_full_stop_and_name_variants():
    answer = "Jaws is a 1975 thriller film. [jaws_film] Accra is the capital of Ghana. [Accra.txt, Jaws_film.txt]"
    cs = claims(answer)
    assert [c.cites for c in cs] == [("jaws_film",), ("Accra.txt", "Jaws_film.txt")]
    checks = verify_citations(answer, SOURCES)
    assert [(c.source, c.verified) for c in checks] == [
        ("Jaws_film.txt", True),
        ("Accra.txt", True),
        ("Jaws_film.txt", False),
    ]


def test_key_terms_and_possessives():
    assert key_terms("Jaws was directed by Alfred Hitchcock in 1975.") == {
        "jaws",
        "alfred",
        "hitchcock",
        "1975",
    }
    assert entails("Spielberg's Jaws is a 1975 thriller film.", JAWS)


def test_known_failures_of_the_proxy():
    """The docstring's limits, kept true: word order is invisible, paraphrase is not seen."""
    assert entails("Steven Spielberg is a 1975 film directed by Jaws.", JAWS)  # false, passes
    assert not entails("The shark film premiered in the mid-seventies.", JAWS)  # true, fails


def test_bad_sources():
    with pytest.raises(ValueError, match="dict"):
        verify_citations("Jaws [a].", ["a"])


def test_on_the_question_set_single_facts_are_judged_right_comparisons_are_not():
    """phase-5-agents/data/check_citation_proxy.py: templated answers over the real gold leads."""
    import importlib.util

    from llmlab.data.datasets import REPO

    path = REPO / "phase-5-agents" / "data" / "check_citation_proxy.py"
    spec = importlib.util.spec_from_file_location("check_citation_proxy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.check()
    for kind in ("film_year", "film_director", "novel_author", "capital"):
        n, faithful, caught = rows[kind]
        assert faithful == caught == n, kind  # every right one verified, every wrong one caught
    n, _, caught = rows["which_first"]
    assert caught < n / 2  # swapping the order keeps the words: the proxy cannot see it
