"""The agent loop from scratch: observe -> decide -> act -> observe, within a budget.

An "agent" is a loop around one chat call. Each turn the model reads the whole conversation so
far (the task, its earlier calls, the tools' results) and decides: call a tool, or answer. The
loop runs the tool (``llmlab.tool_use.tools.run_tool``: errors come back as text, never a crash), appends
the result as a ``tool`` message (``llmlab.tool_use.text_format.render_messages`` turns it into a
``<tool_response>`` turn) and asks again. It ends when:

- ``"answer"``: the model calls the built-in ``final_answer(answer)`` tool (or, with
  ``tool_choice="auto"``, replies with text and no call);
- ``"loop"``: the model repeats a call it already made (same tool, same arguments): the result
  would be the same, so the loop would never end;
- ``"max_steps"`` / ``"max_tokens"`` / ``"max_seconds"``: a ``Budget`` runs out. Budgets are
  checked before each model call (a call in progress is not interrupted, so the last call can
  overshoot the token or time budget by its own size);
- ``"error"``: the model call itself failed (e.g. the chat no longer fits the context window).

Every stop returns the best partial answer (the last successful tool result or the last text
the model wrote, whichever came later) and the reason, never an exception.

Context: the bundled SmolLM2 reads at most 8,192 tokens. Before each call, if the rendered chat
would not leave room for the answer, the OLDEST tool results are replaced by a one-line note
("[older result removed ...]"), the newest one is always kept whole (``trim_messages``).
Summarising them with the model would cost a model call per trim: we trim instead.

Leaves out: parallel agents, streaming, asking a human, memory across tasks (``llmlab.agents.memory``).
"""

from __future__ import annotations

import json
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from llmlab.tool_use.text_format import render_messages
from llmlab.tool_use.tools import Tool, ToolCall, ToolResult, check_tools, run_tool, tool

THINK = "Think first: in one short sentence, what should you do next? Do not call a tool yet."
ACT = "Now do it: call one tool."
STOP_REASONS = ("answer", "max_steps", "max_tokens", "max_seconds", "loop", "error")
SYSTEM = (
    "You solve the user's task with the tools. Call one tool at a time. When you know "
    "the answer, call final_answer with it."
)


def final_answer(answer: str) -> str:
    """Give the final answer to the user's task. This ends the task.

    Args:
        answer: The answer, as short as possible (a number, a year or a name).
    """
    return answer


FINAL_ANSWER = tool(final_answer)


@dataclass
class Budget:
    """Limits on one run: model calls, tokens (prompt + completion, summed) and wall seconds."""

    max_steps: int = 8
    max_tokens: int = 6000
    max_seconds: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_steps", "max_tokens", "max_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(
                    f"Budget {name} must be a number > 0, got {value!r}: an agent "
                    f"with no budget cannot take a single step."
                )
        if self.max_steps != int(self.max_steps) or self.max_tokens != int(self.max_tokens):
            raise ValueError("Budget max_steps and max_tokens must be whole numbers.")


@dataclass
class AgentStep:
    """One thing the agent did. ``kind``: "tool" | "answer" | "plan" | "critique" | "error".

    ``tokens`` is what the model call behind it cost (prompt + completion; 0 for the second and
    later calls of one reply); ``raw`` is the model's output before parsing.
    """

    index: int
    kind: str
    tool: str | None
    arguments: dict | None
    result: str
    ok: bool
    tokens: int
    seconds: float
    raw: str


@dataclass
class AgentRun:
    """A finished run: the answer (maybe partial), what happened, why it stopped, its cost."""

    answer: str
    steps: list[AgentStep]
    stop_reason: str
    tokens: int
    seconds: float
    messages: list[dict] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        """Decisions made: a reply with two tool calls counts once; a ReAct step is two model calls."""
        return len({s.index for s in self.steps if s.tokens or s.kind != "tool"})

    def to_json(self) -> dict:
        """Everything as plain JSON types (``json.dumps(run.to_json())`` works)."""
        return asdict(self)

    def trace(self, width: int = 90) -> str:
        """One line per step: ``#1 tool calculator({"expression": "2+2"}) -> 4``."""
        lines = []
        for s in self.steps:
            call = f"{s.tool}({json.dumps(s.arguments)})" if s.tool else ""
            mark = "" if s.ok else " [failed]"
            lines.append(f"#{s.index} {s.kind:<8} {call} -> {s.result!r}{mark}"[:width])
        lines.append(
            f"stop: {self.stop_reason}; answer {self.answer!r}; {self.tokens} tokens, "
            f"{self.seconds:.1f} s"
        )
        return "\n".join(lines)


