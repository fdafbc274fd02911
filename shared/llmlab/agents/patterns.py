"""Agent patterns, each built on the same loop pieces and each returning an ``AgentRun``.

So they can be compared on the same tasks with the same budget:

- ``no_tools``: the baseline. The question, one answer, no loop (``no_tools_batch``: many
  questions in one batch through ``chat.complete_batch``).
- ``loop``: ``llmlab.agents.loop.run_agent`` as it is: every reply is a (constrained) tool call.
- ``react``: reason + act (Yao et al., 2022): before each call the model writes one short
  thought (``run_agent(..., think_tokens=...)``), then acts. Twice the model calls per step.
- ``plan_and_execute``: one forced ``make_plan`` call (at most ``max_plan_items`` steps, each
  "tool: argument"), one call per plan step, then a forced ``final_answer``. The plan is fixed:
  no re-planning when a step fails. Every call shows the same tools (so a prompt cache keeps
  matching); ``allowed`` says which one each call may make.
- ``reflect``: run the loop (or take its finished run: ``draft=``), then a constrained
  self-critique (``verdict(correct, problem)``); if the model judges its answer wrong, one
  retry with the critique in the chat, on the same budget.

Each takes the loop's switches for a small model (``allowed``, ``grounded``, ``stop_at``: see
``llmlab.agents.loop``) and keeps its accounts in one ``llmlab.agents.loop.RunRecord``.

Leaves out: re-planning, multi-agent set-ups, tree search, voting over samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any

from llmlab.agents.grounding import answer_tool
from llmlab.agents.loop import (
    SYSTEM,
    Guards,
    assistant_message,
    call_key,
    check_task,
    cost_of,
    decide,
    named,
    run_agent,
    run_call,
    tool_message,
    with_final_answer,
)
from llmlab.agents.run_record import AgentRun, Budget, RunRecord
from llmlab.tool_use.tools import Tool, ToolCall, ToolResult, tool

NO_TOOLS_SYSTEM = "Answer the question. Reply with the answer only: a number, a year or a name."


# --- the baseline -----------------------------------------------------------------------------


def _baseline_run(task: str, result: Any, seconds: float, system: str) -> AgentRun:
    rec = RunRecord(calls=1)
    text = result.text.strip()
    rec.add("answer", text, tokens=cost_of(result), seconds=seconds, raw=result.text)
    msgs = [
        {"role": "system", "content": system},
        {"role": "user", "content": task},
        {"role": "assistant", "content": result.text},
    ]
    return rec.finish("answer", msgs, text)


def no_tools(
    chat: Any,
    task: str,
    tools: Sequence[Tool] = (),
    *,
    max_tokens: int = 24,
    system: str = NO_TOOLS_SYSTEM,
    **_: Any,
) -> AgentRun:
    """The model answers from what it knows: one call, no tools (``tools`` is ignored)."""
    return no_tools_batch(chat, [task], max_tokens=max_tokens, system=system)[0]


def no_tools_batch(
    chat: Any, tasks: Sequence[str], *, max_tokens: int = 24, system: str = NO_TOOLS_SYSTEM
) -> list[AgentRun]:
    """``no_tools`` for many tasks in one batch; each run's seconds = the batch time / n."""
    chats = [
        [{"role": "system", "content": system}, {"role": "user", "content": check_task(t)}]
        for t in tasks
    ]
    start = time.perf_counter()
    results = chat.complete_batch(chats, max_tokens=max_tokens)
    each = (time.perf_counter() - start) / max(len(tasks), 1)
    return [_baseline_run(t, r, each, system) for t, r in zip(tasks, results, strict=True)]


# --- loop and ReAct ---------------------------------------------------------------------------


def loop(chat: Any, task: str, tools: Sequence[Tool], **kwargs: Any) -> AgentRun:
    """``run_agent`` unchanged: call, observe, call ... ``final_answer``."""
    return run_agent(chat, task, tools, **kwargs)


