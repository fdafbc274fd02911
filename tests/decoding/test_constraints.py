"""llmlab.decoding.constraints: the hand-written regex constraint against llguidance, and decoding under both."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
import regex

from llmlab.decoding.constraints import ConstraintError, GrammarConstraint, RegexConstraint
from llmlab.decoding.fast_generation import fast_generate
from llmlab.decoding.generation import generate
from llmlab.tool_use.grammar import (
    json_schema_regex,
    tool_call_grammar,
    tool_call_regex,
    tool_call_schema,
)
from llmlab.tool_use.text_format import format_tool_calls
from llmlab.tool_use.tools import ToolCall, tool
from tests.doubles import add


def get_weather(city: str, days: int = 1) -> str:
    """Get the weather forecast for a city.

    Args:
        city: The name of the city.
        days: How many days ahead.
    """
    return "sunny"


TOOLS = [tool(get_weather), tool(add)]
CALL = ToolCall(name="get_weather", arguments={"city": "Paris", "days": 12})
NAMED = {"type": "function", "function": {"name": "add"}}


def walk(lm, text: str, constraints) -> list[list[np.ndarray]]:
    """Feed ``text``'s tokens (then end-of-sequence) to each constraint; the masks at each step."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"] + [lm.tokenizer.eos_token_id]
    masks = []
    for token in ids:
        masks.append([c.allowed().copy() for c in constraints])
        for c in constraints:
            c.advance(token)
    return masks


# --- pure: the languages -----------------------------------------------------------------------


def test_json_schema_regex_accepts_exactly_the_valid_json_dumps_texts():
    schema = tool(get_weather).parameters | {"additionalProperties": False}
    pattern = regex.compile(json_schema_regex(schema))
    candidates = [
        {"city": "Paris"},
        {"city": "Oslo", "days": 3},
        {"city": 'a "quoted"\n name'},
        {"days": 3},
        {"city": 7},
        {"city": "Rome", "days": 1.5},
        {"city": "Rome", "extra": True},
        {},
    ]
    for obj in candidates:  # jsonschema is the reference for what is valid
        valid = jsonschema.Draft202012Validator(schema).is_valid(obj)
        assert (pattern.fullmatch(json.dumps(obj)) is not None) == valid, obj
    assert json_schema_regex({"type": "boolean"}) == "(?:true|false)"
    assert regex.fullmatch(json_schema_regex({"enum": ["a", 1, None]}), "null")


def test_format_tool_calls_is_in_both_languages(lm):
    text = format_tool_calls([CALL, ToolCall(name="add", arguments={"a": 2, "b": 3})])
    for choice in ("auto", "required"):
        assert regex.fullmatch(tool_call_regex(TOOLS, choice), text)
        g = GrammarConstraint(lm, grammar=tool_call_grammar(TOOLS, choice))
        walk(lm, text, [g])  # every token accepted, then end-of-sequence
    assert not regex.fullmatch(tool_call_regex(TOOLS, NAMED), text)  # only add may be called
    assert not regex.fullmatch(tool_call_regex(TOOLS, "none"), text)
    assert regex.fullmatch(tool_call_regex(TOOLS, "auto"), "No tool needed: it is 4.")


def test_tool_choice_forms():
    assert [s["properties"]["name"] for s in tool_call_schema(TOOLS)["items"]["anyOf"]] == [
        {"const": "get_weather"},
        {"const": "add"},
    ]
    assert tool_call_schema(TOOLS, NAMED)["items"]["properties"]["name"] == {"const": "add"}
    assert tool_call_grammar(TOOLS, "none").startswith("start: TEXT\n")
    with pytest.raises(ValueError, match="not among the tools: get_weather, add"):
        tool_call_schema(TOOLS, {"type": "function", "function": {"name": "search"}})
    with pytest.raises(ValueError, match='"auto", "required", "none"'):
        tool_call_grammar(TOOLS, "always")
    with pytest.raises(ValueError, match="no call schema"):
        tool_call_schema(TOOLS, "none")


# --- the two engines agree ---------------------------------------------------------------------


def test_regex_and_llguidance_allow_the_same_tokens(lm):
    rx = RegexConstraint(lm, tool_call_regex(TOOLS, "required"))
    ll = GrammarConstraint(lm, grammar=tool_call_grammar(TOOLS, "required"))
    eos = lm.tokenizer.eos_token_id
    compared = rx.table.usable.copy()  # byte pieces of a character: only llguidance allows them
    compared[eos] = True
    masks = walk(lm, format_tool_calls([CALL]), [rx, ll])
    sizes = []
    for a, b in masks:
        assert np.array_equal(a[compared], b[compared])
        sizes.append(int(a.sum()))
    assert min(sizes) == 1 and max(sizes) > 40_000  # forced steps and inside the city string
    assert rx.done and ll.done
    # one step by hand: after '{"city": "Paris"' both allow "}" ("days" is optional) and ", "
    # but forbid "]" (the arguments object is still open) and end-of-sequence
    rx.reset()
    ll.reset()
    prefix = '<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"'
    for token in lm.tokenizer(prefix, add_special_tokens=False)["input_ids"]:
        rx.advance(token)
        ll.advance(token)
    ids = [lm.tokenizer.convert_tokens_to_ids(t) for t in ("}", ",", "]")] + [eos]
    assert rx.allowed()[ids].tolist() == ll.allowed()[ids].tolist() == [True, True, False, False]
    # free text under "auto" and "none": everything but the start of a call inside the text
    for choice in ("auto", "none"):
        rx = RegexConstraint(lm, tool_call_regex(TOOLS, choice))
        ll = GrammarConstraint(lm, grammar=tool_call_grammar(TOOLS, choice))
        for a, b in walk(lm, "Hi <tool", [rx, ll]):
            assert np.array_equal(a[compared], b[compared]) and a.sum() > 48_000


