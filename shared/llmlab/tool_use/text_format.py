"""The text protocol of tool calling: how tools, calls and results become plain chat text.

A model reads and writes tokens, nothing else. When you pass ``tools=[...]`` to an API, the
provider writes the tools into the prompt, and reads the calls back out of the model's text.
This module does both, with the SmolLM2-1.7B / APIGen convention (SmolLM2-135M was never trained
on it, and its bundled ChatML template silently drops ``tools=``):

- system turn: an instruction + the tools as JSON inside ``<tools>...</tools>``;
- the model calls tools by writing ``<tool_call>[{"name": ..., "arguments": {...}}]</tool_call>``;
- results go back as a user turn ``<tool_response>...</tool_response>``.

Covers ``tools_system_prompt``, ``format_tool_calls``, ``render_messages`` (OpenAI-style messages
with ``tool_calls`` and role "tool" -> plain system/user/assistant messages any ChatML template
accepts) and ``parse_tool_calls`` (text -> calls, or a ``ToolCallParseError`` whose ``.reason``
names the failure frameworks report: "no_json", "truncated", "bad_json", "bad_shape").

Leaves out: checking a call against the tool's schema (``llmlab.tool_use.tools.run_tool``), keeping the
output valid while it is written (``llmlab.decoding.constraints``), streaming parsers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from llmlab.tool_use.tools import Tool, ToolCall

TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
TOOL_RESPONSE_OPEN, TOOL_RESPONSE_CLOSE = "<tool_response>", "</tool_response>"
REASONS = ("no_json", "truncated", "bad_json", "bad_shape")

INSTRUCTIONS = (
    "You have access to the following tools:\n<tools>{tools}</tools>\n"
    "To call tools, answer with only this, nothing else:\n"
    '<tool_call>[{{"name": "tool_name", "arguments": {{"arg": "value"}}}}]</tool_call>\n'
    "Use the right type for each argument. If no tool fits, answer in plain text."
)


class ToolCallParseError(ValueError):
    """The model's text has a ``<tool_call>`` that cannot be read; ``.reason`` says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _spec(t: Tool | dict) -> dict:
    """A tool as its OpenAI spec; accepts a Tool, a spec, or a bare {"name", ...} function."""
    if isinstance(t, Tool):
        return t.spec()
    if isinstance(t, dict) and isinstance(t.get("function"), dict):
        return t
    if isinstance(t, dict) and "name" in t:
        return {"type": "function", "function": t}
    raise ValueError(
        f"{t!r} is not a tool: give llmlab.tool_use.tools.Tool objects or OpenAI specs "
        '{"type": "function", "function": {"name": ..., "parameters": {...}}}.'
    )


def tools_system_prompt(tools: Iterable[Tool | dict], system: str | None = None) -> str:
    """The system turn that shows the model its tools (``system``, if given, comes first)."""
    specs = [_spec(t) for t in tools]
    if not specs:
        raise ValueError("tools is empty: give at least one tool (or no tools= at all).")
    text = INSTRUCTIONS.format(tools=json.dumps(specs, ensure_ascii=False))
    return f"{system.strip()}\n\n{text}" if system and system.strip() else text


def _call_dict(call: ToolCall | dict) -> dict:
    """One call as {"name", "arguments"}: a ToolCall, an OpenAI tool_calls entry, or a dict."""
    if isinstance(call, ToolCall):
        return {"name": call.name, "arguments": call.arguments}
    if isinstance(call, dict):
        fn = call.get("function", call)
        args = fn.get("arguments", {})
        if isinstance(args, str):  # the OpenAI API sends arguments as a JSON string
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as e:
                raise ValueError(f"tool call arguments are not valid JSON: {args!r} ({e}).") from e
        if isinstance(fn.get("name"), str):
            return {"name": fn["name"], "arguments": args}
    raise ValueError(f"{call!r} is not a tool call: give ToolCall(name, arguments) objects.")


def format_tool_calls(calls: Sequence[ToolCall | dict]) -> str:
    """The calls as protocol text.

    ``[ToolCall("add", {"a": 1})]`` ->
    ``<tool_call>[{"name": "add", "arguments": {"a": 1}}]</tool_call>``
    """
    body = json.dumps([_call_dict(c) for c in calls], ensure_ascii=False)
    return f"{TOOL_CALL_OPEN}{body}{TOOL_CALL_CLOSE}"


