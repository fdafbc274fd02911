"""llmlab.evaluation.loglikelihood against lm-evaluation-harness's definitions and transformers."""

from __future__ import annotations

import pytest
import torch

from llmlab.decoding.batching import generate_batch
from llmlab.evaluation.loglikelihood import (
    batch_choice_logprobs,
    choice_logprobs,
    continuation_logprob,
    encode_pair,
)
from llmlab.runtime.models import LM
from tests.doubles import tiny_llama


# lm-evaluation-harness, lm_eval/api/model.py (TemplateLM._encode_pair, causal branch), with
# tok_encode = tokenizer.encode without special tokens: the reference, copied as it is written.
def harness_encode_pair(tok, context, continuation):
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole_enc = tok.encode(context + continuation, add_special_tokens=False)
    context_enc = tok.encode(context, add_special_tokens=False)
    context_enc_len = len(context_enc)
    continuation_enc = whole_enc[context_enc_len:]
    return context_enc, continuation_enc


@pytest.fixture(scope="module")
def tiny(lm):
    """A 2-block random Llama (hidden 64) with the real SmolLM2 tokenizer: milliseconds a pass."""
    model = tiny_llama(lm.tokenizer)
    return LM(model=model, tokenizer=lm.tokenizer, name="tiny-llama")


PAIRS = [
    ("Question: What is 2+2?\nAnswer:", " 4"),
    ("Answer: ", "Paris"),  # the trailing space moves onto the continuation
    ("The capital of France is", " Paris, the city of light"),
    ("x =", "  two spaces"),
    ("Name the element.", "\nHelium"),
    ("He said", "n't"),  # a continuation that merges with the context's last word
]


@pytest.mark.parametrize(("context", "continuation"), PAIRS)
def test_encode_pair_is_the_harness_rule(lm, context, continuation):
    assert encode_pair(lm.tokenizer, context, continuation) == harness_encode_pair(
        lm.tokenizer, context, continuation
    )


def test_encode_pair_moves_trailing_spaces_and_handles_an_empty_context(lm):
    tok = lm.tokenizer
    ctx, cont = encode_pair(tok, "Answer: ", "Paris")
    assert ctx == tok.encode("Answer:", add_special_tokens=False)
    assert cont == tok.encode(" Paris", add_special_tokens=False)  # one token with its space
    ctx, cont = encode_pair(tok, "", "Paris")  # lm-eval: the prefix token (BOS) stands in
    assert ctx == [tok.bos_token_id] and cont == tok.encode("Paris", add_special_tokens=False)
    with pytest.raises(ValueError, match="nothing to score"):
        encode_pair(tok, "Answer:", "")


def test_the_definition_equals_transformers_loss(tiny):
    """log P(continuation | context) = -(mean loss over the continuation tokens) x their count."""
    context, continuation = "The capital of France is", " Paris, the city of light"
    ctx, cont = encode_pair(tiny.tokenizer, context, continuation)
    ids = torch.tensor([ctx + cont])
    labels = torch.tensor([[-100] * len(ctx) + cont])
    with torch.no_grad():
        loss = tiny.model(input_ids=ids, labels=labels).loss
    assert continuation_logprob(tiny, context, continuation) == pytest.approx(
        -float(loss) * len(cont), abs=1e-4
    )


def requests():
    shared = "The following are questions.\n\nQuestion: Which one?\nAnswer:"
    return [
        ("The capital of France is", [" Paris", " Rome", " the city of Lyon on the Rhône"]),
        ("Answer: ", ["dog", "cat", "a very small horse indeed"]),
        ("2+2=", ["4", " four", "5!"]),
        (shared + " A.", [" yes", " no"]),
        (shared + " B, maybe C.", [" x", " a much longer option than the others", " y z"]),
        ("One", [" choice only"]),
    ]


@pytest.mark.parametrize("batch_tokens", [8, 64, 4096])
def test_batched_scores_equal_the_definition(tiny, batch_tokens):
    """Each prompt read once, options grouped by length, several batches: the same numbers as
    scoring every (context, option) pair on its own, as lm-eval does."""
    reqs = requests()
    got = batch_choice_logprobs(tiny, reqs, batch_tokens=batch_tokens)
    for (context, choices), row in zip(reqs, got.logprobs, strict=True):
        want = [continuation_logprob(tiny, context, c) for c in choices]
        assert row == pytest.approx(want, abs=1e-4)
    assert got.lengths[0] == [
        len(encode_pair(tiny.tokenizer, reqs[0][0], c)[1]) for c in reqs[0][1]
    ]
    assert got.tokens_read < got.tokens_separately  # the point of reading each prompt once


def test_a_shared_beginning_is_read_once(tiny):
    shots = "Question: Is ice cold?\nAnswer: yes\n\nQuestion: Is fire cold?\nAnswer: no\n\n"
    reqs = [(shots + f"Question: Is {w} cold?\nAnswer:", [" yes", " no"]) for w in ("snow", "tea")]
    got = batch_choice_logprobs(tiny, reqs)
    for (context, choices), row in zip(reqs, got.logprobs, strict=True):
        assert row == pytest.approx(
            [continuation_logprob(tiny, context, c) for c in choices], abs=1e-4
        )
    # one pass for the shared beginning, one for both questions; one-token options need no more
    assert got.forward_passes == 2
    shared = len(encode_pair(tiny.tokenizer, shots + "Question: Is", " x")[0])
    assert got.tokens_read < got.tokens_separately - 2 * shared


def test_choice_logprobs_and_its_errors(tiny):
    assert choice_logprobs(tiny, "2+2=", ["4", "5"]) == pytest.approx(
        [continuation_logprob(tiny, "2+2=", c) for c in ["4", "5"]], abs=1e-4
    )
    with pytest.raises(ValueError, match="empty"):
        choice_logprobs(tiny, "2+2=", [])
    with pytest.raises(TypeError, match="not one string"):
        choice_logprobs(tiny, "2+2=", "4")
    with pytest.raises(ValueError, match="generate"):
        batch_choice_logprobs(tiny, [("2+2=", ["4"])], generate=-1)


def test_generate_writes_what_greedy_decoding_writes(tiny):
    prompts = ["Question: Which one?\nAnswer:", "The capital of France is", "2+2="]
    got = batch_choice_logprobs(tiny, [(p, [" A", " B"]) for p in prompts], generate=5)
    want = generate_batch(tiny, prompts, max_new_tokens=5)
    assert all(g.text for g in want)  # the random model writes something: the check is not vacuous
    assert got.generated == [g.text for g in want]


def test_the_real_model_prefers_paris(lm):
    scores = choice_logprobs(lm, "The capital of France is", [" Paris", " Rome"])
    assert scores[0] > scores[1]
    assert scores[0] == pytest.approx(
        continuation_logprob(lm, "The capital of France is", " Paris"), abs=1e-3
    )
