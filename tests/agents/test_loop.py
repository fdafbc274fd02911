"""llmlab.agents.loop: the loop against a scripted fake chat (no model), then once on the real model."""

from __future__ import annotations

import json
import time

import pytest

from llmlab.agents.loop import ANSWER_NOW, run_agent, trim_messages
from llmlab.agents.run_record import AgentRun, Budget, RunRecord
from llmlab.chat.records import ChatResult, Usage
from llmlab.tool_use.calling import ToolChatResult
from llmlab.tool_use.text_format import ToolCallParseError, parse_tool_calls, render_messages
from llmlab.tool_use.tools import tool


def divide(a: float, b: float) -> float:
    """Divide a by b.

    Args:
        a: The dividend.
        b: The divisor.
    """
    return a / b


def echo(text: str) -> str:
    """Repeat the text.

    Args:
        text: What to repeat.
    """
    return text


def page(n: int) -> str:
    """Read page n of a long book.

    Args:
        n: The page number.
    """
    return str(n) * 400


TOOLS = [tool(divide), tool(echo), tool(page)]


def call(name: str, **arguments) -> str:
    return f'<tool_call>[{{"name": "{name}", "arguments": {json.dumps(arguments)}}}]</tool_call>'


class ScriptedChat:
    """A chat that replies from a script: same interface as ``complete_with_tools``, no model.

    It parses each reply like the unconstrained local backend and records what it was shown.
    """

    def __init__(
        self,
        replies: list[str],
        prompt_tokens: int = 100,
        delay: float = 0.0,
        fail: Exception | None = None,
    ) -> None:
        self.replies, self.prompt_tokens, self.delay, self.fail = (
            list(replies),
            prompt_tokens,
            delay,
            fail,
        )
        self.seen: list[list[dict]] = []
        self.choices: list = []  # the tool_choice of each call
        self.allowed: list = []  # the tools the decoder was allowed to write, each call
        self.shown: list = []  # the names of the tools in the prompt, each call

    def complete_with_tools(self, messages, tools, **kwargs) -> ToolChatResult:
        if self.fail is not None:
            raise self.fail
        time.sleep(self.delay)
        self.seen.append([dict(m) for m in messages])
        self.choices.append(kwargs.get("tool_choice"))
        self.allowed.append(kwargs.get("allowed"))
        self.shown.append([t.name for t in tools])
        raw = self.replies.pop(0) if self.replies else "I give up."
        try:
            text, calls = parse_tool_calls(raw)
            error = None
        except ToolCallParseError as exc:
            text, calls, error = raw, [], str(exc)
        usage = Usage(prompt_tokens=self.prompt_tokens, completion_tokens=10)
        return ToolChatResult(
            text=text,
            tool_calls=calls,
            usage=usage,
            finish_reason="tool_calls" if calls else "stop",
            prompt="",
            raw=raw,
            error=error,
        )

    def complete_batch(self, chats, max_tokens=256, **kwargs) -> list[ChatResult]:
        return [
            ChatResult(
                text=self.replies.pop(0),
                usage=Usage(prompt_tokens=self.prompt_tokens, completion_tokens=5),
                finish_reason="stop",
            )
            for _ in chats
        ]


def test_bad_task_and_tools():
    with pytest.raises(ValueError, match="task"):
        run_agent(ScriptedChat([]), "  ", TOOLS)
    with pytest.raises(ValueError, match="not a Tool"):
        run_agent(ScriptedChat([]), "q", [divide])


def test_tool_then_answer():
    chat, seen = ScriptedChat([call("divide", a=10, b=4), call("final_answer", answer="2.5")]), []
    run = run_agent(chat, "What is 10 / 4?", TOOLS, on_step=seen.append)
    assert (run.stop_reason, run.answer) == ("answer", "2.5")
    assert [s.kind for s in run.steps] == ["tool", "answer"] and seen == run.steps
    assert run.steps[0].result == "2.5" and run.tokens == 2 * 110 and run.n_steps == 2
    # the second model call saw the first call and its result, as a tool message
    second = chat.seen[1]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "divide"
    assert second[-1] == {
        "role": "tool",
        "tool_call_id": "call_1_0",
        "name": "divide",
        "content": "2.5",
    }
    rendered = render_messages(second, TOOLS)
    assert "<tool_response>\n2.5\n</tool_response>" in rendered[-1]["content"]
    assert json.loads(json.dumps(run.to_json()))["stop_reason"] == "answer"
    assert "divide" in run.trace()


