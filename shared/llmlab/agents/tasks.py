"""A fixed task set where tools genuinely help a tiny model, its two tools, and a scorer.

A 135M model cannot multiply 4,817 by 29 in its head, and does not remember which year a film
came out. Both become easy with a tool: a calculator, and a lookup over the Phase 4 Wikipedia
summaries. So the task set measures what the *loop* adds, not what the model knows.

- ``calculate(expression)``: exact arithmetic on + - * / ** and parentheses by walking Python's
  syntax tree (``ast``): never ``eval`` (which would run any code the model writes).
  ``calculator`` is the tool version (text in, text out; errors raise and ``run_tool`` returns
  them to the model).
- ``wiki_lookup(query)``: BM25 (``llmlab.search.retrievers.BM25Retriever``, the bm25s backend) over the
  10,033 lead paragraphs; returns the best article's title and lead, cut to ``LOOKUP_CHARS``.
- ``copying_tools(question)``: the two tools narrowed to copies from the question (for
  ``run_agent(allowed=...)``; ``llmlab.agents.grounding``).
- ``load_tasks(n_per_kind=12, seed=0)``: seeded arithmetic questions and "which year" questions
  about films and novels whose lead gives the year (and which the lookup finds by title).
- ``check(answer, task)``: the LAST number in the answer must equal the expected one (the
  GSM8K convention; "4,817 x 29 = 139,693" passes, a pasted lead full of years does not).

Leaves out: tasks needing several lookups (the research agent's job: ``llmlab.research.agent``).
"""

from __future__ import annotations

import ast
import operator
import random
import re
from dataclasses import dataclass
from functools import lru_cache

from llmlab.agents.grounding import expression_pattern, narrowed, numbers_in, words_pattern
from llmlab.tool_use.tools import Tool, tool

LOOKUP_CHARS = 400
KINDS = ("arithmetic", "fact")
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


# --- the calculator ---------------------------------------------------------------------------


def _normalize(expression: str) -> str:
    """What people (and models) write -> Python syntax: 4,817 × 29 -> 4817 * 29."""
    text = expression.strip().rstrip("=?. ")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # thousands separators
    return text.replace("×", "*").replace("÷", "/").replace("^", "**").replace("−", "-")