# --- helpers ----------------------------------------------------------------------------------


def call_key(call: ToolCall) -> tuple[str, str]:
    """What makes two calls "the same": the tool name and its arguments (key order ignored)."""
    return call.name, json.dumps(call.arguments, sort_keys=True)


def assistant_message(text: str, calls: Sequence[ToolCall]) -> dict:
    """The model's turn in OpenAI's format (arguments as a JSON string, as providers send them)."""
    msg: dict[str, Any] = {"role": "assistant", "content": text or ""}
    if calls:
        msg["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in calls
        ]
    return msg


def tool_message(result: ToolResult) -> dict:
    """A tool's result (or error) as the ``tool`` message the model reads next."""
    return {
        "role": "tool",
        "tool_call_id": result.call.id,
        "name": result.call.name,
        "content": result.content,
    }


TRIMMED = "[older result removed to fit the context window: {n} characters]"


def trim_messages(
    messages: list[dict], count_tokens: Callable[[list[dict]], int], limit: int
) -> tuple[list[dict], int]:
    """Replace the oldest tool results by a short note until ``count_tokens(messages) <= limit``.

    The last tool result stays whole (the model needs it now). Returns the new list and how many
    results were trimmed; the chat may still not fit (the caller's model call then fails).
    """
    out, trimmed = [dict(m) for m in messages], 0
    tool_idx = [i for i, m in enumerate(out) if m["role"] == "tool"][:-1]  # oldest first
    for i in tool_idx:
        if count_tokens(out) <= limit:
            break
        if not out[i]["content"].startswith("[older result removed"):
            out[i]["content"] = TRIMMED.format(n=len(out[i]["content"]))
            trimmed += 1
    return out, trimmed


def _token_counter(chat: Any, tools: list[Tool]) -> Callable[[list[dict]], int]:
    if hasattr(chat, "prompt_ids"):  # LocalChat: the exact count the model will read
        return lambda msgs: len(chat.prompt_ids(render_messages(msgs, tools)))
    return lambda msgs: len(json.dumps(msgs)) // 4  # ~4 characters per token (an estimate)


def _context_limit(chat: Any, context_tokens: int | None, max_tokens: int) -> int | None:
    if context_tokens is None and hasattr(chat, "lm"):
        from llmlab.runtime.architecture import config_of

        context_tokens = config_of(chat.lm).context_length
    return None if context_tokens is None else context_tokens - max_tokens


def decide(chat: Any, messages: list[dict], tools: list[Tool], **kwargs: Any) -> Any:
    """One model call with tools -> a ``ToolChatResult``.

    Uses ``chat.complete_with_tools`` if the chat has one (a test double, a custom backend),
    otherwise ``llmlab.tool_use.calling.complete_with_tools``.
    """
    if hasattr(chat, "complete_with_tools"):
        return chat.complete_with_tools(messages, tools, **kwargs)
    from llmlab.tool_use.calling import complete_with_tools

    return complete_with_tools(chat, messages, tools, **kwargs)


def over_budget(budget: Budget, calls: int, tokens: int, start: float) -> str | None:
    """The stop reason if a budget is spent ("max_steps", ...), else None; checked before a call."""
    if calls >= budget.max_steps:
        return "max_steps"
    if tokens >= budget.max_tokens:
        return "max_tokens"
    if time.perf_counter() - start >= budget.max_seconds:
        return "max_seconds"
    return None


def check_task(task: str) -> str:
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"task must be a non-empty question or instruction, got {task!r}.")
    return task


# --- the loop ---------------------------------------------------------------------------------


