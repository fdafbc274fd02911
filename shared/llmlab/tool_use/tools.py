"""Tools as data: a Python function becomes a name, a description and a JSON schema.

A model never runs code. It writes text naming a tool and its arguments; *your* program checks
that text and runs the function. This module is that program's half:

- ``tool(fn)`` (or ``@tool``): a typed function with a Google-style docstring -> ``Tool``, its
  schema built by ``transformers.utils.get_json_schema`` (the same one chat templates use).
  ``Tool.spec()`` is the OpenAI ``tools=[...]`` entry.
- ``ToolCall`` (what the model asked for) and ``ToolResult`` (the text it gets back).
- ``check_tools`` (the one registry check), ``check_arguments`` (jsonschema).
- ``run_tool``: runs a call and NEVER raises for the model's mistakes: an unknown tool, arguments
  failing the schema, an exception inside the tool all come back as ``ok=False`` results whose
  text says what went wrong and what to do, so the model can try again.

Leaves out: the text protocol (``llmlab.tool_use.text_format``), constrained decoding
(``llmlab.decoding.constraints``), sandboxing (a tool runs in this process with your permissions),
timeouts and async tools.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# OpenAI's rule for function names: letters, digits, "_" and "-", at most 64.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class Tool:
    """A function the model may call: ``parameters`` is the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict
    fn: Callable[..., Any]

    def spec(self) -> dict:
        """The OpenAI ``tools=[...]`` entry: ``{"type": "function", "function": {...}}``."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


@dataclass
class ToolCall:
    """What the model asked for: ``ToolCall("add", {"a": 2, "b": 3})``."""

    name: str
    arguments: dict
    id: str = ""


@dataclass
class ToolResult:
    """The outcome of one call. ``content`` is the text the model gets back (result or error)."""

    call: ToolCall
    ok: bool
    content: str


class ToolArgumentsError(ValueError):
    """The arguments of a call do not match the tool's schema."""


def _schema_of(fn: Callable[..., Any]) -> dict:
    """``get_json_schema(fn)``, its failures turned into a ValueError that says what to add."""
    from transformers.utils import get_json_schema

    try:
        return get_json_schema(fn)
    except Exception as e:  # transformers raises plain Exception subclasses
        fname = getattr(fn, "__name__", repr(fn))
        kind = type(e).__name__
        if "TypeHint" in kind:
            fix = "give every argument a type hint, e.g. `def f(city: str) -> str`."
        else:
            fix = (
                'write a Google-style docstring: a one-line description, then an "Args:" section '
                'with one line per argument, e.g. "    city: The city to look up."'
            )
        raise ValueError(f"Cannot build a tool schema for {fname}: {e}. To fix it, {fix}") from e


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """A ``Tool`` from a typed function with a Google-style docstring; also ``@tool`` or
    ``@tool(name="...")``.

    >>> def add(a: int, b: int) -> int:
    ...     '''Add two integers.
    ...
    ...     Args:
    ...         a: The first number.
    ...         b: The second number.
    ...     '''
    ...     return a + b
    >>> tool(add).parameters["required"]
    ['a', 'b']
    """
    if fn is None:
        return lambda f: tool(f, name=name)  # type: ignore[return-value]
    if isinstance(fn, Tool):
        raise ValueError(f"{fn.name!r} is already a Tool: use it as is.")
    if not callable(fn):
        raise ValueError(f"tool() needs a function, got {type(fn).__name__}.")
    function = _schema_of(fn)["function"]
    made = Tool(
        name=name or function["name"],
        description=function.get("description", ""),
        parameters=function.get("parameters", {"type": "object", "properties": {}}),
        fn=fn,
    )
    check_tools([made])
    return made


def check_tools(tools: Iterable[Tool] | Mapping[str, Tool]) -> dict[str, Tool]:
    """The tools by name, or a ValueError: not a Tool, a bad name, or two tools with one name."""
    if isinstance(tools, Tool):
        raise ValueError("Give a list of tools, e.g. [my_tool], not a single Tool.")
    items = list(tools.values()) if isinstance(tools, Mapping) else list(tools)
    by_name: dict[str, Tool] = {}
    for t in items:
        if not isinstance(t, Tool):
            raise ValueError(
                f"{t!r} is not a Tool: wrap the function with llmlab.tool_use.tools.tool(fn) "
                "(it needs type hints and a docstring with an Args: section)."
            )
        if not isinstance(t.name, str) or not NAME_PATTERN.match(t.name):
            raise ValueError(
                f"Bad tool name {t.name!r}: use 1-64 letters, digits, '_' or '-' (no spaces)."
            )
        if t.name in by_name:
            raise ValueError(f"Two tools are named {t.name!r}: give each tool its own name.")
        by_name[t.name] = t
    return by_name


def _where(error: Any) -> str:
    path = "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"arguments{path}: " if path else ""


def check_arguments(tool: Tool, arguments: Any) -> None:
    """Raise ``ToolArgumentsError`` (quoting the problem) if ``arguments`` fail the schema."""
    import jsonschema

    if not isinstance(arguments, dict):
        raise ToolArgumentsError(
            f"arguments for {tool.name!r} must be a JSON object like "
            f'{{"name": value}}, got {type(arguments).__name__} {arguments!r}.'
        )
    validator = jsonschema.Draft202012Validator(tool.parameters)
    errors = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if errors:
        problems = "; ".join(_where(e) + e.message for e in errors[:3])
        expected = json.dumps(tool.parameters.get("properties", {}), ensure_ascii=False)
        raise ToolArgumentsError(
            f"arguments for {tool.name!r} do not match its schema: {problems}. "
            f"Expected properties: {expected}."
        )


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # e.g. circular references
        return repr(value)


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n[... cut: {len(text) - max_chars} more characters]"


def run_tool(
    tools: Iterable[Tool] | Mapping[str, Tool], call: ToolCall, max_chars: int = 2000
) -> ToolResult:
    """Run ``call`` and return the text for the model; the model's mistakes never raise.

    Unknown tool -> ``ok=False`` listing the tools that exist; arguments failing the schema ->
    ``ok=False`` quoting the problem; an exception in the tool -> ``"Error: ZeroDivisionError:
    division by zero"``. A result that is not text is sent as JSON; long results are cut to
    ``max_chars`` with a note. (A bad *tools list* is your bug, not the model's: ValueError.)
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars <= 0:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}.")
    if not isinstance(call, ToolCall):
        raise ValueError(f"call must be a ToolCall(name, arguments), got {call!r}.")
    by_name = check_tools(tools)

    def fail(message: str) -> ToolResult:
        return ToolResult(call=call, ok=False, content=_cut("Error: " + message, max_chars))

    chosen = by_name.get(call.name)
    if chosen is None:
        names = ", ".join(by_name) or "(none)"
        return fail(
            f"there is no tool named {call.name!r}. Available tools: {names}. "
            "Call one of these by its exact name."
        )
    try:
        check_arguments(chosen, call.arguments)
    except ToolArgumentsError as e:
        return fail(f"{e} Fix the arguments and call {call.name!r} again.")
    try:
        value = chosen.fn(**call.arguments)
    except Exception as e:  # the tool's own bug or a bad value: reported to the model
        return fail(f"{type(e).__name__}: {e}")
    return ToolResult(call=call, ok=True, content=_cut(_as_text(value), max_chars))