def test_tool_exception_goes_back_to_the_model():
    chat = ScriptedChat([call("divide", a=1, b=0), call("final_answer", answer="undefined")])
    run = run_agent(chat, "1/0?", TOOLS)
    assert run.stop_reason == "answer" and not run.steps[0].ok
    assert chat.seen[1][-1]["content"].startswith("Error: ZeroDivisionError")


def test_unknown_tool_and_bad_arguments_are_results():
    chat = ScriptedChat(
        [call("multiply", a=1), call("divide", a="x", b=2), call("final_answer", answer="?")]
    )
    run = run_agent(chat, "q", TOOLS)
    assert [s.ok for s in run.steps] == [False, False, True] and run.stop_reason == "answer"
    assert "Available tools" in run.steps[0].result and "schema" in run.steps[1].result


def test_repeated_call_is_a_loop_with_partial_answer():
    chat = ScriptedChat([call("echo", text="hi"), call("echo", text="hi"), call("echo", text="x")])
    run = run_agent(chat, "q", TOOLS)
    assert run.stop_reason == "loop" and run.answer == "hi" and len(chat.seen) == 2
    assert run.steps[-1].kind == "error" and "already called" in run.steps[-1].result


def test_step_budget_stops_with_last_result():
    chat = ScriptedChat([call("echo", text=str(i)) for i in range(10)])
    run = run_agent(chat, "q", TOOLS, budget=Budget(max_steps=3))
    assert run.stop_reason == "max_steps" and run.answer == "2" and len(chat.seen) == 3


def test_token_budget_counts_prompt_and_completion():
    chat = ScriptedChat([call("echo", text=str(i)) for i in range(10)], prompt_tokens=990)
    run = run_agent(chat, "q", TOOLS, budget=Budget(max_tokens=2500))
    assert run.stop_reason == "max_tokens" and run.tokens == 3 * 1000 and run.answer == "2"


def test_time_budget():
    chat = ScriptedChat([call("echo", text=str(i)) for i in range(10)], delay=0.05)
    run = run_agent(chat, "q", TOOLS, budget=Budget(max_seconds=0.12))
    assert run.stop_reason == "max_seconds" and 2 <= len(chat.seen) <= 4 and run.answer


def test_parse_error_is_fed_back_and_the_model_can_recover():
    chat = ScriptedChat(
        [
            '<tool_call>[{"name": "echo", "arguments": {"text": "a',
            call("echo", text="b"),
            call("final_answer", answer="b"),
        ]
    )
    run = run_agent(chat, "q", TOOLS)
    assert [s.kind for s in run.steps] == [
        "error",
        "tool",
        "answer",
    ] and run.stop_reason == "answer"
    assert chat.seen[1][-1]["role"] == "user" and "cut off" in chat.seen[1][-1]["content"]


def test_auto_text_reply_is_the_answer_required_is_not():
    run = run_agent(
        ScriptedChat(["Thought: easy. Paris"]), "Capital of France?", TOOLS, tool_choice="auto"
    )
    assert (run.stop_reason, run.answer) == ("answer", "Thought: easy. Paris")
    run = run_agent(ScriptedChat(["Paris"] * 3), "q", TOOLS, budget=Budget(max_steps=2))
    assert run.stop_reason == "max_steps" and run.answer == "Paris"
    assert all(s.kind == "error" for s in run.steps)


def test_a_failing_chat_stops_with_error():
    run = run_agent(ScriptedChat([], fail=RuntimeError("server down")), "q", TOOLS)
    assert run.stop_reason == "error" and "server down" in run.steps[0].result and run.answer == ""


def test_old_tool_results_are_trimmed_to_fit_the_context():
    replies = [call("page", n=n) for n in range(1, 5)] + [call("final_answer", answer="4")]
    chat = ScriptedChat(replies)
    run = run_agent(chat, "q", TOOLS, context_tokens=700, max_tokens=50)
    assert run.stop_reason == "answer"
    last = chat.seen[-1]
    tools_seen = [m["content"] for m in last if m["role"] == "tool"]
    assert tools_seen[-1] == "4" * 400  # the newest result is whole
    assert tools_seen[0].startswith("[older result removed")
    assert len(json.dumps(last)) // 4 <= 650