def react(
    chat: Any, task: str, tools: Sequence[Tool], *, think_tokens: int = 32, **kwargs: Any
) -> AgentRun:
    """Thought, then action, then observation, repeated (the thought is plain text)."""
    return run_agent(chat, task, tools, think_tokens=think_tokens, **kwargs)


# --- plan and execute -------------------------------------------------------------------------


def make_plan(steps: list[str]) -> str:
    """Write the plan: the tool calls needed to answer, in order.

    Args:
        steps: One short step per tool call, for example "calculator: 12 × 34".
    """
    return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))


PLAN_ITEM_CHARS = 40  # a step with no narrower rule: at most this long (no run-on plans)


def plan_tool(max_items: int = 3, allowed: Sequence[Tool] | None = None) -> Tool:
    """``make_plan`` with 1 to ``max_items`` steps. Each step is "tool: argument" with the
    argument as the ``allowed`` tool's pattern admits (e.g. copied from the task), or, with no
    such pattern, any text of at most ``PLAN_ITEM_CHARS`` characters."""
    t = tool(make_plan)
    steps = t.parameters["properties"]["steps"]
    steps.update(minItems=1, maxItems=max_items)
    forms = []
    for a in allowed or []:
        prop = next(iter(a.parameters.get("properties", {}).values()), {})
        if "pattern" in prop:
            forms.append(f"{a.name}: ({prop['pattern'].removeprefix('^').removesuffix('$')})")
    if forms:
        steps["items"]["pattern"] = "^(" + "|".join(forms) + ")$"
    else:
        steps["items"]["maxLength"] = PLAN_ITEM_CHARS
    return t


PLAN_INSTRUCTION = (
    "Plan how to answer the question with the tools. Do not answer yet: list "
    "the tool calls to make, one per step (usually one step is enough)."
)


def _make_the_plan(
    chat: Any,
    rec: RunRecord,
    msgs: list[dict],
    shown: list[Tool],
    planner: Tool,
    task: str,
    **kw: Any,
) -> list[str]:
    """The forced ``make_plan`` call, recorded; its steps (the task itself if it gave none)."""
    rec.calls += 1
    t0 = time.perf_counter()
    res = decide(chat, msgs, shown, tool_choice=named("make_plan"), allowed=[planner], **kw)
    call = res.tool_calls[0] if res.tool_calls else None
    items = [s for s in (call.arguments.get("steps", []) if call else []) if isinstance(s, str)]
    items = list(dict.fromkeys(items)) or [task]  # no repeated steps; no usable plan: the task
    msgs.append(assistant_message("", [replace(call, id="plan")] if call else []))
    msgs.append(
        tool_message(
            ToolResult(
                call=ToolCall(name="make_plan", arguments={}, id="plan"),
                ok=True,
                content=make_plan(items),
            )
        )
    )
    rec.add(
        "plan",
        make_plan(items),
        tool="make_plan",
        arguments={"steps": items},
        ok=call is not None,
        tokens=cost_of(res),
        seconds=time.perf_counter() - t0,
        raw=res.raw,
    )
    return items


def _do_step(
    chat: Any, rec: RunRecord, guards: Guards, msgs: list[dict], shown: list[Tool], **settings: Any
) -> ToolResult | None:
    """One plan step: one required call among the working tools, run once (a repeat is not run
    again). The result, or None if the model wrote no usable call."""
    rec.calls += 1
    t0 = time.perf_counter()
    workers = [
        t for t in guards.tools_now() or shown if t.name not in ("final_answer", "make_plan")
    ]
    res = decide(chat, msgs, shown, tool_choice="required", allowed=workers, **settings)
    step = dict(tokens=cost_of(res), seconds=time.perf_counter() - t0, raw=res.raw)
    if not res.tool_calls:
        rec.add("error", f"Error: {res.error}", ok=False, **step)
        msgs.append({"role": "assistant", "content": res.raw})
        return None
    c = replace(res.tool_calls[0], id=f"call_{rec.calls}")  # one call per plan step
    msgs.append(assistant_message("", [c]))
    if call_key(c) in guards.seen:  # the same call twice: reuse, do not run it again
        done = ToolResult(call=c, ok=False, content="Already done: see the result above.")
        msgs.append(tool_message(done))
        rec.add("tool", done.content, tool=c.name, arguments=c.arguments, ok=False, **step)
        return done
    return run_call(rec, guards.registry, c, guards.seen, msgs, **step)


