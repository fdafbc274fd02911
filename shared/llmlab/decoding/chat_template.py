"""From what you write to the token ids the model reads: plain text, chat messages, the template.

A chat API takes a list of messages, but the model reads one token sequence. The *chat
template* (shipped with the tokenizer) turns the messages into that sequence: role markers,
end-of-turn tokens, a default system prompt if the model has one, and the cue
``<|im_start|>assistant\\n`` that says "your turn".

Covers:
- ``encode_prompt``: the ids for a prompt given as text, as messages, or as ids already.
- ``chat_text`` / ``chat_token_ids`` / ``count_chat_tokens``: the template's text, ids, length.
- ``message_token_costs``: what each message adds; ``check_message_list``: the chat's shape only
  (a list of role/content dicts; roles and content types are the chat backends' job).
- ``stop_token_ids``: the ids that end an answer; ``chat_parts``: the template around one message.

Leaves out: tool/function-call templates and multi-modal messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmlab.runtime.models import LM

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}
# A prompt is plain text, a chat (a list of messages) or token ids.
Prompt = str | Sequence[Message] | Sequence[int]


def check_message_list(messages: Sequence[Message]) -> list[Message]:
    """The messages as a list of role/content dicts, or a ``ValueError`` saying what one looks like."""
    if isinstance(messages, str | dict):
        raise ValueError('A chat is a list of messages like [{"role": "user", "content": "Hi"}].')
    msgs = list(messages)
    if not msgs:
        raise ValueError('The chat is empty: give at least one {"role": ..., "content": ...}.')
    for m in msgs:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m):
            raise ValueError(
                f'Each message must be a dict like {{"role": "user", "content": "Hi"}}, got {m!r}.'
            )
    return msgs


def chat_text(lm: LM, messages: Prompt, add_generation_prompt: bool = True) -> str:
    """The exact text the chat template builds (special tokens included), ready for the answer."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return lm.tokenizer.apply_chat_template(
        check_message_list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
    )


def chat_token_ids(
    lm: LM, messages: Sequence[Message], add_generation_prompt: bool = True
) -> list[int]:
    """The token ids the model reads for this chat: template, special tokens and all."""
    text = chat_text(lm, check_message_list(messages), add_generation_prompt)
    return list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])


def count_chat_tokens(
    lm: LM, messages: Sequence[Message], add_generation_prompt: bool = True
) -> int:
    """How many tokens the whole chat costs. ``[{"role": "user", "content": "hi"}] -> 31`` for
    SmolLM2 (the template adds a default system prompt and role markers around a 1-token text)."""
    return len(chat_token_ids(lm, messages, add_generation_prompt))


def message_token_costs(lm: LM, messages: Sequence[Message]) -> list[int]:
    """Tokens each message adds to the chat (template overhead included), in order.

    The first entry also carries anything the template puts before it (e.g. a default system
    prompt). ``sum(costs) == count_chat_tokens(lm, messages, add_generation_prompt=False)``.
    """
    msgs = check_message_list(messages)
    costs, before = [], 0
    for i in range(1, len(msgs) + 1):
        now = count_chat_tokens(lm, msgs[:i], add_generation_prompt=False)
        costs.append(now - before)
        before = now
    return costs


def encode_prompt(lm: LM, prompt: Prompt, chat: bool = False) -> list[int]:
    """Token ids the model will see. ``chat=True`` wraps a text prompt in the chat template.

    ``prompt`` may be text, a list of chat messages (``[{"role": "user", "content": ...}]``,
    implies ``chat``) or a list of token ids (used as is).
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("The prompt is empty: give at least one non-blank character.")
        if not chat:
            return list(lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        return chat_token_ids(lm, [{"role": "user", "content": prompt}])
    if isinstance(prompt, dict):
        raise ValueError("A chat prompt is a *list* of messages: wrap the message in [ ... ].")
    items = list(prompt)
    if not items:
        raise ValueError("The prompt is empty: give text, chat messages or token ids.")
    if all(isinstance(i, int) for i in items):
        if chat:
            raise ValueError("chat=True needs text or messages, not token ids.")
        vocab = len(lm.tokenizer)
        bad = [i for i in items if not 0 <= i < vocab]
        if bad:
            raise ValueError(f"Token ids must be in [0, {vocab}); got {bad[:5]}.")
        return items
    if not all(isinstance(m, dict) for m in items):
        raise ValueError(
            "A list prompt must be token ids or chat messages like "
            '[{"role": "user", "content": "Hi"}].'
        )
    return chat_token_ids(lm, items)


def stop_token_ids(lm: LM) -> set[int]:
    """Token ids that end a generation: the tokenizer's and generation config's end-of-sequence."""
    ids: set[int] = set()
    for eos in (
        getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None),
        lm.tokenizer.eos_token_id,
    ):
        if isinstance(eos, int):
            ids.add(eos)
        elif eos is not None:
            ids.update(int(i) for i in eos)
    im_end = lm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != lm.tokenizer.unk_token_id:
        ids.add(im_end)
    return ids


def chat_parts(lm: LM) -> tuple[str, str]:
    """The chat template split around one user message: (text before it, text after it).

    ``head + question + tail`` is a one-message chat ready for the answer; used to put a long
    text in the user turn and reuse its cache for several questions.
    """
    marker = "\x00MSG\x00"
    head, tail = chat_text(lm, [{"role": "user", "content": marker}]).split(marker)
    return head, tail
