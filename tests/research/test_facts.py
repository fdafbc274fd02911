"""Facts copied from a document (llmlab.research.facts): titles, spans, the model's choice, lines.

No model loads here: the local model's scores come from a fake ``batch_choice_logprobs`` that
prefers a scripted span, and a server's answers from a fake ``complete_batch``; the search is
word overlap (``tests.research.test_agent.WordCorpus``). The real model's choices are measured
in research-agent.ipynb.
"""

from __future__ import annotations

import pytest

from llmlab.chat.records import ChatResult, Usage
from llmlab.research.facts import (
    Fact,
    choose,
    cloze_prompt,
    continuation,
    find_articles,
    fold,
    locate,
    look_up,
    opening,
    options,
    sentences,
    snap,
    span_grammar,
    title_match,
)
from llmlab.research.forms import ask_for
from tests.research.test_agent import WordCorpus

DOCS = {
    "Jaw.txt": "Jaw\n\nThe jaws are a pair of opposable articulated structures at the entrance of "
    "the mouth. Jaws are used for holding food, as any film about sharks shows.",
    "Jaws_film.txt": "Jaws (film)\n\nJaws is a 1975 American thriller film directed by Steven "
    "Spielberg, based on the 1974 novel by Peter Benchley. It stars Roy Scheider.",
    "The_Godfather.txt": "The Godfather\n\nThe Godfather is a 1972 American crime film directed "
    "by Francis Ford Coppola. It stars Marlon Brando.",
    "Ankara.txt": "Ankara\n\nAnkara is the capital city of Turkey. Located in the central part of "
    "Anatolia, it is Turkey's second-largest city after Istanbul.",
    "Antalya.txt": "Antalya\n\nAntalya is one of the largest cities in Turkey and the capital of "
    "Antalya Province.",
    "Alfred_Hitchcock.txt": "Alfred Hitchcock\n\nSir Alfred Joseph Hitchcock was an English "
    "filmmaker. He directed over 50 feature films.",
}


@pytest.fixture()
def corpus(tmp_path):
    root = tmp_path / "wiki"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return WordCorpus(root)


class ScoredLM:
    """Stands in for ``chat.lm``: only its tokenizer is used (to count tokens)."""

    class tokenizer:  # noqa: N801 - mimics the attribute
        @staticmethod
        def encode(text, add_special_tokens=False):
            return text.split()


class LocalChat:
    lm = ScoredLM()


@pytest.fixture()
def prefer(monkeypatch):
    """Make the fake local model prefer spans containing any of the given words; records the
    requests it was asked to score."""
    seen = []

    def install(*words):
        from llmlab.evaluation import loglikelihood

        def fake(lm, requests, **kwargs):
            seen.extend(requests)
            logprobs = [
                [0.0 if any(w in c for w in words) else -5.0 for c in cs] for _, cs in requests
            ]
            return loglikelihood.ChoiceLogprobs(
                logprobs=logprobs, lengths=[[len(c.split()) for c in cs] for _, cs in requests]
            )

        monkeypatch.setattr(loglikelihood, "batch_choice_logprobs", fake)
        return seen

    return install


def test_title_match_tells_jaws_the_film_from_jaw_the_bone():
    assert title_match("Jaws (film)", "Jaws", "film") == 2.0
    assert title_match("Jaws", "Jaws", "film") == 1.0
    assert title_match("Jaws (novel)", "Jaws", "film") == 0.5
    assert title_match("Jaw", "Jaws", "film") == 0.0
    assert title_match("Bogotá", "bogota") == 1.0 and fold("Bogotá (city)") == "bogota city"


def test_find_articles_by_title_even_when_search_ranks_jaw_first(corpus):
    ask = ask_for("year", "Jaws", "film")
    hits = corpus.search("Jaws film", k=5)
    assert hits[0].passage.source == "Jaw.txt"  # the word search alone picks the anatomy article
    sources, by_title, _ = find_articles(corpus, ask)
    assert sources == ["Jaws_film.txt"] and by_title


def test_find_articles_without_a_title_keeps_the_hits_that_name_the_thing(corpus):
    sources, by_title, _ = find_articles(corpus, ask_for("capital", "Turkey"))
    assert not by_title and set(sources) == {"Ankara.txt", "Antalya.txt"}
    assert find_articles(corpus, ask_for("capital", "Atlantis"))[0] == []


def test_sentences_keep_initials_and_opening_skips_the_title():
    text = "Gatsby\n\nIt is a novel by F. Scott Fitzgerald. It was published in 1925. Third one."
    spans = sentences(text)
    assert [text[a:b] for a, b in spans][1] == "It is a novel by F. Scott Fitzgerald."
    assert [text[a:b] for a, b in opening(text)] == [
        "It is a novel by F. Scott Fitzgerald.",
        "It was published in 1925.",
    ]
    named = opening(DOCS["Ankara.txt"], "Turkey")  # found by search: the first sentence naming it
    assert [DOCS["Ankara.txt"][a:b] for a, b in named] == ["Ankara is the capital city of Turkey."]