def _final_answer(
    chat: Any, rec: RunRecord, guards: Guards, msgs: list[dict], shown: list[Tool], **settings: Any
) -> AgentRun:
    """The forced ``final_answer`` call that ends a plan (grounded: among the values found)."""
    rec.calls += 1
    t0 = time.perf_counter()
    final = guards.registry["final_answer"]
    if guards.grounded and guards.values:
        final = answer_tool(guards.values, final)
    res = decide(chat, msgs, shown, tool_choice=named("final_answer"), allowed=[final], **settings)
    step = dict(tokens=cost_of(res), seconds=time.perf_counter() - t0, raw=res.raw)
    if not res.tool_calls:
        rec.add("error", f"Error: {res.error}", ok=False, **step)
        return rec.finish("error", msgs)
    result = run_call(
        rec,
        guards.registry,
        replace(res.tool_calls[0], id=f"call_{rec.calls}"),
        guards.seen,
        msgs,
        **step,
    )
    return rec.finish(
        "answer" if result.ok else "error", msgs, result.content if result.ok else None
    )


def plan_and_execute(
    chat: Any,
    task: str,
    tools: Sequence[Tool],
    *,
    budget: Budget | None = None,
    max_plan_items: int = 3,
    max_tokens: int = 96,
    constrained: Any = True,
    system: str | None = None,
    on_step: Callable | None = None,
    allowed: Sequence[Tool] | None = None,
    grounded: bool = False,
    stop_at: Collection[str] = (),
    **_: Any,
) -> AgentRun:
    """Plan once (a forced ``make_plan`` call), one call per plan step, then ``final_answer``."""
    task, rec = check_task(task), RunRecord(budget=budget or Budget(), on_step=on_step)
    registry = with_final_answer(tools)
    guards = Guards(registry=registry, allowed=allowed, grounded=grounded, stop_at=stop_at)
    planner = plan_tool(max_plan_items, allowed)  # what the plan call may write
    # every call shows the loop's tools, then make_plan: one prompt, cached from the first call
    shown = [*registry.values(), plan_tool(max_plan_items)]
    ask = f"{task}\n\n{PLAN_INSTRUCTION}"
    msgs = [{"role": "system", "content": system or SYSTEM}, {"role": "user", "content": ask}]
    settings = dict(max_tokens=max_tokens, temperature=0.0, constrained=constrained)
    items = _make_the_plan(chat, rec, msgs, shown, planner, task, **settings)
    for i, item in enumerate(items, 1):
        if reason := rec.over_budget():
            return rec.finish(reason, msgs)
        msgs.append({"role": "user", "content": f"Do step {i} of the plan: {item}"})
        result = _do_step(chat, rec, guards, msgs, shown, **settings)
        if result is not None and result.ok:
            rec.answer = result.content
            guards.remember(result.content)
            if result.call.name in stop_at:
                return rec.finish("answer", msgs, result.content)
    if reason := rec.over_budget():
        return rec.finish(reason, msgs)
    msgs.append({"role": "user", "content": f"Now call final_answer with the answer to: {task}"})
    return _final_answer(chat, rec, guards, msgs, shown, **settings)


# --- reflection -------------------------------------------------------------------------------