def render_messages(
    messages: Sequence[dict], tools: Iterable[Tool | dict] | None = None
) -> list[dict]:
    """OpenAI-style messages -> plain system/user/assistant messages (what a provider does).

    Tools go into the system turn; an assistant's ``tool_calls`` become ``<tool_call>`` text;
    consecutive role "tool" results become one user turn of ``<tool_response>`` blocks.
    """
    if isinstance(messages, str | dict):
        raise ValueError('messages must be a list like [{"role": "user", "content": "Hi"}].')
    out: list[dict] = []
    tools = list(tools) if tools is not None else []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m:
            raise ValueError(f"Message {i} must be a dict with a 'role', got {m!r}.")
        role, content = m["role"], m.get("content") or ""
        if not isinstance(content, str):
            raise ValueError(f"Message {i}: content must be text, got {type(content).__name__}.")
        if role in ("system", "developer", "user"):
            out.append({"role": "user" if role == "user" else "system", "content": content})
        elif role == "assistant":
            calls = m.get("tool_calls") or []
            text = content + (format_tool_calls(calls) if calls else "")
            out.append({"role": "assistant", "content": text})
        elif role == "tool":
            block = f"{TOOL_RESPONSE_OPEN}\n{content}\n{TOOL_RESPONSE_CLOSE}"
            if i > 0 and messages[i - 1].get("role") == "tool":
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block})
        else:
            raise ValueError(f"Message {i} has role {role!r}; use system, user, assistant or tool.")
    if tools:
        system = out[0]["content"] if out and out[0]["role"] == "system" else None
        if system is not None:
            out = out[1:]
        out.insert(0, {"role": "system", "content": tools_system_prompt(tools, system)})
    return out


def _unbalanced(text: str) -> bool:
    """True if ``text`` ends inside a string or with an open ``{``/``[``: it was cut off."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
    return in_string or depth > 0


def _calls_from(value: Any) -> list[ToolCall]:
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        ok = (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("arguments", {}), dict)
        )
        if not ok:
            raise ToolCallParseError(
                "bad_shape",
                'Valid JSON, wrong shape: each call must be {"name": "<tool>", "arguments": '
                f"{{...}}}}, got {json.dumps(item, ensure_ascii=False)[:200]}.",
            )
        calls.append(ToolCall(name=item["name"], arguments=dict(item.get("arguments", {}))))
    return calls


def _parse_block(inner: str, closed: bool) -> list[ToolCall]:
    body = inner.strip()
    if not body or body[0] not in "{[":
        if "{" not in body and "[" not in body:
            raise ToolCallParseError(
                "no_json", f"No JSON blob found after {TOOL_CALL_OPEN}: got {body[:200]!r}."
            )
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        if not closed and _unbalanced(body):
            raise ToolCallParseError(
                "truncated",
                f"The call was cut off before it ended (no {TOOL_CALL_CLOSE}, JSON still open): "
                f"{body[-120:]!r}. Raise max_tokens or constrain the output.",
            ) from e
        raise ToolCallParseError(
            "bad_json",
            f"Could not parse the JSON in the tool call: {e.msg} at char {e.pos} "
            f"of {body[:200]!r}.",
        ) from e
    return _calls_from(value)


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """The model's output -> (the text outside the calls, the calls).

    ``'<tool_call>[{"name": "add", "arguments": {"a": 1}}]</tool_call>'`` ->
    ``("", [ToolCall("add", {"a": 1})])``. Text with no ``<tool_call>`` is a plain answer:
    ``(text, [])``. A single object inside the tags is accepted as well as a list.
    Raises ``ToolCallParseError`` with ``.reason`` in ``REASONS``.
    """
    if not isinstance(text, str):
        raise ValueError(f"parse_tool_calls needs the model's text, got {type(text).__name__}.")
    outside, calls, pos = [], [], 0
    for m in re.finditer(re.escape(TOOL_CALL_OPEN), text):
        if m.start() < pos:  # inside a previous block
            continue
        outside.append(text[pos : m.start()])
        end = text.find(TOOL_CALL_CLOSE, m.end())
        closed = end != -1
        inner = text[m.end() : end] if closed else text[m.end() :]
        calls.extend(_parse_block(inner, closed))
        pos = end + len(TOOL_CALL_CLOSE) if closed else len(text)
    outside.append(text[pos:])
    return "".join(outside).replace(TOOL_CALL_CLOSE, "").strip(), calls
