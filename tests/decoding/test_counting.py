"""llmlab.decoding.counting: the passes and bytes the lessons assert instead of timings."""

from __future__ import annotations

from llmlab.decoding.batching import generate_batch
from llmlab.decoding.counting import count_passes, weight_bytes
from llmlab.decoding.generation import generate


def test_weight_bytes_are_every_parameter_once(lm):
    n = sum(p.numel() for p in lm.model.parameters())
    assert weight_bytes(lm.model) == 4 * n == 538_060_032  # float32; the tied embedding once


def test_passes_and_tokens_of_a_generation_and_of_a_batch(lm):
    with count_passes(lm.model) as log:
        gen = generate(lm, "The capital of France is", max_new_tokens=3, n_candidates=1)
    assert log.shapes == [(1, 5), (1, 1), (1, 1)]  # the prompt, then one new token per pass
    assert (log.passes, log.tokens) == (3, 7) and len(gen.token_ids) == 3
    with count_passes(lm.model) as batch:
        generate_batch(lm, ["Hi", "Hello there"], max_new_tokens=2)
    assert batch.shapes == [(2, 2), (2, 1)]  # both rows in each pass (no shared prefix here)
    generate(lm, "Hi", max_new_tokens=1)
    assert log.passes == 3 and batch.passes == 2  # the hooks are gone after the block