def test_end_of_sequence_only_when_the_call_is_complete(lm):
    rx = RegexConstraint(lm, tool_call_regex(TOOLS, NAMED))
    ll = GrammarConstraint(lm, grammar=tool_call_grammar(TOOLS, NAMED))
    eos = lm.tokenizer.eos_token_id
    masks = walk(
        lm, format_tool_calls([ToolCall(name="add", arguments={"a": 2, "b": 30})]), [rx, ll]
    )
    for a, b in masks[:-1]:
        assert not a[eos] and not b[eos]
    assert masks[-1][0][eos] and masks[-1][1][eos]
    assert masks[-1][0].sum() == masks[-1][1].sum() == 1  # nothing but the end may follow
    rx.reset()
    with pytest.raises(ConstraintError, match="breaks"):
        rx.advance(lm.tokenizer.convert_tokens_to_ids("{"))  # the call must open with <tool_call>


# --- decoding under a constraint ---------------------------------------------------------------

CITY = {
    "type": "object",
    "properties": {
        "country": {"type": "string", "maxLength": 20},
        "capital": {"type": "string", "maxLength": 20},
        "population_millions": {"type": "integer", "minimum": 0, "maximum": 100},
    },
    "required": ["country", "capital", "population_millions"],
    "additionalProperties": False,
}  # without it, JSON schema allows any extra key
PROMPTS = [
    "Describe France as JSON.",
    "Give me facts about Japan in JSON.",
    "Output a JSON object about Brazil.",
]


@pytest.mark.slow
def test_greedy_constrained_output_validates(lm):
    for prompt in PROMPTS:
        gen = fast_generate(
            lm, prompt, chat=True, max_new_tokens=60, constraint=GrammarConstraint(lm, schema=CITY)
        )
        assert gen.stop_reason == "constraint", gen.text
        jsonschema.validate(json.loads(gen.text), CITY)
        free = generate(lm, prompt, chat=True, max_new_tokens=8).text
        assert not free.startswith("{")  # left alone, the model writes prose, not JSON


def test_sampled_constrained_output_validates_and_a_free_constraint_changes_nothing(lm):
    gen = fast_generate(
        lm,
        PROMPTS[0],
        chat=True,
        max_new_tokens=60,
        temperature=1.0,
        seed=0,
        constraint=GrammarConstraint(lm, schema=CITY),
    )
    jsonschema.validate(json.loads(gen.text), CITY)
    anything = GrammarConstraint(lm, grammar="start: /(?s:.*)/\n")
    assert (
        fast_generate(lm, PROMPTS[1], chat=True, max_new_tokens=10, constraint=anything).token_ids
        == generate(lm, PROMPTS[1], chat=True, max_new_tokens=10).token_ids
    )


def test_bad_schema_or_pattern_raises_constraint_error(lm):
    with pytest.raises(ConstraintError, match="look-ahead"):
        GrammarConstraint(lm, schema={"type": "string", "pattern": "(?=a)b"})
    with pytest.raises(ConstraintError, match="JSON-schema types"):
        GrammarConstraint(lm, schema={"type": "strng"})
    with pytest.raises(ConstraintError, match="grammar"):
        GrammarConstraint(lm, grammar="start: missing_rule\n")
    with pytest.raises(ConstraintError, match="Not a valid regex"):
        RegexConstraint(lm, "([a-z]")
    with pytest.raises(ConstraintError, match="GrammarConstraint"):
        json_schema_regex({"type": "string", "pattern": "[a-z]+"})
    with pytest.raises(ValueError, match="exactly one"):
        GrammarConstraint(lm)


def test_jump_forward_writes_the_same_tokens_as_one_pass_per_token(lm):
    """Forced tokens read in one pass (greedy + cache) = choosing them one by one (no cache)."""
    # forcing=True: the forced text ('"}}]</tool_call>' ...) is one token per step: many jumps
    prompt = [{"role": "user", "content": "What's the weather in Oslo for 2 days?"}]

    def call(use_cache: bool):
        c = GrammarConstraint(lm, grammar=tool_call_grammar(TOOLS, NAMED), forcing=True)
        return fast_generate(
            lm, prompt, chat=True, max_new_tokens=40, constraint=c, use_cache=use_cache
        )

    fast, slow = call(True), call(False)
    assert fast.token_ids == slow.token_ids and fast.stop_reason == slow.stop_reason
    assert len(fast.steps) == len(fast.token_ids)
    for a, b in zip(fast.steps, slow.steps, strict=True):
        assert a.token_id == b.token_id and abs(a.prob - b.prob) < 1e-3
