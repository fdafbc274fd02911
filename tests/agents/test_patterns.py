"""llmlab.agents.patterns on a scripted fake chat (tests/agents/test_loop.py), then once on the real model."""

from __future__ import annotations

import re

import pytest

from llmlab.agents.loop import ACT
from llmlab.agents.patterns import (
    PATTERNS,
    PLAN_ITEM_CHARS,
    loop,
    no_tools,
    no_tools_batch,
    plan_and_execute,
    plan_tool,
    react,
    reflect,
)
from llmlab.agents.run_record import Budget
from llmlab.agents.tasks import copying_tools
from tests.agents.test_loop import TOOLS, ScriptedChat, call

NAMED = {"type": "function", "function": {"name": "make_plan"}}


def test_no_tools_is_one_batched_call_per_task():
    runs = no_tools_batch(ScriptedChat(["42", "1999"]), ["6 x 7?", "When?"])
    assert [r.answer for r in runs] == ["42", "1999"] and all(len(r.steps) == 1 for r in runs)
    assert runs[0].tokens == 105 and runs[0].stop_reason == "answer"
    assert no_tools(ScriptedChat(["7"]), "q").answer == "7"
    with pytest.raises(ValueError, match="task"):
        no_tools_batch(ScriptedChat(["x"]), [""])


def test_react_thinks_then_acts_each_step():
    chat = ScriptedChat(
        [
            "I should divide.",
            call("divide", a=9, b=3),
            "I have it.",
            call("final_answer", answer="3"),
        ]
    )
    run = react(chat, "9 / 3?", TOOLS)
    assert (run.stop_reason, run.answer) == ("answer", "3") and len(run.steps) == 2
    assert chat.choices == ["none", "required"] * 2  # a text-only thought, then a call
    assert chat.seen[1][-2:] == [
        {"role": "assistant", "content": "I should divide."},
        {"role": "user", "content": ACT},
    ]
    assert run.steps[0].tokens == 2 * 110 and run.steps[0].raw.startswith("I should divide.")
    assert run.messages[2]["content"] == "I should divide."  # the thought stays in the history


def test_plan_and_execute_plans_executes_and_answers():
    chat = ScriptedChat(
        [
            '<tool_call>[{"name": "make_plan", "arguments": {"steps": ["divide 9 by 3", '
            '"divide 9 by 3 again"]}}]</tool_call>',
            call("divide", a=9, b=3),
            call("divide", a=9, b=3),
            call("final_answer", answer="3"),
        ]
    )
    run = plan_and_execute(chat, "9 / 3?", TOOLS)
    assert [s.kind for s in run.steps] == ["plan", "tool", "tool", "answer"]
    assert (run.stop_reason, run.answer) == ("answer", "3")
    assert chat.choices[0] == NAMED and chat.choices[1:3] == ["required"] * 2
    assert chat.choices[3]["function"]["name"] == "final_answer"
    assert run.steps[2].result.startswith("Already done") and not run.steps[2].ok  # not rerun
    assert "Do step 2 of the plan: divide 9 by 3 again" in [m["content"] for m in run.messages]


def test_plan_and_execute_respects_the_step_budget():
    chat = ScriptedChat(
        [
            '<tool_call>[{"name": "make_plan", "arguments": {"steps": ["a", "b", "c"]}}]'
            "</tool_call>",
            call("echo", text="one"),
            call("echo", text="two"),
        ]
    )
    run = plan_and_execute(chat, "q", TOOLS, budget=Budget(max_steps=2))
    assert run.stop_reason == "max_steps" and run.answer == "one" and len(chat.seen) == 2


def plan(*steps: str) -> str:
    items = ", ".join(f'"{s}"' for s in steps)
    return f'<tool_call>[{{"name": "make_plan", "arguments": {{"steps": [{items}]}}}}]</tool_call>'


def test_plan_steps_copy_the_allowed_tools_or_stay_short():
    items = plan_tool(2, copying_tools("What is 142 × 366?")).parameters["properties"]["steps"]
    assert items["maxItems"] == 2
    pattern = items["items"]["pattern"]
    for good in ("calculator: 142 × 366", "wiki_lookup: What is"):
        assert re.fullmatch(pattern, good), good
    for bad in ("1.1.1.1.1.1", "calculator: 51972 - 1", "search: 142"):
        assert not re.fullmatch(pattern, bad), bad
    assert plan_tool().parameters["properties"]["steps"]["items"]["maxLength"] == PLAN_ITEM_CHARS


