"""The chat interface with tools: one call, any backend -> text, or tool calls ready to run.

``complete_with_tools(chat, messages, tools, tool_choice=..., constrained=...)`` is what happens
behind an API's ``tools=[...]``:

- ``LocalChat`` (the bundled model): the tools are written into the prompt
  (``llmlab.tool_use.text_format.render_messages``), the model decodes under a constraint
  (``llmlab.decoding.constraints``) so a call is always well-formed JSON naming a real tool with valid
  arguments, and the text is parsed back into ``ToolCall`` objects. ``constrained``: True
  (llguidance with forcing: text the grammar forces, like ``{"name": "``, is written in one
  pass: about half a call's tokens), "llguidance" (the same engine, no forcing: exactly the
  masks of the hand-written one), "regex" (the hand-written one, slower) or False (free
  decoding: then a malformed call comes back in ``.error``, never as an exception).
- ``OpenAIChat`` (any OpenAI-compatible server): the native ``tools=`` / ``tool_choice=``
  request; ``message.tool_calls`` become ``ToolCall`` objects. The server decides how (or
  whether) it constrains; ``constrained`` is not sent.

``tool_choice``: "auto" (text or a call), "required" (a call), "none" (text only) or
``{"type": "function", "function": {"name": "..."}}`` (a call of that tool).

Leaves out: running the calls (``llmlab.tool_use.tools.run_tool``), the loop around them
(``llmlab.agents.loop``), streaming and batching of tool requests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmlab.chat.local import LocalChat
from llmlab.chat.openai_backend import OpenAIChat
from llmlab.chat.records import Usage, check_request
from llmlab.decoding.chat_template import chat_text
from llmlab.decoding.constraints import GrammarConstraint, RegexConstraint
from llmlab.decoding.fast_generation import fast_generate
from llmlab.tool_use.grammar import chosen_tools, tool_call_grammar, tool_call_regex
from llmlab.tool_use.text_format import ToolCallParseError, parse_tool_calls, render_messages
from llmlab.tool_use.tools import Tool, ToolCall, check_tools

MODES = (True, False, "regex", "llguidance")


@dataclass
class ToolChatResult:
    """One answer: text, or tool calls. ``finish_reason`` "tool_calls" when there are calls.

    ``prompt``: the exact text the local model read ("" for a server); ``raw``: the model's output
    before parsing; ``error``: why the output is not a usable answer (unconstrained decoding).
    """

    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    finish_reason: str  # "stop" | "length" | "tool_calls"
    prompt: str = ""
    raw: str = ""
    error: str | None = None
    steps: list[Any] = field(default_factory=list, repr=False)  # local: generation Steps


def make_constraint(
    lm: Any, tools: Sequence[Tool], tool_choice: Any = "auto", constrained: bool | str = True
) -> Any:
    """The constraint ``complete_with_tools`` decodes under (None when ``constrained=False``)."""
    if constrained is False:
        return None
    if constrained == "regex":
        return RegexConstraint(lm, tool_call_regex(tools, tool_choice))
    return GrammarConstraint(
        lm, grammar=tool_call_grammar(tools, tool_choice), forcing=constrained is True
    )


def _check(
    tools: Any, tool_choice: Any, max_tokens: Any, temperature: float, constrained: Any
) -> list[Tool]:
    check_request(max_tokens, temperature)  # the chat interface's own check, one implementation
    if not (isinstance(constrained, bool) or constrained in ("regex", "llguidance")):
        raise ValueError(
            f"constrained must be True, False, 'regex' or 'llguidance', got {constrained!r}."
        )
    checked = list(check_tools(tools).values())
    chosen_tools(checked, tool_choice)  # ValueError for a bad tool_choice or an unknown name
    return checked


def _check_allowed(allowed: Any, tools: list[Tool], tool_choice: Any) -> list[Tool]:
    """``allowed`` checked: tools named like some of ``tools``, and ``tool_choice`` among them."""
    narrow = list(check_tools(allowed).values())
    unknown = {t.name for t in narrow} - {t.name for t in tools}
    if unknown or not narrow:
        raise ValueError(
            f"allowed must narrow some of the tools ({', '.join(t.name for t in tools)}); "
            f"got {sorted(unknown) or 'none'}."
        )
    chosen_tools(narrow, tool_choice)  # ValueError if tool_choice names a tool not allowed
    return narrow


def _choice_error(calls: list[ToolCall], tool_choice: Any) -> str | None:
    """What is wrong with the calls under ``tool_choice`` (unconstrained output can break it)."""
    if tool_choice == "none":
        return "tool_choice 'none', but the model wrote a tool call." if calls else None
    if tool_choice == "auto":
        return None
    if not calls:
        return "The model answered in text, but tool_choice required a tool call."
    if isinstance(tool_choice, dict):
        name = tool_choice["function"]["name"]
        wrong = sorted({c.name for c in calls if c.name != name})
        if wrong:
            return f"The model called {', '.join(wrong)}, but tool_choice named {name!r}."
    return None


def complete_with_tools(
    chat: LocalChat | OpenAIChat,
    messages: Sequence[dict],
    tools: Sequence[Tool],
    *,
    tool_choice: Any = "auto",
    max_tokens: int = 256,
    temperature: float = 0.0,
    seed: int | None = None,
    constrained: bool | str = True,
    allowed: Sequence[Tool] | None = None,
) -> ToolChatResult:
    """The model's answer to ``messages`` given ``tools``: text, or calls to run.

    ``allowed``: what this one call may write, when that is narrower than ``tools``: some of them,
    or tools of the same names with tighter argument schemas (an ``enum``, a ``pattern``). The
    prompt still shows ``tools`` (the same from call to call, so a prompt cache keeps matching);
    the constraint enforces ``allowed``, as OpenAI's ``allowed_tools`` tool_choice narrows the
    names. A server is sent ``allowed`` as its tools.

    Never raises for the model's output: a call that cannot be parsed (unconstrained), or that
    breaks ``tool_choice``, comes back with ``.error`` set. Raises ValueError for bad arguments.
    """
    tools = _check(tools, tool_choice, max_tokens, temperature, constrained)
    rendered = render_messages(messages, tools)  # checks the messages for both backends
    decodable = tools if allowed is None else _check_allowed(allowed, tools, tool_choice)
    if isinstance(chat, LocalChat):
        return _local(
            chat, rendered, decodable, tool_choice, max_tokens, temperature, seed, constrained
        )
    if isinstance(chat, OpenAIChat):
        return _remote(chat, messages, decodable, tool_choice, max_tokens, temperature, seed)
    raise ValueError(f"chat must be a LocalChat or OpenAIChat (llmlab.chat.local), got {chat!r}.")


def _local(
    chat: LocalChat,
    rendered: list[dict],
    tools: list[Tool],
    tool_choice: Any,
    max_tokens: int,
    temperature: float,
    seed: int | None,
    constrained: bool | str,
) -> ToolChatResult:
    lm = chat.lm
    constraint = make_constraint(lm, tools, tool_choice, constrained)
    gen = fast_generate(
        lm,
        rendered,
        max_new_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        chat=True,
        n_candidates=1,
        constraint=constraint,
        prompt_cache=getattr(chat, "prompt_cache", None),
    )
    raw, error, calls, text = gen.text, None, [], gen.text
    try:
        text, calls = parse_tool_calls(raw)
    except ToolCallParseError as exc:
        error = f"{exc.reason}: {exc}"
    error = error or _choice_error(calls, tool_choice)
    if tool_choice == "none" and calls:
        text, calls = raw, []
    for i, call in enumerate(calls):
        call.id = call.id or f"call_{i}"
    if calls:
        reason = "tool_calls"
    else:
        reason = "length" if gen.stop_reason == "length" else "stop"
    return ToolChatResult(
        text=text,
        tool_calls=calls,
        usage=Usage(prompt_tokens=len(gen.prompt_ids), completion_tokens=len(gen.token_ids)),
        finish_reason=reason,
        prompt=chat_text(lm, rendered),
        raw=raw,
        error=error,
        steps=gen.steps,
    )


def _openai_messages(messages: Sequence[dict]) -> list[dict]:
    """Messages as the OpenAI API wants them: tool call arguments as JSON strings."""
    out = []
    for m in messages:
        calls = m.get("tool_calls")
        if m.get("role") == "assistant" and calls:
            wire = []
            for i, c in enumerate(calls):
                if isinstance(c, ToolCall):
                    c = {"id": c.id, "function": {"name": c.name, "arguments": c.arguments}}
                fn = dict(c.get("function", c))
                if not isinstance(fn.get("arguments", ""), str):
                    fn["arguments"] = json.dumps(fn["arguments"], ensure_ascii=False)
                wire.append(
                    {
                        "id": c.get("id") or f"call_{i}",
                        "type": "function",
                        "function": {"name": fn["name"], "arguments": fn.get("arguments", "{}")},
                    }
                )
            m = {**m, "content": m.get("content") or None, "tool_calls": wire}
        out.append(dict(m))
    return out


def _remote(
    chat: OpenAIChat,
    messages: Sequence[dict],
    tools: list[Tool],
    tool_choice: Any,
    max_tokens: int,
    temperature: float,
    seed: int | None,
) -> ToolChatResult:
    request = {
        "model": chat.model,
        "messages": _openai_messages(messages),
        "tools": [t.spec() for t in tools],
        "tool_choice": tool_choice,
        "max_tokens": max_tokens,
        "temperature": temperature,
    }
    resp = chat.client.chat.completions.create(
        **request, **({"seed": seed} if seed is not None else {})
    )
    choice, usage = resp.choices[0], resp.usage
    message, calls, errors = choice.message, [], []
    for i, tc in enumerate(message.tool_calls or []):
        try:
            args = json.loads(tc.function.arguments or "{}")
        except json.JSONDecodeError as exc:
            errors.append(f"bad_json: arguments of {tc.function.name!r} are not JSON: {exc}.")
            continue
        if not isinstance(args, dict):
            errors.append(f"bad_shape: arguments of {tc.function.name!r} are not an object.")
            continue
        calls.append(ToolCall(name=tc.function.name, arguments=args, id=tc.id or f"call_{i}"))
    error = "; ".join(errors) or _choice_error(calls, tool_choice)
    if calls:
        reason = "tool_calls"
    else:
        reason = "length" if choice.finish_reason == "length" else "stop"
    tokens = (
        Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        if usage
        else Usage(prompt_tokens=0, completion_tokens=0)
    )
    return ToolChatResult(
        text=message.content or "",
        tool_calls=calls,
        usage=tokens,
        finish_reason=reason,
        prompt="",
        raw=message.model_dump_json(exclude_none=True),
        error=error,
    )