def _eval(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
            raise ValueError("that power is too large to compute: keep exponents <= 64.")
        return _OPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    what = type(node).__name__ if not isinstance(node, ast.Name) else f"the name {node.id!r}"
    raise ValueError(f"only numbers with + - * / ** and parentheses are allowed, not {what}.")


def calculate(expression: str) -> int | float:
    """The exact value of an arithmetic expression: ``calculate("4,817 × 29") -> 139693``.

    Raises ValueError for anything else (names, calls, strings), ZeroDivisionError for x / 0.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("expression is empty: write numbers and operators, e.g. '12 * 7'.")
    try:
        tree = ast.parse(_normalize(expression), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"{expression!r} is not an arithmetic expression ({exc.msg}).") from None
    value = _eval(tree.body)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def calculator(expression: str) -> str:
    """Compute an arithmetic expression exactly (numbers only, not dates or facts).

    Args:
        expression: Numbers with + - * / ** and parentheses, for example "4817 * 29".
    """
    value = calculate(expression)
    return str(value) if isinstance(value, int) else f"{value:.10g}"


# --- the Wikipedia lookup ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _wiki_index():  # -> BM25Retriever over "title. lead", ids = titles
    from llmlab.data.datasets import load_wiki_summaries
    from llmlab.search.retrievers import BM25Retriever

    articles = load_wiki_summaries()
    return BM25Retriever(
        [f"{a.title}. {a.extract}" for a in articles],
        ids=[a.title for a in articles],
        backend="bm25s",
    )


def lookup_title(query: str) -> str | None:
    """The title of the best article for ``query`` (None if no word matches)."""
    from llmlab.search.bm25 import words

    if not isinstance(query, str) or not words(query):
        raise ValueError(f"query {query!r} has no words to search for: give a title or a name.")
    hits = _wiki_index().search(query, k=1)
    return hits[0].id if hits else None


def wiki_lookup(query: str) -> str:
    """Look up facts (years, dates, people, books, films) in an encyclopedia.

    Args:
        query: A title or a few keywords, for example "Casablanca film".
    """
    title = lookup_title(query)
    if title is None:
        return f"No article matches {query!r}: try other words."
    text = _wiki_index().texts[_wiki_index().ids.index(title)]
    return text if len(text) <= LOOKUP_CHARS else text[:LOOKUP_CHARS].rsplit(" ", 1)[0] + " ..."


# JSON-schema limits a constrained decoder enforces (llguidance): an expression has at least one
# operator, and no argument can run on for hundreds of tokens.
# (llguidance cannot intersect a pattern with maxLength: the pattern bounds its own length.)
NUMBER = r"[-(]{0,2}[0-9][0-9,]{0,8}(\.[0-9]{1,3})?\){0,2}"
EXPRESSION = rf"^{NUMBER}( ?(\*\*|[-+*/×÷^]) ?{NUMBER}){{1,3}}$"


def _limited(
    t: Tool, field: str, max_length: int | None = None, pattern: str | None = None
) -> Tool:
    prop = t.parameters["properties"][field]
    prop.update({"maxLength": max_length} if max_length else {"pattern": pattern})
    return t


def calculator_tool() -> Tool:
    """``calculator`` as a Tool; its schema asks for numbers joined by 1-3 operators."""
    return _limited(tool(calculator), "expression", pattern=EXPRESSION)


def wiki_lookup_tool() -> Tool:
    """``wiki_lookup`` as a Tool (query at most 60 characters)."""
    return _limited(tool(wiki_lookup), "query", 60)


def short_final_answer_tool() -> Tool:
    """``llmlab.agents.loop.final_answer`` with answers cut at 40 characters (a number, a year)."""
    from llmlab.agents.loop import final_answer

    return _limited(tool(final_answer), "answer", 40)


def copying_tools(question: str) -> list[Tool]:
    """The task tools narrowed to copies from ``question``, for ``run_agent(allowed=...)``: the
    lookup's query is one to eight words of the question, the calculator's expression two to
    four of its numbers joined by operators; a question with fewer than two numbers gets no
    calculator. ``copying_tools("What is 7,311 × 65?")[1]`` admits "7,311 × 65", not "475215 - 1".
    """
    query = {"pattern": words_pattern(question)}
    tools = [narrowed(wiki_lookup_tool(), "query", query)]
    numbers = numbers_in(question)
    if len(numbers) >= 2:
        expression = {"pattern": expression_pattern(numbers)}
        tools.append(narrowed(calculator_tool(), "expression", expression))
    return tools


def task_tools() -> list[Tool]:
    """The tools every pattern gets: ``[wiki_lookup, calculator, final_answer (short)]``."""
    return [wiki_lookup_tool(), calculator_tool(), short_final_answer_tool()]


SYSTEM = (
    "You answer questions by calling tools: you cannot do arithmetic or remember facts yourself. "
    'For arithmetic, call calculator with the expression, e.g. for "What is 12 × 34?" call '
    'calculator with {"expression": "12 × 34"}. For the year of a book or film, call '
    'wiki_lookup with its title, e.g. {"query": "Casablanca"}. Only after a tool result '
    "gives the answer, call final_answer with it."
)


# --- the tasks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentTask:
    """One question with a checkable answer. ``tool``: the tool that makes it easy."""

    id: str
    kind: str  # "arithmetic" | "fact"
    question: str
    answer: str
    tool: str


def _arithmetic(rng: random.Random, i: int) -> AgentTask:
    form = i % 4
    if form == 0:
        a, b, op, sym = rng.randint(1000, 9999), rng.randint(12, 98), operator.mul, "×"
    elif form == 1:
        a, b, op, sym = rng.randint(101, 999), rng.randint(101, 999), operator.mul, "×"
    elif form == 2:
        a, b, op, sym = rng.randint(10000, 99999), rng.randint(10000, 99999), operator.add, "+"
    else:
        a, b, op, sym = rng.randint(50000, 99999), rng.randint(10000, 49999), operator.sub, "-"
    return AgentTask(
        id=f"calc-{i}",
        kind="arithmetic",
        question=f"What is {a:,} {sym} {b:,}?",
        answer=str(op(a, b)),
        tool="calculator",
    )


_WORK = re.compile(r"^(1[5-9]\d\d|20[0-2]\d) (?:[A-Z][a-z]+ )?(film|novel|album)\b")


@lru_cache(maxsize=1)
def _fact_pool() -> tuple[AgentTask, ...]:
    """Films, novels and albums whose lead gives the year first and which a title lookup finds."""
    from llmlab.data.datasets import load_wiki_summaries

    pool = []
    for a in load_wiki_summaries():
        m = _WORK.match(a.description)
        first_year = re.search(r"\b(1[5-9]\d\d|20[0-2]\d)\b", a.extract[:LOOKUP_CHARS])
        if not m or not first_year or first_year.group(1) != m.group(1):
            continue
        name = re.sub(r" \(.*\)$", "", a.title)
        if lookup_title(f"{name} {m.group(2)}") != a.title:
            continue
        verb = "published" if m.group(2) == "novel" else "released"
        pool.append(
            AgentTask(
                id=f"fact-{len(pool)}",
                kind="fact",
                question=f"In which year was the {m.group(2)} {name} first {verb}?",
                answer=m.group(1),
                tool="wiki_lookup",
            )
        )
    return tuple(pool)


def load_tasks(n_per_kind: int = 12, seed: int = 0) -> list[AgentTask]:
    """``n_per_kind`` arithmetic + ``n_per_kind`` fact tasks, interleaved, the same for a seed."""
    pool = _fact_pool()
    if not 0 < n_per_kind <= len(pool):
        raise ValueError(f"n_per_kind must be between 1 and {len(pool)}, got {n_per_kind!r}.")
    rng = random.Random(seed)
    calc = [_arithmetic(rng, i) for i in range(n_per_kind)]
    facts = rng.sample(pool, n_per_kind)
    return [t for pair in zip(calc, facts, strict=True) for t in pair]


def last_number(text: str) -> str | None:
    """The last number written in ``text`` ("4,817 x 29 = 139,693." -> "139693"), or None."""
    found = re.findall(r"-?\d+(?:\.\d+)?", re.sub(r"(?<=\d),(?=\d{3}\b)", "", text or ""))
    return found[-1] if found else None


def check(answer: str, task: AgentTask) -> bool:
    """True if the last number in ``answer`` is the task's answer."""
    got = last_number(answer)
    return got is not None and float(got) == float(task.answer)