def test_plan_and_execute_shows_one_prompt_and_narrows_each_call():
    chat = ScriptedChat(
        [
            plan("echo: year", "echo: year"),
            call("echo", text="year 1852"),
            call("final_answer", answer="1852"),
        ]
    )
    run = plan_and_execute(chat, "When?", TOOLS, grounded=True)
    assert (run.stop_reason, run.answer) == ("answer", "1852")
    assert [s.kind for s in run.steps] == ["plan", "tool", "answer"]  # the repeated step: dropped
    assert all(names == chat.shown[0] for names in chat.shown)  # one prompt, cached
    assert [[t.name for t in a] for a in chat.allowed] == [
        ["make_plan"],
        ["divide", "echo", "page"],
        ["final_answer"],
    ]
    enum = chat.allowed[2][0].parameters["properties"]["answer"]["enum"]
    assert enum == ["year 1852", "1852"]


def test_plan_and_execute_stops_at_a_stop_at_tool():
    chat = ScriptedChat([plan("divide 9 by 3"), call("divide", a=9, b=3)])
    run = plan_and_execute(chat, "9 / 3?", TOOLS, stop_at=("divide",))
    assert (run.stop_reason, run.answer, len(chat.seen)) == ("answer", "3.0", 2)


def verdict(correct: bool, problem: str = "") -> str:
    return f'<tool_call>[{{"name": "verdict", "arguments": {{"correct": {str(correct).lower()}, "problem": "{problem}"}}}}]</tool_call>'


def test_reflect_keeps_an_approved_draft():
    chat = ScriptedChat([call("divide", a=9, b=3), call("final_answer", answer="3"), verdict(True)])
    run = reflect(chat, "9 / 3?", TOOLS)
    assert [s.kind for s in run.steps] == ["tool", "answer", "critique"] and run.answer == "3"
    assert "divide" in chat.seen[2][1]["content"] and "'3'" in chat.seen[2][1]["content"]
    assert run.tokens == 3 * 110


def test_reflect_critiques_a_given_draft_without_running_the_loop_again():
    draft = loop(
        ScriptedChat([call("divide", a=9, b=3), call("final_answer", answer="3")]), "9 / 3?", TOOLS
    )
    chat = ScriptedChat([verdict(True)])
    run = reflect(chat, "9 / 3?", TOOLS, draft=draft)
    assert len(chat.seen) == 1  # one model call: the critique
    assert [s.kind for s in run.steps] == ["tool", "answer", "critique"] and run.answer == "3"
    assert run.tokens == 3 * 110 and run.seconds >= draft.seconds  # the draft's cost counts


def test_reflect_retries_once_when_the_critic_objects():
    chat = ScriptedChat(
        [
            call("final_answer", answer="4"),
            verdict(False, "not computed"),
            call("divide", a=9, b=3),
            call("final_answer", answer="3"),
        ]
    )
    run = reflect(chat, "9 / 3?", TOOLS)
    assert [s.kind for s in run.steps] == ["answer", "critique", "tool", "answer"]
    assert (run.answer, run.stop_reason) == ("3", "answer")
    assert [s.index for s in run.steps] == [1, 2, 3, 4]
    assert "reviewer says your answer '4' is wrong: not computed" in chat.seen[2][-1]["content"]


def test_reflect_budget_is_shared_with_the_retry():
    chat = ScriptedChat(
        [
            call("final_answer", answer="4"),
            verdict(False, "x"),
            call("echo", text="a"),
            call("echo", text="b"),
        ]
    )
    run = reflect(chat, "q", TOOLS, budget=Budget(max_steps=3))
    assert run.stop_reason == "max_steps" and len(chat.seen) == 3


def test_every_pattern_is_registered():
    assert set(PATTERNS) == {"no_tools", "loop", "react", "plan_and_execute", "reflect"}


@pytest.mark.slow
def test_plan_and_execute_on_the_real_model(lm):
    from llmlab.agents.tasks import SYSTEM, load_tasks, task_tools
    from llmlab.chat.local import LocalChat
    from llmlab.decoding.prompt_cache import PromptCache

    task = load_tasks(1)[0]
    run = plan_and_execute(
        LocalChat(lm, prompt_cache=PromptCache()),
        task.question,
        task_tools(),
        system=SYSTEM,
        budget=Budget(max_steps=3),
    )
    assert run.steps[0].kind == "plan" and run.steps[0].ok  # the forced plan call always parses
    assert run.stop_reason in ("answer", "max_steps") and run.tokens > 0
