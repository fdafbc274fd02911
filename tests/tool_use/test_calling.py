"""llmlab.tool_use.calling: the bundled model under constraints, and an OpenAI server (a fake one)."""

from __future__ import annotations

import pytest

import llmlab.tool_use.calling as tool_calling
from llmlab.chat.local import LocalChat
from llmlab.chat.openai_backend import OpenAIChat
from llmlab.decoding.generation import Generation
from llmlab.tool_use.calling import complete_with_tools
from llmlab.tool_use.tools import ToolCall, check_arguments, tool
from tests.doubles import FakeOpenAIServer, add


def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: The name of the city.
    """
    return f"Sunny in {city}"


TOOLS = [tool(get_weather), tool(add)]
WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]
SUM = [{"role": "user", "content": "What is 12 + 30?"}]
NAMED_ADD = {"type": "function", "function": {"name": "add"}}


@pytest.fixture(scope="module")
def chat(lm):
    return LocalChat(lm)


# --- the bundled model --------------------------------------------------------------------------


def test_required_call_is_valid_and_runnable(chat):
    res = complete_with_tools(chat, WEATHER, TOOLS, tool_choice="required", max_tokens=40)
    assert res.finish_reason == "tool_calls" and res.error is None
    assert res.raw.startswith("<tool_call>[") and res.raw.endswith("</tool_call>")
    (call,) = res.tool_calls
    assert call.name in {"get_weather", "add"} and call.id == "call_0"
    check_arguments(TOOLS[[t.name for t in TOOLS].index(call.name)], call.arguments)
    assert "<tools>" in res.prompt and res.prompt.endswith("<|im_start|>assistant\n")
    assert res.usage.completion_tokens == len(res.steps)


def test_named_tool_is_forced_even_against_the_question(chat):
    res = complete_with_tools(chat, WEATHER, TOOLS, tool_choice=NAMED_ADD, max_tokens=40)
    assert [c.name for c in res.tool_calls] == ["add"]
    check_arguments(TOOLS[1], res.tool_calls[0].arguments)  # valid, though it makes no sense


@pytest.mark.slow
def test_regex_mode_writes_the_same_tokens_as_llguidance(chat):
    a = complete_with_tools(
        chat, SUM, TOOLS, tool_choice="required", max_tokens=40, constrained="regex"
    )
    b = complete_with_tools(
        chat, SUM, TOOLS, tool_choice="required", max_tokens=40, constrained="llguidance"
    )
    assert a.raw == b.raw and a.tool_calls == b.tool_calls and a.tool_calls


def test_forcing_writes_the_same_call_in_fewer_passes(chat, monkeypatch):
    """constrained=True (forcing): forced text in canonical tokens, several per forward pass."""
    import llmlab.decoding.fast_generation

    passes, forward = [], llmlab.decoding.fast_generation.cached_forward
    monkeypatch.setattr(
        llmlab.decoding.fast_generation,
        "cached_forward",
        lambda *a, **k: passes.append(1) or forward(*a, **k),
    )
    runs = {}
    for mode in ("llguidance", True):
        passes.clear()
        res = complete_with_tools(
            chat, SUM, TOOLS, tool_choice="required", max_tokens=40, constrained=mode
        )
        runs[mode] = (res, len(passes))
    (plain, n_plain), (forced, n_forced) = runs["llguidance"], runs[True]
    assert forced.raw == plain.raw and forced.tool_calls == plain.tool_calls  # same call ...
    assert n_forced < 0.7 * n_plain  # ... in far fewer forward passes (here about half)


def test_auto_and_none_let_the_model_answer_in_text(chat):
    free = complete_with_tools(
        chat, SUM, TOOLS, tool_choice="auto", max_tokens=12, constrained=False
    )
    auto = complete_with_tools(chat, SUM, TOOLS, tool_choice="auto", max_tokens=12)
    assert auto.raw == free.raw  # the model did not start a call: "auto" changed nothing
    assert "<tool_call>" not in auto.raw and auto.tool_calls == []
    assert auto.finish_reason in ("stop", "length") and auto.error is None
    none = complete_with_tools(chat, SUM, TOOLS, tool_choice="none", max_tokens=12)
    assert none.tool_calls == [] and none.text == none.raw


def _canned(text: str, stop_reason: str):
    def fake_generate(lm, prompt, **kwargs):
        assert kwargs["constraint"] is None  # unconstrained mode
        return Generation(
            token_ids=[5] * 7, text=text, steps=[], prompt_ids=[1] * 30, stop_reason=stop_reason
        )

    return fake_generate


@pytest.mark.parametrize(
    ("text", "stop_reason", "reason", "finish"),
    [
        ('<tool_call>[{"name": "add", "arguments": {"a": 1', "length", "truncated", "length"),
        ("<tool_call>add(1, 2)</tool_call>", "eos", "no_json", "stop"),
        ("I think it is 42.", "eos", "required a tool call", "stop"),
    ],
)
def test_unconstrained_errors_come_back_in_error(
    chat, monkeypatch, text, stop_reason, reason, finish
):
    monkeypatch.setattr(tool_calling, "fast_generate", _canned(text, stop_reason))
    res = complete_with_tools(chat, SUM, TOOLS, tool_choice="required", constrained=False)
    assert reason in res.error
    assert res.tool_calls == [] and res.raw == text and res.finish_reason == finish
    assert (res.usage.prompt_tokens, res.usage.completion_tokens) == (30, 7)


def test_bad_input(chat):
    with pytest.raises(ValueError, match="not among the tools"):
        complete_with_tools(chat, SUM, TOOLS, tool_choice={"function": {"name": "mul"}})
    with pytest.raises(ValueError, match="constrained must be"):
        complete_with_tools(chat, SUM, TOOLS, constrained="outlines")
    with pytest.raises(ValueError, match="max_tokens"):
        complete_with_tools(chat, SUM, TOOLS, max_tokens=0)
    with pytest.raises(ValueError, match="role 'robot'"):
        complete_with_tools(chat, [{"role": "robot", "content": "hi"}], TOOLS)
    with pytest.raises(ValueError, match="LocalChat or OpenAIChat"):
        complete_with_tools("gpt", SUM, TOOLS)


# --- an OpenAI-compatible server (fake, on 127.0.0.1) ------------------------------------------


def call_add(body: dict) -> dict:
    """The fake server's reply: a call of ``add`` (its arguments broken if the user says "broken"),
    or text when ``tool_choice`` is "none"."""
    if body.get("tool_choice") == "none":
        return {"role": "assistant", "content": "It is sunny."}
    broken = "broken" in body["messages"][-1]["content"]
    args = "{not json" if broken else '{"a": 12, "b": 30}'
    function = {"name": "add", "arguments": args}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_abc", "type": "function", "function": function}],
    }


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer(call_add, usage=(50, 9)) as fake:
        yield fake


def test_openai_backend_sends_tools_and_maps_tool_calls(server):
    remote = OpenAIChat(server.url, api_key="sk-test", model="fake-model")
    history = SUM + [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [ToolCall(name="add", arguments={"a": 1, "b": 2}, id="c1")],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
        {"role": "user", "content": "And 12 + 30?"},
    ]
    res = complete_with_tools(remote, history, TOOLS, tool_choice=NAMED_ADD, max_tokens=20)
    assert res.tool_calls == [ToolCall(name="add", arguments={"a": 12, "b": 30}, id="call_abc")]
    assert res.finish_reason == "tool_calls" and res.error is None and res.prompt == ""
    assert (res.usage.prompt_tokens, res.usage.completion_tokens) == (50, 9)
    sent = server.requests[-1]
    assert sent["tools"] == [t.spec() for t in TOOLS] and sent["tool_choice"] == NAMED_ADD
    assert sent["messages"][1]["tool_calls"][0]["function"] == {
        "name": "add",
        "arguments": '{"a": 1, "b": 2}',
    }  # the wire format: a JSON string
    assert sent["messages"][2] == history[2]

    broken = complete_with_tools(remote, [{"role": "user", "content": "broken"}], TOOLS)
    assert broken.tool_calls == [] and "bad_json" in broken.error
    text = complete_with_tools(remote, SUM, TOOLS, tool_choice="none")
    assert (text.text, text.tool_calls, text.finish_reason) == ("It is sunny.", [], "stop")