def test_trim_messages_keeps_newest_and_stops_when_it_fits():
    msgs = [{"role": "user", "content": "q"}] + [{"role": "tool", "content": "x" * 100}] * 3
    count = lambda ms: sum(len(m["content"]) for m in ms)  # noqa: E731
    out, n = trim_messages(msgs, count, limit=280)
    assert n == 1 and out[1]["content"].startswith("[older") and out[2]["content"] == "x" * 100
    assert msgs[1]["content"] == "x" * 100  # the input is not modified


def test_run_agent_goes_on_with_a_given_record():
    rec = RunRecord(budget=Budget(max_steps=2))
    rec.calls = 1
    rec.add("tool", "searched already", tool="echo")
    chat = ScriptedChat([call("echo", text="a"), call("echo", text="b")])
    run = run_agent(chat, "q", TOOLS, record=rec)
    assert run.stop_reason == "max_steps" and len(chat.seen) == 1 and len(run.steps) == 2
    assert rec.stop_reason == "max_steps" and run.steps is rec.steps


def test_stop_at_ends_the_run_with_the_tool_result():
    chat = ScriptedChat([call("divide", a=10, b=4), call("final_answer", answer="x")])
    run = run_agent(chat, "10 / 4?", TOOLS, stop_at=("divide",))
    assert (run.stop_reason, run.answer, len(chat.seen)) == ("answer", "2.5", 1)


def test_allowed_goes_to_the_decoder_with_final_answer():
    chat = ScriptedChat([call("echo", text="a"), call("final_answer", answer="a")])
    run = run_agent(chat, "q", TOOLS, allowed=[tool(echo)])
    assert run.answer == "a"
    assert [[t.name for t in a] for a in chat.allowed] == [["echo", "final_answer"]] * 2
    plain = ScriptedChat([call("final_answer", answer="a")])
    run_agent(plain, "q", TOOLS)
    assert plain.allowed == [None]  # nothing narrowed: the decoder allows every tool shown


def test_grounded_final_answer_comes_after_a_result_and_is_one_of_its_values():
    chat = ScriptedChat(
        [call("echo", text="born 1852, died 1896"), call("final_answer", answer="1852")]
    )
    run = run_agent(chat, "When was she born?", TOOLS, grounded=True)
    assert (run.stop_reason, run.answer) == ("answer", "1852")
    first, second = ({t.name: t for t in a} for a in chat.allowed)
    assert "final_answer" not in first  # nothing returned yet: nothing to answer with
    enum = second["final_answer"].parameters["properties"]["answer"]["enum"]
    assert enum == ["born 1852, died 1896", "1852", "1896"]


def test_grounded_repeat_forces_final_answer_among_the_values():
    chat = ScriptedChat(
        [call("echo", text="1852"), call("echo", text="1852"), call("final_answer", answer="1852")]
    )
    run = run_agent(chat, "q", TOOLS, grounded=True)
    assert (run.stop_reason, run.answer) == ("answer", "1852")
    assert [s.kind for s in run.steps] == ["tool", "error", "answer"]
    assert chat.choices[2] == {"type": "function", "function": {"name": "final_answer"}}
    assert chat.seen[2][-1] == {
        "role": "tool",
        "tool_call_id": "call_2_0",
        "name": "echo",
        "content": ANSWER_NOW,
    }
    no_budget = ScriptedChat([call("echo", text="1852"), call("echo", text="1852")])
    run = run_agent(no_budget, "q", TOOLS, grounded=True, budget=Budget(max_steps=2))
    assert run.stop_reason == "loop" and run.answer == "1852"  # no call left to answer with


@pytest.mark.slow
def test_real_model_calculator_run(lm):
    from llmlab.agents.tasks import calculator_tool
    from llmlab.chat.local import LocalChat

    run = run_agent(
        LocalChat(lm),
        "What is 4817 * 29? Use the calculator.",
        [calculator_tool()],
        budget=Budget(max_steps=3),
    )
    assert (
        isinstance(run, AgentRun)
        and run.steps
        and run.stop_reason in ("answer", "max_steps", "loop")
    )
    assert run.steps[0].tool == "calculator" and run.steps[0].ok  # constrained: a valid call
    assert run.tokens > 0
