"""llmlab.tool_use.tools: schemas from functions (checked against transformers), the registry check, and
run_tool's promise: the model's mistakes come back as error results, never as a crash."""

from __future__ import annotations

import pytest

from llmlab.tool_use.tools import (
    Tool,
    ToolArgumentsError,
    ToolCall,
    check_arguments,
    check_tools,
    run_tool,
    tool,
)


def divide(a: float, b: float) -> float:
    """Divide one number by another.

    Args:
        a: The number to divide.
        b: The number to divide by.
    """
    return a / b


def greet(name: str, times: int = 1) -> dict:
    """Greet someone.

    Args:
        name: Who to greet.
        times: How many times.
    """
    return {"greeting": " ".join(["hello " + name] * times)}


def test_schema_from_a_function_is_the_expected_dict():
    t = tool(greet)
    assert t.name == "greet" and t.description == "Greet someone."
    assert t.parameters == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Who to greet."},
            "times": {"type": "integer", "description": "How many times."},
        },
        "required": ["name"],
    }
    assert t.spec() == {
        "type": "function",
        "function": {"name": "greet", "description": "Greet someone.", "parameters": t.parameters},
    }


def test_schema_matches_transformers_get_json_schema():
    from transformers.utils import get_json_schema

    reference = get_json_schema(divide)["function"]
    keys = ("name", "description", "parameters")
    assert tool(divide).spec()["function"] == {k: reference[k] for k in keys}


def test_decorator_forms_and_renaming():
    @tool
    def ping(host: str) -> str:
        """Ping a host.

        Args:
            host: The host.
        """
        return "pong " + host

    assert isinstance(ping, Tool) and ping("x") == "pong x"
    assert tool(name="calc")(divide).name == "calc"


def test_undocumented_argument_says_to_add_an_args_line():
    def f(a: int, b: int) -> int:
        """Add.

        Args:
            a: first.
        """
        return a + b

    with pytest.raises(ValueError, match=r"Args:"):
        tool(f)

    def untyped(a) -> int:
        """Echo.

        Args:
            a: the thing.
        """
        return a

    with pytest.raises(ValueError, match="type hint"):
        tool(untyped)


def test_check_tools_rejects_duplicates_non_tools_and_bad_names():
    t = tool(divide)
    assert list(check_tools([t, tool(greet)])) == ["divide", "greet"]
    with pytest.raises(ValueError, match="Two tools"):
        check_tools([t, tool(divide)])
    with pytest.raises(ValueError, match="not a Tool"):
        check_tools([divide])
    with pytest.raises(ValueError, match="Bad tool name"):
        check_tools(
            [Tool(name="has space", description="", parameters={"type": "object"}, fn=divide)]
        )


def test_check_arguments_quotes_the_problem():
    t = tool(divide)
    check_arguments(t, {"a": 1, "b": 2.5})
    with pytest.raises(ToolArgumentsError, match="'b' is a required property"):
        check_arguments(t, {"a": 1})
    with pytest.raises(ToolArgumentsError, match="is not of type 'number'"):
        check_arguments(t, {"a": "one", "b": 2})
    with pytest.raises(ToolArgumentsError, match="JSON object"):
        check_arguments(t, ["a", 1])


def test_run_tool_results_and_errors_never_raise():
    tools = [tool(divide), tool(greet)]
    ok = run_tool(tools, ToolCall(name="divide", arguments={"a": 6, "b": 3}))
    assert ok.ok and ok.content == "2.0"
    as_json = run_tool(tools, ToolCall(name="greet", arguments={"name": "Ada", "times": 2}))
    assert as_json.ok and as_json.content == '{"greeting": "hello Ada hello Ada"}'

    unknown = run_tool(tools, ToolCall(name="multiply", arguments={"a": 1}))
    assert not unknown.ok and "multiply" in unknown.content
    assert "divide" in unknown.content and "greet" in unknown.content

    bad_args = run_tool(tools, ToolCall(name="divide", arguments={"a": 1}))
    assert not bad_args.ok and "'b' is a required property" in bad_args.content

    crash = run_tool(tools, ToolCall(name="divide", arguments={"a": 1, "b": 0}))
    assert not crash.ok and crash.content.startswith("Error: ZeroDivisionError:")
    assert crash.call.name == "divide"


def test_long_results_are_cut_with_a_note():
    @tool
    def big(n: int) -> str:
        """Make text.

        Args:
            n: length.
        """
        return "x" * n

    r = run_tool([big], ToolCall(name="big", arguments={"n": 5000}), max_chars=100)
    assert r.ok and r.content.startswith("x" * 100) and "4900 more characters" in r.content
    with pytest.raises(ValueError, match="max_chars"):
        run_tool([big], ToolCall(name="big", arguments={"n": 1}), max_chars=0)
