"""llmlab.agents.grounding: the copy and choice constraints, checked with jsonschema (the
reference for what a JSON-schema ``pattern`` / ``enum`` admits), then decoded on the real model."""

from __future__ import annotations

import re

import pytest

from llmlab.agents.grounding import (
    answer_tool,
    expression_pattern,
    narrowed,
    numbers_in,
    result_values,
    words_pattern,
)
from llmlab.agents.loop import FINAL_ANSWER
from llmlab.agents.tasks import calculator_tool, copying_tools, wiki_lookup_tool
from llmlab.tool_use.tools import ToolArgumentsError, check_arguments

QUESTION = "In which year was the novel Uncle Tom's Cabin first published?"


def admits(tool, field: str, value: str) -> bool:
    """Does ``tool``'s schema accept ``{field: value}``? (jsonschema decides)."""
    try:
        check_arguments(tool, {field: value})
        return True
    except ToolArgumentsError:
        return False


def test_words_pattern_admits_copies_only():
    t = narrowed(wiki_lookup_tool(), "query", {"pattern": words_pattern(QUESTION, max_words=4)})
    for good in ("Uncle Tom's Cabin", "novel", "Cabin first published"):
        assert admits(t, "query", good), good
    for bad in ("Harriet Beecher Stowe", "1852", "Uncle Tom's Cabin novel first published", ""):
        assert not admits(t, "query", bad), bad
    with pytest.raises(ValueError, match="no words"):
        words_pattern("?? !!")


def test_numbers_and_expression_pattern():
    assert numbers_in("What is 7,311 × 65?") == ["7,311", "65"]
    assert numbers_in("from -3 to 2.5, then 10") == ["-3", "2.5", "10"]
    t = narrowed(calculator_tool(), "expression", {"pattern": expression_pattern(["7,311", "65"])})
    for good in ("7,311 × 65", "7,311*65", "65 - 7,311 + 65"):
        assert admits(t, "expression", good), good
    for bad in ("475215 - 475215", "7,311", "7311 × 65", "2015-01-01"):
        assert not admits(t, "expression", bad), bad
    with pytest.raises(ValueError, match="numbers"):
        expression_pattern([])


def test_result_values_are_the_numbers_and_a_short_result():
    assert result_values("475215") == ["475215"]
    assert result_values("4,817.000") == ["4,817.000", "4817"]
    lead = "Jaws is a 1975 American thriller film, re-released in 1979 and 1975."
    assert result_values(lead) == ["1975", "1979"]  # too long to be an answer itself
    assert result_values("Paris") == ["Paris"]
    assert result_values("") == []


def test_answer_tool_is_an_enum_of_the_values():
    t = answer_tool(["1852", "1811", "1852"], FINAL_ANSWER)
    assert t.parameters["properties"]["answer"]["enum"] == ["1852", "1811"]
    assert admits(t, "answer", "1852") and not admits(t, "answer", "2018")
    assert FINAL_ANSWER.parameters["properties"]["answer"].get("enum") is None  # a copy
    with pytest.raises(ValueError, match="no values"):
        answer_tool([], FINAL_ANSWER)
    with pytest.raises(ValueError, match="no argument"):
        narrowed(FINAL_ANSWER, "text", {"enum": ["x"]})


def test_copying_tools_offer_the_calculator_only_with_two_numbers():
    assert [t.name for t in copying_tools(QUESTION)] == ["wiki_lookup"]
    lookup, calc = copying_tools("What is 142 × 366?")
    assert admits(calc, "expression", "142 × 366") and not admits(calc, "expression", "51972")
    assert admits(lookup, "query", "What is") and not admits(lookup, "query", "Casablanca")
    description = lookup.parameters["properties"]["query"]["description"]
    assert description == wiki_lookup_tool().parameters["properties"]["query"]["description"]


@pytest.mark.slow
def test_the_decoder_obeys_allowed_while_the_prompt_shows_the_tools(lm):
    from llmlab.agents.patterns import verdict_tool
    from llmlab.agents.tasks import SYSTEM, task_tools
    from llmlab.chat.local import LocalChat
    from llmlab.tool_use.calling import complete_with_tools

    chat, tools = LocalChat(lm), task_tools()
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    free = complete_with_tools(chat, msgs, tools, tool_choice="required", max_tokens=48)
    narrow = complete_with_tools(
        chat, msgs, tools, tool_choice="required", max_tokens=48, allowed=copying_tools(QUESTION)
    )
    assert narrow.prompt == free.prompt  # the same prompt: a prompt cache still matches
    (call,) = narrow.tool_calls
    pattern = copying_tools(QUESTION)[0].parameters["properties"]["query"]["pattern"]
    assert call.name == "wiki_lookup" and re.fullmatch(pattern, call.arguments["query"])
    with pytest.raises(ValueError, match="allowed must narrow"):
        complete_with_tools(chat, msgs, tools, allowed=[verdict_tool()])  # not among the tools
