"""Training chats from a file: OpenAI's fine-tuning format, checked line by line.

One JSON object per line, each with the chat to learn from::

    {"messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "..."}]}

As in OpenAI's format, an assistant message may carry ``"weight": 0`` (shown to the model,
not learned from), and a line may carry ``"tools"`` (function specs) with assistant
``"tool_calls"`` and ``"tool"`` messages: those are kept as they are here and turned into text
by the caller (``llmlab tune`` uses ``llmlab.tool_use.text_format.render_messages``).

Covers ``read_chat_jsonl`` (every problem as a ``ValueError`` naming the line and what to fix)
and ``split_validation`` (a seeded hold-out split).
Leaves out: images, audio, and the DPO/preference formats.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class ChatExample:
    """One line of the file: its messages, its tools (if any), and its line number."""

    messages: list[dict]
    line: int
    tools: list[dict] = field(default_factory=list)


def _check_line(obj: object, where: str) -> ChatExample:
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise ValueError(f'{where}: each line must be an object like {{"messages": [...]}}.')
    messages = obj["messages"]
    if not messages:
        raise ValueError(f"{where}: the messages list is empty.")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ValueError(
                f"{where}: each message needs a role ({', '.join(ROLES)}), got {str(m)[:60]!r}."
            )
        content = m.get("content")
        if content is not None and not isinstance(content, str):
            raise ValueError(
                f"{where}: message contents must be text, got {type(content).__name__}."
            )
        if content is None and not m.get("tool_calls"):
            raise ValueError(f"{where}: a {m['role']} message has no content.")
    learned = [
        m
        for m in messages
        if m["role"] == "assistant"
        and m.get("weight", 1) != 0
        and ((m.get("content") or "").strip() or m.get("tool_calls"))
    ]
    if not learned:
        raise ValueError(
            f"{where}: no assistant message to learn from: every line needs the answer you "
            'want, as {"role": "assistant", "content": "..."}.'
        )
    tools = obj.get("tools", [])
    if not isinstance(tools, list):
        raise ValueError(f"{where}: tools must be a list of function specs.")
    return ChatExample(messages=messages, line=int(where.rsplit(" ", 1)[-1]), tools=tools)


def read_chat_jsonl(path: str | Path) -> list[ChatExample]:
    """Every chat in a JSONL file, checked; a ``ValueError`` names the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (give a .jsonl file of chats).")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (UTF-8 JSONL expected).") from None
    examples = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name} line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); the file must "
                "hold one JSON object per line (JSONL)."
            ) from None
        examples.append(_check_line(obj, where))
    if not examples:
        raise ValueError(f"{path}: the file is empty: give one chat per line.")
    return examples


def split_validation(
    examples: Sequence[ChatExample], fraction: float = 0.1, seed: int = 0, minimum: int = 10
) -> tuple[list[ChatExample], list[ChatExample]]:
    """(train, validation): a seeded ``fraction`` held out, none if fewer than ``minimum`` chats.

    ``split_validation(chats_100, 0.1) -> (90 chats, 10 chats)``.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}.")
    items = list(examples)
    n_val = round(len(items) * fraction) if len(items) >= minimum else 0
    if fraction > 0 and len(items) >= minimum:
        n_val = max(1, n_val)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    val = sorted(order[:n_val])
    held = set(val)
    return [x for i, x in enumerate(items) if i not in held], [items[i] for i in val]