def run_agent(
    chat: Any,
    task: str,
    tools: Sequence[Tool],
    *,
    system: str | None = None,
    budget: Budget | None = None,
    constrained: bool | str = True,
    on_step: Callable[[AgentStep], None] | None = None,
    tool_choice: Any = "required",
    max_tokens: int = 64,
    context_tokens: int | None = None,
    messages: list[dict] | None = None,
    think_tokens: int = 0,
) -> AgentRun:
    """Run the loop on ``task`` with ``tools`` (``final_answer`` is added) until a stop reason.

    ``tool_choice``: "required" (every reply is a call; the answer is a ``final_answer`` call),
    "auto" (the model may write text; a reply without a call is the answer) or a named tool
    (forced every turn: it can never answer, so it demonstrates the stops).
    ``max_tokens``: per model call. ``messages``: start from this chat instead of the task alone.
    ``on_step(step)`` is called as each step finishes (print a live trace with it).
    ``think_tokens > 0`` (ReAct): before each call the model first writes a short thought (text
    only, ``tool_choice="none"``); it stays in the chat as the text of the model's turn.
    """
    task, budget = check_task(task), budget or Budget()
    registry = check_tools(tools)
    tools = list(registry.values()) + ([] if "final_answer" in registry else [FINAL_ANSWER])
    registry = check_tools(tools)
    msgs = (
        list(messages)
        if messages
        else [{"role": "system", "content": system or SYSTEM}, {"role": "user", "content": task}]
    )
    count, limit = _token_counter(chat, tools), _context_limit(chat, context_tokens, max_tokens)
    steps: list[AgentStep] = []
    seen: dict[tuple[str, str], int] = {}
    partial, tokens, calls, start = "", 0, 0, time.perf_counter()

    def finish(reason: str, answer: str | None = None) -> AgentRun:
        return AgentRun(
            partial if answer is None else answer,
            steps,
            reason,
            tokens,
            time.perf_counter() - start,
            msgs,
        )

    def add(step: AgentStep) -> None:
        steps.append(step)
        if on_step is not None:
            on_step(step)

    while True:
        if reason := over_budget(budget, calls, tokens, start):
            return finish(reason)
        calls += 1
        if limit is not None and count(msgs) > limit:
            msgs[:] = trim_messages(msgs, count, limit)[0]
        t0, thought, cost = time.perf_counter(), "", 0
        try:
            view = msgs
            if think_tokens:
                ask = msgs + [{"role": "user", "content": THINK}]
                th = decide(
                    chat,
                    ask,
                    tools,
                    tool_choice="none",
                    max_tokens=think_tokens,
                    temperature=0.0,
                    constrained=constrained,
                )
                thought = (th.text or "").strip()
                cost = th.usage.prompt_tokens + th.usage.completion_tokens
                view = msgs + [
                    {"role": "assistant", "content": thought},
                    {"role": "user", "content": ACT},
                ]
            res = decide(
                chat,
                view,
                tools,
                tool_choice=tool_choice,
                max_tokens=max_tokens,
                temperature=0.0,
                constrained=constrained,
            )
        except Exception as exc:  # the call itself failed: stop, keep what we have
            add(
                AgentStep(
                    calls,
                    "error",
                    None,
                    None,
                    f"{type(exc).__name__}: {exc}",
                    False,
                    cost,
                    time.perf_counter() - t0,
                    "",
                )
            )
            tokens += cost
            return finish("error")
        cost += res.usage.prompt_tokens + res.usage.completion_tokens
        secs = time.perf_counter() - t0
        tokens += cost
        text = " ".join(x for x in (thought, (res.text or "").strip()) if x)
        res.raw = f"{thought}\n{res.raw}" if thought else res.raw
        if text:
            partial = text
        if res.error or (not res.tool_calls and (tool_choice != "auto" or not text)):
            why = res.error or (
                "the reply was cut off before a complete call"
                if res.finish_reason == "length"
                else "no tool call in the reply"
            )
            note = (
                f'Error: {why}. Reply with one call: <tool_call>[{{"name": ..., '
                f'"arguments": {{...}}}}]</tool_call>'
            )
            add(AgentStep(calls, "error", None, None, note, False, cost, secs, res.raw))
            msgs += [{"role": "assistant", "content": res.raw}, {"role": "user", "content": note}]
            continue
        if not res.tool_calls:  # tool_choice="auto": text without a call is the answer
            msgs.append(assistant_message(text, []))
            add(AgentStep(calls, "answer", None, None, text, True, cost, secs, res.raw))
            return finish("answer", text)
        res_calls = [replace(c, id=f"call_{calls}_{j}") for j, c in enumerate(res.tool_calls)]
        msgs.append(assistant_message(text, res_calls))
        for j, c in enumerate(res_calls):
            cost_j, secs_j = (cost, secs) if j == 0 else (0, 0.0)
            key = call_key(c)
            if key in seen and c.name != "final_answer":
                note = f"Stopped: {c.name} was already called with these arguments at step {seen[key]}."
                add(
                    AgentStep(
                        calls, "error", c.name, c.arguments, note, False, cost_j, secs_j, res.raw
                    )
                )
                return finish("loop")
            seen[key] = calls
            result = run_tool(registry, c)
            msgs.append(tool_message(result))
            kind = "answer" if c.name == "final_answer" and result.ok else "tool"
            add(
                AgentStep(
                    calls,
                    kind,
                    c.name,
                    c.arguments,
                    result.content,
                    result.ok,
                    cost_j,
                    secs_j,
                    res.raw,
                )
            )
            if kind == "answer":
                return finish("answer", result.content)
            if result.ok:
                partial = result.content