@pytest.mark.parametrize(
    ("text", "answer_type", "exclude", "expected"),
    [
        ("Jaws is a 1975 film based on the 1974 novel.", "year", "", ["1975", "1974"]),
        ("It had 1,975 seats and cost 20.50 in 1999.", "year", "", ["1999"]),
        (
            "Jaws is a 1975 American film directed by Steven Spielberg, based on the novel by "
            "Peter Benchley. It stars Roy Scheider.",
            "person",
            "Jaws",
            ["Steven Spielberg", "Peter Benchley", "Roy Scheider"],
        ),
        (
            "The Great Gatsby is a 1925 novel by American writer F. Scott Fitzgerald.",
            "person",
            "The Great Gatsby",
            ["F. Scott Fitzgerald"],
        ),
        (
            "Accra is the capital of Ghana, on the Gulf of Guinea.",
            "place",
            "Accra",
            ["Ghana", "Gulf of Guinea"],
        ),
        (
            "Ernst Ingmar Bergman was a Swedish film director, a figure of European cinema.",
            "nationality",
            "Ingmar Bergman",
            ["Swedish", "European"],  # "Bergman" ends like a demonym but is part of a name
        ),
    ],
)
def test_options_are_the_typed_spans_of_the_text(text, answer_type, exclude, expected):
    assert options(text, answer_type, exclude) == expected


def test_cloze_prompt_and_continuations():
    ask = ask_for("year", "Jaws", "film")
    assert (
        cloze_prompt(ask, "Jaws is a\n1975 film.")
        == "Jaws is a 1975 film.\n\nJaws was released in "
    )
    assert continuation(ask_for("nationality", "Alfred Hitchcock"), "English") == "an English"
    assert continuation(ask_for("nationality", "Ingmar Bergman"), "Swedish") == "a Swedish"
    assert span_grammar(["1975", 'say "hi"']) == 'start: "1975" | "say \\"hi\\""\n'
    assert (
        snap("The answer is Steven Spielberg.", ["Steven", "Steven Spielberg"])
        == "Steven Spielberg"
    )
    assert snap("No idea", ["Steven Spielberg"]) == ""


def test_choose_scores_every_span_and_skips_the_model_for_a_single_one(prefer):
    seen = prefer("1975")
    ask = ask_for("year", "Jaws", "film")
    out = choose(
        LocalChat(), [ask, ask], ["Jaws is a 1975 film.", "x"], [["1974", "1975"], ["1980"]]
    )
    assert out[0][0] == "1975" and out[0][3] == "model" and out[0][1] == (-5.0, 0.0)
    assert out[1] == ("1980", (), 0, "only option")
    assert len(seen) == 1 and seen[0][0].endswith("Jaws was released in ")  # one request


def test_choose_through_a_server_snaps_its_free_answer_to_a_listed_span():
    class Server:
        def complete_batch(self, chats, **kwargs):
            return [
                ChatResult(
                    text=t, usage=Usage(prompt_tokens=30, completion_tokens=4), finish_reason="stop"
                )
                for t in ("It is 1975.", "Maybe 1999")
            ]

    ask = ask_for("year", "Jaws", "film")
    out = choose(Server(), [ask, ask], ["a", "b"], [["1974", "1975"], ["1974", "1975"]])
    assert (
        out[0] == ("1975", (), 34, "model") and out[1][0] == "" and out[1][3] == "not a listed span"
    )


def test_look_up_copies_a_span_and_cites_its_line(corpus, prefer):
    prefer("Spielberg", "1975", "Ankara", "English")
    asks = [
        ask_for("year", "Jaws", "film"),
        ask_for("director", "Jaws", "film"),
        ask_for("capital", "Turkey"),
        ask_for("nationality", "Alfred Hitchcock"),
        ask_for("year", "Atlantis", "film"),
    ]
    year, director, capital, nationality, nothing = look_up(LocalChat(), corpus, asks)
    assert isinstance(year, Fact) and year.value == "1975" and year.how == "model"
    assert year.where == "Jaws_film.txt:3" and "1975" in year.passage.text
    assert year.options == ("1975", "1974") and "Jaw.txt" in year.hits  # seen, not read
    assert director.value == "Steven Spielberg"
    assert capital.value == "Ankara" and capital.source == "Ankara.txt"  # two candidates competed
    assert nationality.value == "English" and nationality.how == "only option"
    assert nothing.value == "" and nothing.how == "no document" and nothing.passage is None


def test_locate_finds_the_sentence_of_the_span():
    from llmlab.data.documents import Document

    doc = Document(path="a.txt", text="A\n\nOne 1975. Two 1980.\nThree.")
    spans = sentences(doc.text, 3)
    assert locate(doc, "1980", spans).text == "Two 1980." and locate(doc, "1990", spans) is None
