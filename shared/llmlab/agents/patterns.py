"""Agent patterns, each built on the same loop pieces and each returning an ``AgentRun``.

So they can be compared on the same tasks with the same budget:

- ``no_tools``: the baseline. The question, one answer, no loop (``no_tools_batch``: many
  questions in one batch through ``chat.complete_batch``).
- ``loop``: ``llmlab.agents.loop.run_agent`` as it is: every reply is a (constrained) tool call.
- ``react``: reason + act (Yao et al., 2022): before each call the model writes one short
  thought (``run_agent(..., think_tokens=...)``), then acts. Twice the model calls per step.
- ``plan_and_execute``: one constrained ``make_plan`` call (a list of at most 3 steps), then
  one constrained call per plan step, then a forced ``final_answer``. The plan is fixed: no
  re-planning when a step fails.
- ``reflect``: run the loop (or take its finished run: ``draft=``), then a constrained
  self-critique (``verdict(correct, problem)``); if the model judges its answer wrong, one
  retry with the critique in the chat.

Leaves out: re-planning, multi-agent set-ups, tree search, voting over samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from llmlab.agents.loop import (
    FINAL_ANSWER,
    AgentRun,
    AgentStep,
    Budget,
    assistant_message,
    call_key,
    check_task,
    decide,
    over_budget,
    run_agent,
    tool_message,
)
from llmlab.tool_use.tools import Tool, check_tools, run_tool, tool

NO_TOOLS_SYSTEM = "Answer the question. Reply with the answer only: a number, a year or a name."


# --- the baseline -----------------------------------------------------------------------------


def _baseline_run(task: str, result: Any, seconds: float, system: str) -> AgentRun:
    cost = result.usage.prompt_tokens + result.usage.completion_tokens
    step = AgentStep(1, "answer", None, None, result.text.strip(), True, cost, seconds, result.text)
    msgs = [
        {"role": "system", "content": system},
        {"role": "user", "content": task},
        {"role": "assistant", "content": result.text},
    ]
    return AgentRun(result.text.strip(), [step], "answer", cost, seconds, msgs)


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


def plan_tool(max_items: int = 3) -> Tool:
    """``make_plan`` with 1 to ``max_items`` steps of at most 60 characters each."""
    t = tool(make_plan)
    t.parameters["properties"]["steps"].update(minItems=1, maxItems=max_items)
    t.parameters["properties"]["steps"]["items"]["maxLength"] = 60
    return t


PLAN_SYSTEM = (
    "Plan how to answer the question with the tools below. Do not answer yet: list "
    "the tool calls to make, one per step (usually one step is enough)."
)


class _Run:
    """Book-keeping shared by the multi-call patterns: steps, tokens, time, budget."""

    def __init__(self, budget: Budget, on_step: Callable | None) -> None:
        self.budget, self.on_step = budget, on_step
        self.steps: list[AgentStep] = []
        self.calls, self.tokens, self.start, self.partial = 0, 0, time.perf_counter(), ""

    def call(
        self,
        chat: Any,
        msgs: list[dict],
        tools: list[Tool],
        choice: Any,
        max_tokens: int,
        constrained: Any,
    ) -> tuple[Any, float]:
        self.calls += 1
        t0 = time.perf_counter()
        res = decide(
            chat,
            msgs,
            tools,
            tool_choice=choice,
            max_tokens=max_tokens,
            temperature=0.0,
            constrained=constrained,
        )
        self.tokens += res.usage.prompt_tokens + res.usage.completion_tokens
        return res, time.perf_counter() - t0

    def add(self, step: AgentStep) -> None:
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)

    def over(self) -> str | None:
        return over_budget(self.budget, self.calls, self.tokens, self.start)

    def done(self, reason: str, msgs: list[dict], answer: str | None = None) -> AgentRun:
        return AgentRun(
            self.partial if answer is None else answer,
            self.steps,
            reason,
            self.tokens,
            time.perf_counter() - self.start,
            msgs,
        )


def _named(name: str) -> dict:
    return {"type": "function", "function": {"name": name}}


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
    **_: Any,
) -> AgentRun:
    """Plan once (a forced ``make_plan`` call), one call per plan step, then ``final_answer``."""
    task, run = check_task(task), _Run(budget or Budget(), on_step)
    registry = check_tools(tools)
    final = registry.get("final_answer", FINAL_ANSWER)
    workers = [t for t in registry.values() if t.name != "final_answer"]
    planner = plan_tool(max_plan_items)
    head = (system + "\n\n") if system else ""
    msgs = [{"role": "system", "content": head + PLAN_SYSTEM}, {"role": "user", "content": task}]
    res, secs = run.call(
        chat, msgs, [planner] + workers, _named("make_plan"), max_tokens, constrained
    )
    cost = res.usage.prompt_tokens + res.usage.completion_tokens
    items = res.tool_calls[0].arguments.get("steps", []) if res.tool_calls else []
    items = [s for s in items if isinstance(s, str)] or [task]  # no usable plan: one step, the task
    msgs.append(
        assistant_message("", [replace(res.tool_calls[0], id="plan")] if res.tool_calls else [])
    )
    msgs.append(
        {"role": "tool", "tool_call_id": "plan", "name": "make_plan", "content": make_plan(items)}
    )
    run.add(
        AgentStep(
            run.calls,
            "plan",
            "make_plan",
            {"steps": items},
            make_plan(items),
            bool(res.tool_calls),
            cost,
            secs,
            res.raw,
        )
    )
    seen: set = set()
    for i, item in enumerate(items, 1):
        if reason := run.over():
            return run.done(reason, msgs)
        msgs.append({"role": "user", "content": f"Do step {i} of the plan: {item}"})
        res, secs = run.call(chat, msgs, workers, "required", max_tokens, constrained)
        cost = res.usage.prompt_tokens + res.usage.completion_tokens
        if not res.tool_calls:
            run.add(
                AgentStep(
                    run.calls,
                    "error",
                    None,
                    None,
                    f"Error: {res.error}",
                    False,
                    cost,
                    secs,
                    res.raw,
                )
            )
            msgs.append({"role": "assistant", "content": res.raw})
            continue
        c = replace(res.tool_calls[0], id=f"call_{run.calls}")  # one call per plan step
        msgs.append(assistant_message("", [c]))
        if call_key(c) in seen:  # the same call twice: reuse, do not run it again
            result_text, ok = "Already done: see the result above.", False
        else:
            seen.add(call_key(c))
            result = run_tool(registry, c)
            result_text, ok = result.content, result.ok
            if ok:
                run.partial = result_text
        msgs.append({"role": "tool", "tool_call_id": c.id, "name": c.name, "content": result_text})
        run.add(
            AgentStep(run.calls, "tool", c.name, c.arguments, result_text, ok, cost, secs, res.raw)
        )
    if reason := run.over():
        return run.done(reason, msgs)
    msgs.append({"role": "user", "content": f"Now call final_answer with the answer to: {task}"})
    res, secs = run.call(chat, msgs, [final], _named(final.name), max_tokens, constrained)
    cost = res.usage.prompt_tokens + res.usage.completion_tokens
    if not res.tool_calls:
        run.add(
            AgentStep(
                run.calls, "error", None, None, f"Error: {res.error}", False, cost, secs, res.raw
            )
        )
        return run.done("error", msgs)
    c = replace(res.tool_calls[0], id=f"call_{run.calls}")
    result = run_tool([final], c)
    msgs += [assistant_message("", [c]), tool_message(result)]
    run.add(
        AgentStep(
            run.calls,
            "answer" if result.ok else "error",
            c.name,
            c.arguments,
            result.content,
            result.ok,
            cost,
            secs,
            res.raw,
        )
    )
    return run.done("answer" if result.ok else "error", msgs, result.content if result.ok else None)


# --- reflection -------------------------------------------------------------------------------


def verdict(correct: bool, problem: str) -> str:
    """Judge the proposed answer to the question.

    Args:
        correct: true if the proposed answer is right and answers the question, else false.
        problem: What is wrong with the answer, in a few words ("" if nothing).
    """
    return "correct" if correct else f"wrong: {problem}"


CRITIC_SYSTEM = "You check answers carefully. Judge whether the proposed answer is correct."


def _work(run: AgentRun) -> str:
    lines = [
        f"- {s.tool}({s.arguments}) -> {s.result[:200]}" for s in run.steps if s.kind == "tool"
    ]
    return "\n".join(lines) or "- (no tool was used)"


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
    tokens and seconds count in the result, as if run here.
    """
    budget = budget or Budget()
    opts = dict(max_tokens=max_tokens, constrained=constrained, on_step=on_step, **kwargs)
    if draft is None:
        draft = run_agent(chat, task, tools, budget=budget, **opts)
    run = _Run(budget, on_step)
    run.steps, run.calls, run.tokens, run.partial = (
        list(draft.steps),
        draft.n_steps,
        draft.tokens,
        draft.answer,
    )
    run.start -= draft.seconds
    if reason := run.over():
        return run.done(reason, draft.messages, draft.answer)
    ask = [
        {"role": "system", "content": CRITIC_SYSTEM},
        {
            "role": "user",
            "content": f"Question: {task}\nWork so far:\n{_work(draft)}\n"
            f"Proposed answer: {draft.answer!r}",
        },
    ]
    critic = tool(verdict)
    res, secs = run.call(chat, ask, [critic], _named("verdict"), max_tokens, constrained)
    args = res.tool_calls[0].arguments if res.tool_calls else {"correct": True, "problem": ""}
    cost = res.usage.prompt_tokens + res.usage.completion_tokens
    run.add(
        AgentStep(
            run.calls,
            "critique",
            "verdict",
            args,
            verdict(**args) if res.tool_calls else f"Error: {res.error}",
            bool(res.tool_calls),
            cost,
            secs,
            res.raw,
        )
    )
    if args.get("correct", True):
        return run.done(draft.stop_reason, draft.messages, draft.answer)
    if reason := run.over():
        return run.done(reason, draft.messages, draft.answer)
    left = Budget(
        budget.max_steps - run.calls,
        budget.max_tokens - run.tokens,
        max(budget.max_seconds - (time.perf_counter() - run.start), 1e-6),
    )
    retry_msgs = draft.messages + [
        {
            "role": "user",
            "content": (
                f"A reviewer says your answer {draft.answer!r} is wrong: {args.get('problem', '')}. "
                "Try again, then call final_answer."
            ),
        }
    ]
    again = run_agent(chat, task, tools, budget=left, messages=retry_msgs, **opts)
    offset = run.calls
    run.steps += [replace(s, index=s.index + offset) for s in again.steps]
    run.tokens += again.tokens
    return run.done(again.stop_reason, again.messages, again.answer or draft.answer)


PATTERNS: dict[str, Callable[..., AgentRun]] = {
    "no_tools": no_tools,
    "loop": loop,
    "react": react,
    "plan_and_execute": plan_and_execute,
    "reflect": reflect,
}
