"""What every chat backend shares: the result types, the request checks, stop strings.

``llmlab.chat.local`` (``LocalChat``, ``load_chat``) and ``llmlab.chat.openai_backend`` (``OpenAIChat``) both
build on this, so a chat is checked the same way whichever model answers it. Every name here is
also importable from ``llmlab.chat.local``.

- ``Usage`` / ``ChatResult``: one answer, its finish reason and the tokens billed;
- ``check_answerable_chat``, ``check_request``, ``check_chats``: a ``ValueError`` that says
  what a good chat, ``max_tokens``, ``temperature``, ``stop`` or batch looks like;
- ``cut_at_stop``: text cut before the first stop string.

Leaves out: tool calls and images in messages (``llmlab.tool_use.calling`` handles tools).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

from llmlab.decoding.sampling import check_settings

Messages = Sequence[dict]  # [{"role": "system" | "user" | "assistant", "content": "..."}]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Usage:
    """Tokens read (the whole templated chat) and written: what an API bills you for."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResult:
    """One answer. ``finish_reason``: "stop" (the model ended or a stop string) or "length"."""

    text: str
    usage: Usage
    finish_reason: str


def check_answerable_chat(messages: Messages) -> list[dict]:
    """A chat a backend can answer (known roles, text content, ending on a user turn) as a list
    of plain role/content messages, or a ``ValueError`` saying what is wrong."""
    example = '[{"role": "user", "content": "Hi"}]'
    if isinstance(messages, str | dict) or not isinstance(messages, Sequence):
        raise ValueError(f"messages must be a list of messages like {example}.")
    if not messages:
        raise ValueError(f"messages is empty: give at least one message, e.g. {example}.")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"Message {i} must be a dict with 'role' and 'content', got {m!r}.")
        if m["role"] not in ROLES:
            raise ValueError(f"Message {i} has role {m['role']!r}; use one of {', '.join(ROLES)}.")
        if not isinstance(m["content"], str):
            raise ValueError(
                f"Message {i}'s content must be text, got {type(m['content']).__name__}."
            )
    if messages[-1]["role"] == "assistant":
        raise ValueError("The last message is the assistant's: end with a user message to answer.")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def check_request(
    max_tokens: int, temperature: float, stop: Sequence[str] | None = None
) -> list[str]:
    """The stop strings as a list, or a ValueError naming the bad ``max_tokens``/``temperature``/``stop``."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
        raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}.")
    try:
        check_settings(temperature=temperature, max_new_tokens=max_tokens)
    except ValueError as exc:  # name the argument as this API spells it
        raise ValueError(str(exc).replace("max_new_tokens", "max_tokens")) from None
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if not all(isinstance(s, str) and s for s in stops):
        raise ValueError(f"stop must be a string or a list of non-empty strings, got {stop!r}.")
    return stops


def check_chats(chats: Sequence[Messages]) -> None:
    """A ValueError unless ``chats`` is a non-empty list of chats (``complete_batch``'s input)."""
    if isinstance(chats, str | dict) or not isinstance(chats, Sequence) or not chats:
        raise ValueError("chats must be a non-empty list of chats (each a list of messages).")


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``text`` cut before the first stop string, and whether one was found.

    ``cut_at_stop("Paris.\\nQ: next", ["\\nQ:"]) -> ("Paris.", True)``.
    """
    cuts = [text.index(s) for s in stop if s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)
