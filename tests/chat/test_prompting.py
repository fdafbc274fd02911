"""llmlab.chat.prompting: cached, batched label scoring equals the naive one-forward-pass-per-label way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmlab.chat.prompting import (
    Example,
    Template,
    build_prompt,
    classify,
    classify_by_generation,
    confusion_matrix,
    keyword_items,
    label_token_ids,
    parse_label,
    prompt_ids,
    score_labels,
)
from llmlab.data.datasets import wiki_subset

LABELS = ["city", "country", "language"]
SHOTS = [
    Example(text="Capital city of Peru", label="city"),
    Example(text="Language of Brazil", label="language"),
]
ITEMS = [
    Example(text="Largest city in Japan", label="city"),
    Example(text="Country in West Africa", label="country"),
    Example(text="Romance language spoken in Spain", label="language"),
]
RAW = Template(instruction="Say what kind of thing it is.", input_prefix="Description: ")


def _naive(lm, prompt, label):
    """Reference: read the whole prompt + label in one forward pass, no cache, no batch."""
    ids = prompt + label
    with torch.inference_mode():
        logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    return sum(float(logp[len(prompt) - 1 + t, tok]) for t, tok in enumerate(label))


@pytest.mark.parametrize("chat", [False, True])
def test_cached_scores_equal_naive(lm, chat):
    template = Template(
        instruction=RAW.instruction,
        input_prefix=RAW.input_prefix,
        chat=chat,
        label_words={"country": "sovereign state"},
    )  # a multi-token label
    labels = label_token_ids(lm, template, LABELS)
    assert max(map(len, labels)) > 1
    prompts = [prompt_ids(lm, build_prompt(template, SHOTS, ex.text)) for ex in ITEMS]
    got = score_labels(lm, prompts, labels, batch_size=2)  # several batches
    want = np.array([[_naive(lm, p, lab) for lab in labels] for p in prompts])
    np.testing.assert_allclose(got.logprobs, want, atol=2e-3)
    assert got.shared_tokens > 20  # instruction + examples read once
    assert got.tokens_read < got.tokens_without_cache


def test_build_prompt_layouts():
    raw = build_prompt(RAW, SHOTS, "Largest city in Japan")
    assert raw == (
        "Say what kind of thing it is.\n\nDescription: Capital city of Peru\nAnswer: city"
        "\n\nDescription: Language of Brazil\nAnswer: language\n\n"
        "Description: Largest city in Japan\nAnswer:"
    )
    chat = build_prompt(
        Template(instruction="Be brief.", input_prefix="D: ", chat=True), SHOTS[:1], "X"
    )
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert chat[2]["content"] == "city" and chat[3]["content"] == "D: X"


def test_classify_and_generation_agree_with_their_parts(lm):
    run = classify(lm, RAW, SHOTS, ITEMS, LABELS)
    assert run.predictions == [LABELS[j] for j in run.scores.logprobs.argmax(1)]
    assert run.accuracy == np.mean(
        [p == ex.label for p, ex in zip(run.predictions, ITEMS, strict=True)]
    )
    gen = classify_by_generation(lm, RAW, SHOTS, ITEMS, LABELS, max_new_tokens=4)
    assert gen.predictions == [parse_label(t, LABELS) for t in gen.texts]


def test_parse_label_and_confusion_matrix():
    assert parse_label("It is a City, not a country.", LABELS) == "city"
    assert parse_label("The country's language", LABELS) == "country"
    assert parse_label("cityscape", LABELS) is None
    m = confusion_matrix(["city", "city", "language"], ["city", None, "country"], LABELS)
    assert m.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]]


def test_keyword_items_contain_their_label():
    items = keyword_items(wiki_subset(3000, seed=1), LABELS, per_label=5, seed=0)
    assert len(items) == 15 and {ex.label for ex in items} == set(LABELS)
    assert all(ex.label in ex.text.lower() for ex in items)
    with pytest.raises(ValueError, match="per_label"):
        keyword_items(wiki_subset(50), LABELS, per_label=40)


def test_bad_input(lm):
    with pytest.raises(ValueError, match="tokenizes to nothing"):
        label_token_ids(lm, Template(label_words={"city": ""}), LABELS)
    with pytest.raises(ValueError, match="same tokens"):
        label_token_ids(lm, Template(label_words={"city": "x", "country": "x"}), LABELS)
    with pytest.raises(ValueError, match="repeats"):
        label_token_ids(lm, RAW, ["city", "city"])
    with pytest.raises(ValueError, match="empty"):
        classify(lm, RAW, SHOTS, [], LABELS)
    with pytest.raises(ValueError, match="not in labels"):
        classify(lm, RAW, SHOTS, [Example(text="x", label="river")], LABELS)
