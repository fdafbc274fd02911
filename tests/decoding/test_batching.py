"""llmlab.decoding.batching: the shared beginning of a batch is read once, and nothing else changes.

(The batch-equals-one-at-a-time tests on plain and chat prompts are in test_generation.py.)
"""

from __future__ import annotations

import pytest

from llmlab.decoding.batching import common_prefix_length, generate_batch
from llmlab.decoding.chat_template import encode_prompt
from llmlab.decoding.generation import generate

SYSTEM = (
    "You are a careful assistant for a cooking website. Answer in one short sentence, "
    "with no preamble, and never invent a recipe you do not know."
)
QUESTIONS = ["How long do I boil an egg?", "What is a roux?", "Can I freeze bread dough?"]


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # each row keeps a token of its own
    assert common_prefix_length([[7], [7, 8]]) == 0
    assert common_prefix_length([[1, 2], [3, 4]]) == 0


@pytest.mark.slow
def test_a_shared_system_prompt_is_read_once_and_answers_do_not_change(lm, monkeypatch):
    import llmlab.decoding.batching

    chats = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in QUESTIONS
    ]
    rows = [encode_prompt(lm, c, chat=True) for c in chats]
    shared = common_prefix_length(rows)
    assert shared > 30  # the template and the system prompt

    read, forward = [], llmlab.decoding.batching.cached_forward
    monkeypatch.setattr(
        llmlab.decoding.batching,
        "cached_forward",
        lambda m, ids, *a, **k: read.append(ids.shape) or forward(m, ids, *a, **k),
    )
    batch = generate_batch(lm, chats, max_new_tokens=12, chat=True)
    assert tuple(read[0]) == (1, shared)  # the prefix: one row
    assert tuple(read[1]) == (3, max(len(r) for r in rows) - shared)  # then only each row's own
    for chat, got in zip(chats, batch, strict=True):
        alone = generate(lm, chat, max_new_tokens=12, chat=True, n_candidates=1)
        assert got.token_ids == alone.token_ids and got.stop_reason == alone.stop_reason