def verdict(correct: bool, problem: str) -> str:
    """Judge the proposed answer to the question.

    Args:
        correct: true if the proposed answer is right and answers the question, else false.
        problem: What is wrong with the answer, in a few words ("" if nothing).
    """
    return "correct" if correct else f"wrong: {problem}"


CRITIC_SYSTEM = "You check answers carefully. Judge whether the proposed answer is correct."
PROBLEM_CHARS = 40  # the critique's "problem": a few words, not an essay


def verdict_tool() -> Tool:
    """``verdict`` with the problem bounded to ``PROBLEM_CHARS`` characters."""
    t = tool(verdict)
    t.parameters["properties"]["problem"]["maxLength"] = PROBLEM_CHARS
    return t


def _work(run: AgentRun) -> str:
    lines = [
        f"- {s.tool}({s.arguments}) -> {s.result[:200]}" for s in run.steps if s.kind == "tool"
    ]
    return "\n".join(lines) or "- (no tool was used)"


def critique(chat: Any, rec: RunRecord, task: str, draft: AgentRun, **settings: Any) -> dict:
    """One forced ``verdict`` call on ``draft``, recorded -> its arguments (correct, problem)."""
    rec.calls += 1
    t0 = time.perf_counter()
    question = f"Question: {task}\nWork so far:\n{_work(draft)}\nProposed answer: {draft.answer!r}"
    ask = [{"role": "system", "content": CRITIC_SYSTEM}, {"role": "user", "content": question}]
    critic = verdict_tool()
    res = decide(chat, ask, [critic], tool_choice=named("verdict"), **settings)
    args = res.tool_calls[0].arguments if res.tool_calls else {"correct": True, "problem": ""}
    rec.add(
        "critique",
        verdict(**args) if res.tool_calls else f"Error: {res.error}",
        tool="verdict",
        arguments=args,
        ok=bool(res.tool_calls),
        tokens=cost_of(res),
        seconds=time.perf_counter() - t0,
        raw=res.raw,
    )
    return args


def reflect(
    chat: Any,
    task: str,
    tools: Sequence[Tool],
    *,
    budget: Budget | None = None,
    max_tokens: int = 96,
    constrained: Any = True,
    on_step: Callable | None = None,
    draft: AgentRun | None = None,
    **kwargs: Any,
) -> AgentRun:
    """Draft with the loop, critique the draft (a forced ``verdict`` call), retry once if judged wrong.

    ``draft``: a finished loop run on this task (e.g. ``loop(...)``'s, same budget) to critique
    instead of running the loop again: greedy decoding would write the same draft. Its steps,
    tokens and seconds count in the result, as if run here. The retry shares the budget.
    """
    rec = RunRecord(budget=budget or Budget(), on_step=on_step)
    opts = dict(max_tokens=max_tokens, constrained=constrained, **kwargs)
    if draft is None:
        draft = run_agent(chat, task, tools, record=rec, **opts)
    else:
        rec = RunRecord.resume(draft, rec.budget, on_step)
    if reason := rec.over_budget():
        return rec.finish(reason, draft.messages, draft.answer)
    args = critique(
        chat, rec, task, draft, max_tokens=max_tokens, temperature=0.0, constrained=constrained
    )
    if args.get("correct", True) or (reason := rec.over_budget()):
        return rec.finish(reason or draft.stop_reason, draft.messages, draft.answer)
    note = (
        f"A reviewer says your answer {draft.answer!r} is wrong: {args.get('problem', '')}. "
        "Try again, then call final_answer."
    )
    retry = draft.messages + [{"role": "user", "content": note}]
    again = run_agent(chat, task, tools, record=rec, messages=retry, **opts)
    return rec.finish(again.stop_reason, again.messages, again.answer or draft.answer)


PATTERNS: dict[str, Callable[..., AgentRun]] = {
    "no_tools": no_tools,
    "loop": loop,
    "react": react,
    "plan_and_execute": plan_and_execute,
    "reflect": reflect,
}
