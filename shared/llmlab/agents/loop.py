"""The agent loop from scratch: observe -> decide -> act -> observe, within a budget.

An "agent" is a loop around one chat call. Each turn the model reads the whole conversation so
far (the task, its earlier calls, the tools' results) and decides: call a tool, or answer. The
loop runs the tool (``llmlab.tool_use.tools.run_tool``: errors come back as text, never a
crash), appends the result as a ``tool`` message (``llmlab.tool_use.text_format.render_messages``
turns it into a ``<tool_response>`` turn) and asks again. It ends when:

- ``"answer"``: the model calls the built-in ``final_answer(answer)`` tool (or, with
  ``tool_choice="auto"``, replies with text and no call), or a ``stop_at`` tool succeeds;
- ``"loop"``: the model repeats a call it already made (same tool, same arguments): the result
  would be the same, so the loop would never end;
- ``"max_steps"`` / ``"max_tokens"`` / ``"max_seconds"``: a ``Budget`` runs out. Budgets are
  checked before each model call (a call in progress is not interrupted, so the last call can
  overshoot the token or time budget by its own size);
- ``"error"``: the model call itself failed (e.g. the chat no longer fits the context window).

Every stop returns the best partial answer (the last successful tool result or the last text
the model wrote, whichever came later) and the reason, never an exception.

The bookkeeping (steps, tokens, seconds, the budget, the stop reason) is a ``RunRecord``
(``llmlab.agents.run_record``): the loop, every pattern (``llmlab.agents.patterns``) and the
research agent keep their accounts in one, and ``finish`` turns it into the ``AgentRun`` they
return.

Designing for a small model (``llmlab.agents.grounding``): three switches, off by default.
``allowed`` narrows what the decoder lets the model write (e.g. arguments copied from the task)
while the prompt keeps showing the tools; ``grounded=True`` makes ``final_answer`` a choice among
the values the tools returned (offered once there are some), and turns a repeated call into one
forced ``final_answer`` call among them; ``stop_at`` names tools whose result IS the answer
(OpenAI Agents SDK ``StopAtTools``, LangChain ``return_direct``), e.g. the calculator.

Context: the bundled SmolLM2 reads at most 8,192 tokens. Before each call, if the rendered chat
would not leave room for the answer, the OLDEST tool results are replaced by a one-line note
("[older result removed ...]"), the newest one is always kept whole (``trim_messages``).
Summarising them with the model would cost a model call per trim: we trim instead.

Leaves out: parallel agents, streaming, asking a human, memory across tasks
(``llmlab.agents.memory``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmlab.agents.grounding import answer_tool, result_values
from llmlab.agents.run_record import AgentRun, AgentStep, Budget, RunRecord
from llmlab.tool_use.text_format import render_messages
from llmlab.tool_use.tools import Tool, ToolCall, ToolResult, check_tools, run_tool, tool

THINK = "Think first: in one short sentence, what should you do next? Do not call a tool yet."
ACT = "Now do it: call one tool."
ANSWER_NOW = "You already made this call; its result is above. Now call final_answer."
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


def named(name: str) -> dict:
    """``tool_choice`` that forces one tool: ``{"type": "function", "function": {"name": ...}}``."""
    return {"type": "function", "function": {"name": name}}


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


def context_fitter(
    chat: Any, tools: list[Tool], context_tokens: int | None, max_tokens: int
) -> Callable[[list[dict]], None]:
    """``fit(messages)``: trims the chat in place (``trim_messages``) if, with ``tools`` in the
    prompt, it would leave less than ``max_tokens`` of the context window for the answer."""
    count, limit = _token_counter(chat, tools), _context_limit(chat, context_tokens, max_tokens)

    def fit(messages: list[dict]) -> None:
        if limit is not None and count(messages) > limit:
            messages[:] = trim_messages(messages, count, limit)[0]

    return fit


def decide(chat: Any, messages: list[dict], tools: list[Tool], **kwargs: Any) -> Any:
    """One model call with tools -> a ``ToolChatResult``.

    Uses ``chat.complete_with_tools`` if the chat has one (a test double, a custom backend),
    otherwise ``llmlab.tool_use.calling.complete_with_tools``.
    """
    if kwargs.get("allowed", 0) is None:
        del kwargs["allowed"]  # nothing narrowed: the call a backend without ``allowed`` takes
    if hasattr(chat, "complete_with_tools"):
        return chat.complete_with_tools(messages, tools, **kwargs)
    from llmlab.tool_use.calling import complete_with_tools

    return complete_with_tools(chat, messages, tools, **kwargs)


def cost_of(result: Any) -> int:
    """Tokens a model call cost: prompt + completion (what an API bills)."""
    return result.usage.prompt_tokens + result.usage.completion_tokens


def check_task(task: str) -> str:
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"task must be a non-empty question or instruction, got {task!r}.")
    return task


def with_final_answer(tools: Sequence[Tool]) -> dict[str, Tool]:
    """The tools by name, plus the built-in ``final_answer`` unless one is given."""
    registry = check_tools(tools)
    return (
        registry if "final_answer" in registry else check_tools([*registry.values(), FINAL_ANSWER])
    )


@dataclass
class Guards:
    """What the loop keeps besides the chat: the calls made (to catch a repeat) and, for the
    switches of the module docstring, ``allowed``, ``grounded`` (with the values the tools
    returned: the answer's options) and ``stop_at``."""

    registry: dict[str, Tool]
    allowed: Sequence[Tool] | None = None
    grounded: bool = False
    stop_at: Collection[str] = ()
    seen: dict[tuple[str, str], int] = field(default_factory=dict)  # call_key -> model call
    values: list[str] = field(default_factory=list)  # grounded: what the tools returned
    answer_next: bool = False  # grounded, after a repeated call: the next call is final_answer

    def tools_now(self) -> list[Tool] | None:
        """What the decoder lets the model call this step (None: every tool, as shown): the
        ``allowed`` tools, and ``final_answer`` (grounded: limited to ``values``, once any)."""
        if self.allowed is None and not self.grounded:
            return None
        given = {t.name: t for t in (self.allowed or self.registry.values())}
        final = given.pop("final_answer", self.registry["final_answer"])
        if not self.grounded:
            return [*given.values(), final]
        if not self.values:
            return list(given.values())
        return [*given.values(), answer_tool(self.values, final)]

    def remember(self, result: str) -> None:
        """A successful tool result: in a grounded run, its values become answer options."""
        if self.grounded:
            self.values += result_values(result)


def ask(
    chat: Any, msgs: list[dict], tools: list[Tool], think_tokens: int, tool_choice: Any, **call: Any
) -> tuple[Any, str, int]:
    """One decision: the model's call under ``tool_choice`` (``call``: more of ``decide``'s
    keywords), after a short thought if ``think_tokens`` (ReAct). -> (result, the thought or "",
    the tokens both calls cost)."""
    if not think_tokens:
        res = decide(chat, msgs, tools, tool_choice=tool_choice, **call)
        return res, "", cost_of(res)
    think = dict(call, tool_choice="none", max_tokens=think_tokens, allowed=None)
    th = decide(chat, msgs + [{"role": "user", "content": THINK}], tools, **think)
    thought = (th.text or "").strip()
    view = msgs + [{"role": "assistant", "content": thought}, {"role": "user", "content": ACT}]
    res = decide(chat, view, tools, tool_choice=tool_choice, **call)
    return res, thought, cost_of(th) + cost_of(res)


def unusable(res: Any) -> str:
    """What the loop tells the model when its reply holds no usable call."""
    why = res.error or (
        "the reply was cut off before a complete call"
        if res.finish_reason == "length"
        else "no tool call in the reply"
    )
    return (
        f'Error: {why}. Reply with one call: <tool_call>[{{"name": ..., '
        f'"arguments": {{...}}}}]</tool_call>'
    )


def run_call(
    rec: RunRecord,
    registry: dict[str, Tool],
    call: ToolCall,
    seen: dict,
    msgs: list[dict],
    **step: Any,
) -> ToolResult | None:
    """Run one call the model wrote, append its result to ``msgs`` and record the step
    (``step``: its tokens, seconds, raw). None, recorded as an error, if it repeats a call."""
    key = call_key(call)
    if key in seen and call.name != "final_answer":
        note = f"Stopped: {call.name} was already called with these arguments at step {seen[key]}."
        rec.add("error", note, tool=call.name, arguments=call.arguments, ok=False, **step)
        return None
    seen[key] = rec.calls
    t0 = time.perf_counter()
    result = run_tool(registry, call)
    msgs.append(tool_message(result))
    kind = "answer" if call.name == "final_answer" and result.ok else "tool"
    step["seconds"] = step.get("seconds", 0.0) + time.perf_counter() - t0
    rec.add(kind, result.content, tool=call.name, arguments=call.arguments, ok=result.ok, **step)
    return result


def act(
    rec: RunRecord, guards: Guards, res: Any, text: str, msgs: list[dict], step: dict, auto: bool
) -> AgentRun | None:
    """Handle one reply; the finished run if it ends the run, else None (the loop goes on).

    An unusable reply is fed back as an error; a text answer (``auto``) or ``final_answer`` ends
    the run; each call is run. A repeated call stops the run ("loop"), or in a grounded run with
    values found, makes the next call a forced ``final_answer`` among them.
    """
    if res.error or (not res.tool_calls and (not auto or not text)):
        rec.add("error", unusable(res), ok=False, **step)
        msgs += [{"role": "assistant", "content": step["raw"]}]
        msgs += [{"role": "user", "content": unusable(res)}]
        return None
    if not res.tool_calls:  # tool_choice="auto": text without a call is the answer
        msgs.append(assistant_message(text, []))
        rec.add("answer", text, **step)
        return rec.finish("answer", msgs, text)
    calls = [replace(c, id=f"call_{rec.calls}_{j}") for j, c in enumerate(res.tool_calls)]
    msgs.append(assistant_message(text, calls))
    for c in calls:
        result = run_call(rec, guards.registry, c, guards.seen, msgs, **step)
        step = dict(step, tokens=0, seconds=0.0)  # a reply's cost counts once
        if result is None:  # a repeated call: the result would be the same, forever
            if not guards.values or rec.over_budget():
                return rec.finish("loop", msgs)
            msgs.append(tool_message(ToolResult(call=c, ok=False, content=ANSWER_NOW)))
            guards.answer_next = True
            return None
        if result.ok and (c.name == "final_answer" or c.name in guards.stop_at):
            return rec.finish("answer", msgs, result.content)
        if result.ok:
            rec.answer = result.content
            guards.remember(result.content)
    return None


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
    allowed: Sequence[Tool] | None = None,
    grounded: bool = False,
    stop_at: Collection[str] = (),
    record: RunRecord | None = None,
) -> AgentRun:
    """Run the loop on ``task`` with ``tools`` (``final_answer`` is added) until a stop reason.

    ``tool_choice``: "required" (every reply is a call), "auto" (a reply without a call is the
    answer) or a named tool (forced every turn: it can never answer, so it shows the stops).
    ``max_tokens``: per model call. ``messages``: start from this chat instead of the task alone.
    ``on_step(step)``: called as each step finishes. ``think_tokens > 0`` (ReAct): a short
    thought (text only) before each call. ``allowed``, ``grounded``, ``stop_at``: the module
    docstring. ``record``: go on with this record (its steps count, its budget applies).
    """
    task, rec = check_task(task), record or RunRecord(budget=budget or Budget(), on_step=on_step)
    registry = with_final_answer(tools)
    guards, shown = (
        Guards(registry=registry, allowed=allowed, grounded=grounded, stop_at=stop_at),
        [*registry.values()],
    )
    first = [{"role": "system", "content": system or SYSTEM}, {"role": "user", "content": task}]
    msgs = list(messages) if messages else first
    fit = context_fitter(chat, shown, context_tokens, max_tokens)
    settings = dict(max_tokens=max_tokens, temperature=0.0, constrained=constrained)
    while not (reason := rec.over_budget()):
        rec.calls += 1
        fit(msgs)  # drop the oldest tool results if the chat would overflow the context
        choice = named("final_answer") if guards.answer_next else tool_choice
        t0 = time.perf_counter()
        try:
            res, thought, cost = ask(
                chat, msgs, shown, think_tokens, choice, allowed=guards.tools_now(), **settings
            )
        except Exception as exc:  # the call itself failed: stop, keep what we have
            failure, spent = f"{type(exc).__name__}: {exc}", time.perf_counter() - t0
            rec.add("error", failure, ok=False, seconds=spent)
            return rec.finish("error", msgs)
        text = " ".join(x for x in (thought, (res.text or "").strip()) if x)
        rec.answer = text or rec.answer
        raw = f"{thought}\n{res.raw}" if thought else res.raw
        step = dict(tokens=cost, seconds=time.perf_counter() - t0, raw=raw)
        if (done := act(rec, guards, res, text, msgs, step, choice == "auto")) is not None:
            return done
    return rec.finish(reason, msgs)
