"""llmlab.rag.answering: the prompt the model reads, its token budget, answer extraction, citations."""

from __future__ import annotations

import pytest

from llmlab.decoding.chat_template import encode_prompt
from llmlab.decoding.context_window import ContextWindowError
from llmlab.decoding.generation import generate
from llmlab.rag.answering import (
    answer,
    build_prompt,
    extract_answer,
    extract_citations,
    format_passages,
)

PASSAGES = [
    "Zorbatown is the capital of the fictional country of Freedonia.",
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
]


def test_format_passages_numbers_from_one():
    assert format_passages(["A  b.", "C."]) == "[1] A b.\n[2] C."


def test_extract_citations():
    assert extract_citations("Paris [2], France [1, 2] and [2]") == [2, 1]
    assert extract_citations("Paris [7] [1]", n_passages=3) == [1]  # [7] names no passage
    assert extract_citations("no citation here") == []


@pytest.mark.parametrize(
    ("raw", "short"),
    [
        ('The answer is "Paris" [1].', "Paris"),
        ("Answer: Zorbatown [1]\nMore text", "Zorbatown"),
        (" Johann Sebastian Bach.", "Johann Sebastian Bach"),
        (
            "The article described as 1968 film by Stanley Kubrick is 2001: A Space Odyssey.",
            "2001: A Space Odyssey",
        ),
        ("Washington, D.C.", "Washington, D.C."),
        (
            "The alligator snapping turtle is a large species of turtle",
            "The alligator snapping turtle",
        ),
    ],
)
def test_extract_answer(raw, short):
    assert extract_answer(raw) == short


def test_prompt_text_and_token_count(lm):
    p = build_prompt("What is the capital of Freedonia?", PASSAGES, lm=lm)
    assert "[1] Zorbatown" in p.text and "[2] The Eiffel" in p.text and "[n]" in p.text
    assert p.text.endswith("<|im_start|>assistant\nAnswer:")
    assert p.n_tokens == len(encode_prompt(lm, p.text))  # the count is what the model reads
    assert p.budget == lm.context_length - 32
    closed = build_prompt("What is the capital of Freedonia?", [], lm=lm)
    assert "Passages" not in closed.text
    # each passage adds its own tokens (plus its number and a newline) to the prompt
    assert p.n_tokens - closed.n_tokens >= sum(p.passage_tokens) - 5
    assert all(
        s >= len(lm.tokenizer(t)["input_ids"])
        for s, t in zip(p.passage_tokens, PASSAGES, strict=True)
    )


def test_overflow_says_how_much_and_what_to_cut(lm):
    full = build_prompt("What is the capital of Freedonia?", PASSAGES, lm=lm)
    budget = full.n_tokens - 3
    with pytest.raises(ContextWindowError) as err:
        build_prompt("What is the capital of Freedonia?", PASSAGES, lm=lm, budget=budget)
    msg = str(err.value)
    assert f"{full.n_tokens} tokens, 3 over the budget of {budget}" in msg
    assert "Keep the first 1 passages (drop the last 1" in msg
    long = ["word " * 9000]  # more than the 8,192-token window
    with pytest.raises(ContextWindowError, match="context window leaves after max_new_tokens"):
        build_prompt("What?", long, lm=lm)


def test_bad_input(lm):
    with pytest.raises(ValueError, match="question is empty"):
        build_prompt("  ", PASSAGES, lm=lm)
    with pytest.raises(ValueError, match="empty or not text"):
        build_prompt("Why?", ["ok", ""], lm=lm)
    with pytest.raises(TypeError, match="list of strings"):
        build_prompt("Why?", "one passage", lm=lm)
    with pytest.raises(ValueError, match="one each"):
        answer(lm, ["a?", "b?"], [PASSAGES])


def test_answer_reads_the_passage_and_matches_generate(lm):
    q = "What is the capital of Freedonia?"
    closed, rag = answer(lm, [q, q], [[], PASSAGES[:1]])
    assert "zorbatown" in rag.raw.lower()  # a made-up fact: only the passage can supply it
    assert "zorbatown" not in closed.raw.lower()
    alone = generate(lm, rag.prompt.text, max_new_tokens=16, stop=("\n",))
    assert alone.text == rag.raw  # batched (padded next to the closed-book prompt) = one at a time
