"""Tool calls as a language: what a constrained decoder keeps the model's answer inside.

- ``chosen_tools(tools, tool_choice)``: the functions a call may name under ``tool_choice``
  "auto" (text, or a call), "required", "none" (text only) or ``{"type": "function",
  "function": {"name": ...}}``.
- ``tool_call_schema`` / ``tool_call_grammar`` / ``tool_call_regex``: the language of
  ``<tool_call>[{"name": ..., "arguments": {...}}]</tool_call>`` under ``tool_choice``: as a JSON
  schema, as a Lark grammar for llguidance (``llmlab.decoding.constraints.GrammarConstraint``) and as one
  regex for the hand-written ``RegexConstraint``. JSON is laid out like ``json.dumps`` (", " and
  ": ") in both, so both engines accept exactly the same texts.
- ``json_schema_regex``: a small JSON schema -> regex.

Leaves out: string ``pattern``/``format`` and number bounds in the regex compiler (llguidance
handles them), ``$ref`` and recursive schemas.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmlab.decoding.constraints import ConstraintError, json_rule
from llmlab.tool_use.text_format import TOOL_CALL_CLOSE, TOOL_CALL_OPEN

if TYPE_CHECKING:
    from llmlab.tool_use.tools import Tool

NO_CALL_TEXT = r"(?:(?!<tool_call>)[\s\S])*"  # any text that never writes "<tool_call>"
_STRING = r'"(?:[^"\\\x00-\x1f\x7f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_INTEGER = r"-?(?:0|[1-9][0-9]*)"
_NUMBER = _INTEGER + r"(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_NOTES = {"description", "title", "default", "examples", "$schema", "$comment"}  # ignored keys


# --- tool calls as a language ------------------------------------------------------------------


def _function(t: Tool | dict) -> dict:
    """{"name", "parameters"} of a Tool or an OpenAI tool spec."""
    if hasattr(t, "spec"):
        return t.spec()["function"]
    if isinstance(t, dict) and isinstance(t.get("function"), dict):
        return t["function"]
    if isinstance(t, dict) and "name" in t:
        return t
    raise ValueError(
        f"{t!r} is not a tool: give llmlab.tool_use.tools.Tool objects or OpenAI tool specs."
    )


def chosen_tools(tools: Sequence[Tool | dict], tool_choice: Any = "auto") -> list[dict]:
    """The functions a call may name under ``tool_choice`` ([] for "none")."""
    functions = [_function(t) for t in tools]
    if not functions:
        raise ValueError("tools is empty: give at least one tool.")
    if tool_choice in ("auto", "required"):
        return functions
    if tool_choice == "none":
        return []
    name = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    if name is None:
        raise ValueError(
            'tool_choice must be "auto", "required", "none" or '
            f'{{"type": "function", "function": {{"name": ...}}}}, got {tool_choice!r}.'
        )
    named = [f for f in functions if f["name"] == name]
    if not named:
        raise ValueError(
            f"tool_choice names {name!r}, which is not among the tools: "
            f"{', '.join(f['name'] for f in functions)}."
        )
    return named


def _closed(schema: dict) -> dict:
    """An object schema that allows no arguments besides its listed ones."""
    return {"additionalProperties": False} | schema if schema.get("type") == "object" else schema


def tool_call_schema(tools: Sequence[Tool | dict], tool_choice: Any = "required") -> dict:
    """JSON schema of the call list ``[{"name": ..., "arguments": {...}}, ...]`` (one or more)."""
    functions = chosen_tools(tools, tool_choice)
    if not functions:
        raise ValueError('tool_choice "none" allows no call, so there is no call schema.')
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"const": f["name"]},
                "arguments": _closed(f.get("parameters") or {"type": "object", "properties": {}}),
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for f in functions
    ]
    return {
        "type": "array",
        "items": calls[0] if len(calls) == 1 else {"anyOf": calls},
        "minItems": 1,
    }


def tool_call_grammar(tools: Sequence[Tool | dict], tool_choice: Any = "auto") -> str:
    """Lark grammar (llguidance) of the answer: free text, or ``<tool_call>`` JSON ``</tool_call>``.

    "auto": text that never writes "<tool_call>", or one call block; "required"/named: the call
    block; "none": the text only.
    """
    functions = chosen_tools(tools, tool_choice)
    text = "TEXT: /(?s:.*)/ & ~/(?s:.*)<tool_call>(?s:.*)/\n"
    if not functions:
        return "start: TEXT\n" + text
    call = f'call: "{TOOL_CALL_OPEN}" calls "{TOOL_CALL_CLOSE}"\n'
    call += f"calls: {json_rule(tool_call_schema(tools, tool_choice))}\n"
    return (
        ("start: TEXT | call\n" + text + call) if tool_choice == "auto" else "start: call\n" + call
    )


def tool_call_regex(tools: Sequence[Tool | dict], tool_choice: Any = "auto") -> str:
    """The same language as ``tool_call_grammar``, as one regex (for ``RegexConstraint``)."""
    functions = chosen_tools(tools, tool_choice)
    if not functions:
        return NO_CALL_TEXT
    call = (
        TOOL_CALL_OPEN + json_schema_regex(tool_call_schema(tools, tool_choice)) + TOOL_CALL_CLOSE
    )
    return f"{NO_CALL_TEXT}|{call}" if tool_choice == "auto" else call


def json_schema_regex(schema: dict) -> str:
    """A regex for the JSON texts ``json.dumps`` would write for ``schema`` (a small subset).

    ``json_schema_regex({"type": "boolean"}) -> "(?:true|false)"``. Objects keep the schema's
    property order and allow no extra keys; optional properties may be left out.
    """
    import regex

    if not isinstance(schema, dict):
        raise ConstraintError(f"A JSON schema must be a dict, got {schema!r}.")
    unknown = (
        set(schema)
        - _NOTES
        - {
            "type",
            "enum",
            "const",
            "anyOf",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "minItems",
        }
    )
    if unknown:
        raise ConstraintError(
            f"The hand-written regex compiler does not support {sorted(unknown)}: "
            "use GrammarConstraint (llguidance) for this schema."
        )
    if "const" in schema or "enum" in schema:
        values = [schema["const"]] if "const" in schema else schema["enum"]
        return "(?:" + "|".join(regex.escape(json.dumps(v)) for v in values) + ")"
    if "anyOf" in schema:
        return "(?:" + "|".join(json_schema_regex(s) for s in schema["anyOf"]) + ")"
    kind = schema.get("type")
    if isinstance(kind, list):
        return "(?:" + "|".join(json_schema_regex(schema | {"type": k}) for k in kind) + ")"
    simple = {
        "string": _STRING,
        "integer": _INTEGER,
        "number": _NUMBER,
        "boolean": "(?:true|false)",
        "null": "null",
    }
    if kind in simple:
        return simple[kind]
    if kind == "array":
        if "items" not in schema:
            raise ConstraintError("An array schema needs 'items' for the regex compiler.")
        item, least = json_schema_regex(schema["items"]), int(schema.get("minItems", 0))
        if least == 0:
            return rf"\[(?:{item}(?:, {item})*)?\]"
        return rf"\[{item}(?:, {item}){{{least - 1},}}\]"
    if kind == "object":
        return _object_regex(schema.get("properties", {}), set(schema.get("required", [])))
    raise ConstraintError(f"Cannot turn type {kind!r} into a regex: give a JSON-schema type.")


def _object_regex(properties: dict, required: set[str]) -> str:
    """``{"a": ..., "b": ...}`` with keys in order; an optional key may be skipped."""
    import regex

    fields = [
        (regex.escape(json.dumps(k)) + ": " + json_schema_regex(v), k in required)
        for k, v in properties.items()
    ]

    def rest(i: int, first: bool) -> str:  # the fields from i on; `first`: no ", " before
        if i == len(fields):
            return ""
        body, needed = fields[i]
        take = ("" if first else ", ") + body + rest(i + 1, False)
        return take if needed else f"(?:{take}|{rest(i + 1, first)})"

    return r"\{" + rest(0, True) + r"\}"
