"""Tests for llmlab.decoding.chat_template: prompts to token ids, checked against the tokenizer's template."""

from __future__ import annotations

import pytest

from llmlab.decoding import chat_template as T

CHATS = [
    [{"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3 + 3? Explain, with émojis 🙂."},
    ],
]


@pytest.mark.parametrize("chat", CHATS)
@pytest.mark.parametrize("gen_prompt", [True, False])
def test_count_matches_apply_chat_template(lm, chat, gen_prompt):
    ref = lm.tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=gen_prompt)
    ref_ids = ref["input_ids"] if hasattr(ref, "keys") else ref
    assert T.chat_token_ids(lm, chat, gen_prompt) == list(ref_ids)
    assert T.count_chat_tokens(lm, chat, gen_prompt) == len(ref_ids)
    if gen_prompt:
        assert T.encode_prompt(lm, chat) == list(ref_ids)  # a message list implies the template


def test_template_overhead_is_real(lm):
    # "hi" is one token, but the chat costs many more: default system prompt + role markers.
    assert T.encode_prompt(lm, "hi") == lm.tokenizer("hi", add_special_tokens=False)["input_ids"]
    assert len(T.encode_prompt(lm, "hi")) == 1
    assert T.count_chat_tokens(lm, CHATS[0]) == 31
    assert T.encode_prompt(lm, "hi", chat=True) == T.chat_token_ids(lm, CHATS[0])


def test_message_costs_add_up(lm):
    costs = T.message_token_costs(lm, CHATS[1])
    assert len(costs) == len(CHATS[1]) and all(c > 0 for c in costs)
    assert sum(costs) == T.count_chat_tokens(lm, CHATS[1], add_generation_prompt=False)


def test_chat_parts_rebuild_the_template(lm):
    head, tail = T.chat_parts(lm)
    assert head + "hi" + tail == T.chat_text(lm, "hi")
    assert tail.endswith("<|im_start|>assistant\n")


def test_stop_ids_include_the_end_of_turn(lm):
    assert lm.tokenizer.convert_tokens_to_ids("<|im_end|>") in T.stop_token_ids(lm)


@pytest.mark.parametrize(
    "bad", [[], [{"content": "no role"}], ["just text"], {"role": "user", "content": "hi"}]
)
def test_bad_chats_are_rejected(lm, bad):
    with pytest.raises(ValueError, match="message|empty"):
        T.count_chat_tokens(lm, bad)


@pytest.mark.parametrize(
    ("prompt", "kwargs", "message"),
    [
        ("", {}, "empty"),
        ("   ", {"chat": True}, "empty"),
        ([], {}, "empty"),
        ([10**6], {}, "Token ids must be"),
        ([1, 2], {"chat": True}, "not token ids"),
        ({"role": "user", "content": "hi"}, {}, "list"),
        ([1, "a"], {}, "token ids or chat messages"),
    ],
)
def test_bad_prompts_say_what_to_give(lm, prompt, kwargs, message):
    with pytest.raises(ValueError, match=message):
        T.encode_prompt(lm, prompt, **kwargs)
