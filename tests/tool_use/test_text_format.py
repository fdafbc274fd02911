"""llmlab.tool_use.text_format: the text protocol round-trips, each parse failure has its reason, and the
rendered chat goes through the bundled template (which, given tools= directly, drops them)."""

from __future__ import annotations

import pytest

from llmlab.tool_use.text_format import (
    ToolCallParseError,
    format_tool_calls,
    parse_tool_calls,
    render_messages,
    tools_system_prompt,
)
from llmlab.tool_use.tools import ToolCall, tool


def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city.

    Args:
        city: The city name.
        unit: celsius or fahrenheit.
    """
    return f"18 degrees {unit} in {city}"


WEATHER = tool(get_weather)
CALL = {
    "id": "c1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "c1", "content": "18 degrees celsius in Paris"},
]


def test_round_trip_format_then_parse():
    calls = [
        ToolCall(name="get_weather", arguments={"city": "Zürich", "unit": "celsius"}),
        ToolCall(name="noop", arguments={}),
    ]
    text = format_tool_calls(calls)
    assert text.startswith("<tool_call>[") and text.endswith("]</tool_call>")
    assert parse_tool_calls(text) == ("", calls)
    assert parse_tool_calls("Let me check. " + text) == ("Let me check.", calls)


def test_single_object_list_and_plain_answers():
    one = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    assert parse_tool_calls(one)[1] == [ToolCall(name="get_weather", arguments={"city": "Oslo"})]
    assert parse_tool_calls("<tool_call>[]</tool_call>") == ("", [])
    assert parse_tool_calls("It is sunny.") == ("It is sunny.", [])
    # complete JSON, cut off just before the closing tag: still a call
    assert parse_tool_calls('<tool_call>[{"name": "a", "arguments": {}}]')[1] == [
        ToolCall(name="a", arguments={})
    ]


@pytest.mark.parametrize(
    "text, reason, words",
    [
        ("<tool_call>I will call the weather tool.</tool_call>", "no_json", "No JSON blob found"),
        ('<tool_call>[{"name": "get_weather", "arguments": {"city": "Par', "truncated", "cut off"),
        ("<tool_call>[{'name': 'get_weather'}]</tool_call>", "bad_json", "Could not parse"),
        ('<tool_call>[{"name": "a", "arguments": {"x": 1}]</tool_call>', "bad_json", "parse"),
        ('<tool_call>[{"tool": "get_weather"}]</tool_call>', "bad_shape", "wrong shape"),
        ('<tool_call>[{"name": "a", "arguments": "x=1"}]</tool_call>', "bad_shape", "wrong shape"),
        ("<tool_call>[1, 2]</tool_call>", "bad_shape", "wrong shape"),
    ],
)
def test_each_failure_has_its_reason(text, reason, words):
    with pytest.raises(ToolCallParseError, match=words) as info:
        parse_tool_calls(text)
    assert info.value.reason == reason and isinstance(info.value, ValueError)


def test_render_messages_puts_everything_in_plain_turns():
    out = render_messages(CHAT, tools=[WEATHER])
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"].startswith("Be brief.") and "<tools>" in out[0]["content"]
    assert out[2]["content"] == (
        '<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_call>'
    )
    assert out[3]["content"] == "<tool_response>\n18 degrees celsius in Paris\n</tool_response>"
    two = render_messages(CHAT + [{"role": "tool", "content": "more"}])
    assert two[-1]["content"].count("<tool_response>") == 2 and len(two) == 4
    assert render_messages(CHAT[1:2], tools=[WEATHER.spec()])[0]["role"] == "system"
    with pytest.raises(ValueError, match="role"):
        render_messages([{"role": "robot", "content": "hi"}])
    with pytest.raises(ValueError, match="not a tool"):
        tools_system_prompt(["get_weather"])


def test_rendered_chat_goes_through_the_bundled_template(lm):
    from llmlab.decoding.chat_template import encode_prompt

    text = lm.tokenizer.decode(encode_prompt(lm, render_messages(CHAT, tools=[WEATHER]), chat=True))
    marks = [text.index(s) for s in ("<tools>", "<tool_call>", "<tool_response>")]
    assert marks == sorted(marks) and '"name": "get_weather"' in text


def test_the_bundled_template_silently_drops_tools(lm):
    """The fact the lesson is built on: passing tools= to this template changes nothing."""
    apply = lm.tokenizer.apply_chat_template
    chat = CHAT[1:2]
    with_tools = apply(chat, tools=[WEATHER.spec()], tokenize=False, add_generation_prompt=True)
    assert with_tools == apply(chat, tokenize=False, add_generation_prompt=True)
    assert "get_weather" not in with_tools
    history = apply(CHAT[:3], tools=[WEATHER.spec()], tokenize=False)
    assert "get_weather" not in history and "Paris" in history  # the call itself is dropped too
    ids = lm.tokenizer("<tool_call>", add_special_tokens=False)["input_ids"]
    assert len(ids) == 5  # five ordinary tokens, not one special token
