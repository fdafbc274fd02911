"""Keep a small model copying: arguments copied from the task, the answer chosen among results.

A 135M model copies well and reasons badly. An app built on it lets the model do what it can
(pick a tool, copy its arguments from the request, pick the answer among values it was shown)
and leaves the rest to code (the arithmetic, which values count, when to stop). The tools are
narrowed by the DECODER, for one request at a time: the prompt keeps showing each tool's general
schema (the same prompt every time, so a prompt cache keeps matching), while the constraint only
lets the model write what this request allows (``complete_with_tools(..., allowed=...)``, as
OpenAI's ``allowed_tools`` narrows a request's tools without changing the tools list).

- ``words_pattern(text)``: a JSON-schema ``pattern`` for one to a few words copied from ``text``
  (``words_pattern("Who wrote Emma?")`` admits "Emma" and "wrote Emma", never "Jane Austen");
- ``numbers_in(text)``: the numbers written in ``text``, as written (``"4,817"``);
- ``expression_pattern(numbers)``: two to four of those numbers joined by arithmetic operators;
- ``result_values(text)``: what a tool result offers as an answer: its numbers, or itself if short;
- ``narrowed(tool, field, schema)``: a copy of ``tool`` with one argument's schema replaced;
- ``answer_tool(values, final)``: ``final_answer`` whose answer must be one of ``values`` (an
  ``enum``).

Leaves out: copying from tool results into the next call (chains of calls), fuzzy copies
(a typo in the task stays a typo), and non-numeric answers longer than ``SHORT_RESULT``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

from llmlab.tool_use.tools import Tool

SHORT_RESULT = 40  # a whole tool result this short (one line) is itself a possible answer
MAX_VALUES = 16  # answer options kept: the first ones seen
OPERATORS = "[-+*/×÷]"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")  # "4,817", "-3", "2.5"
_WORD = re.compile(r"[^\W_][\w'’-]*")  # a word: "Tom's", "Misérables", "451"


def _either(items: Sequence[str]) -> str:
    return "(" + "|".join(re.escape(i) for i in items) + ")"


def words_pattern(text: str, max_words: int = 6) -> str:
    """``^w( w){0,max_words-1}$`` with each ``w`` a word of ``text``: the argument is a copy.

    ``words_pattern("Who wrote Emma?", 2)`` -> ``"^(Who|wrote|Emma)( (Who|wrote|Emma)){0,1}$"``.
    """
    words = list(dict.fromkeys(_WORD.findall(text)))
    if not words:
        raise ValueError(f"{text!r} has no words to copy.")
    word = _either(words)
    return f"^{word}( {word}){{0,{max_words - 1}}}$"


def numbers_in(text: str) -> list[str]:
    """The numbers in ``text`` as written, first occurrence first: ``"7,311 × 65?"`` -> ``["7,311", "65"]``."""
    return list(dict.fromkeys(m.rstrip(",") for m in _NUMBER.findall(text)))


def expression_pattern(numbers: Sequence[str]) -> str:
    """Two to four of ``numbers`` joined by + - * / × ÷ (spaces optional around the operator)."""
    if not numbers:
        raise ValueError("an expression needs numbers to copy; got none.")
    number = _either(numbers)
    return f"^{number}( ?{OPERATORS} ?{number}){{1,3}}$"


def _canonical(number: str) -> str:
    """``"4,817.000"`` -> ``"4817"``: how ``llmlab.agents.tasks.check`` reads a number too."""
    text = number.replace(",", "")
    return re.sub(r"\.0+$", "", text) if "." in text else text


def result_values(text: str) -> list[str]:
    """The answers a tool result offers: the whole result if it is short and one line, then every
    number in it (thousands separators dropped). ``"Jaws is a 1975 film"`` -> ``["Jaws is a 1975
    film", "1975"]``; ``"475215"`` -> ``["475215"]``."""
    whole = [text.strip()] if 0 < len(text.strip()) <= SHORT_RESULT and "\n" not in text else []
    numbers = [_canonical(n) for n in numbers_in(text)]
    return list(dict.fromkeys(whole + numbers))


def narrowed(tool: Tool, field: str, schema: dict) -> Tool:
    """A copy of ``tool`` whose argument ``field`` has ``schema`` (a narrower one, e.g. a pattern)."""
    out = copy.deepcopy(tool)
    props = out.parameters.get("properties", {})
    if field not in props:
        raise ValueError(f"{tool.name} has no argument {field!r}; it has {sorted(props)}.")
    kept = {k: v for k, v in props[field].items() if k in ("type", "description")}
    props[field] = {"type": "string", **kept, **schema}
    return out


def answer_tool(values: Sequence[str], final: Tool) -> Tool:
    """``final`` (a ``final_answer(answer)`` tool) whose ``answer`` must be one of ``values`` (the
    first ``MAX_VALUES``): the model chooses among what the tools returned, it cannot invent."""
    options = list(dict.fromkeys(values))[:MAX_VALUES]
    if not options:
        raise ValueError("no values to choose from: call a tool that returns some first.")
    return narrowed(final, "answer", {"enum": options})
