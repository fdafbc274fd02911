"""llmlab.agents.tasks: the safe calculator (against Python's own arithmetic), the lookup, the tasks."""

from __future__ import annotations

import random
import re

import pytest

from llmlab.agents.tasks import (
    EXPRESSION,
    AgentTask,
    calculate,
    calculator,
    check,
    last_number,
    load_tasks,
    task_tools,
    wiki_lookup,
)
from llmlab.tool_use.tools import ToolCall, run_tool, tool


def random_expression(rng: random.Random, depth: int = 0) -> str:
    if depth > 2 or rng.random() < 0.3:
        return str(rng.randint(0, 500))
    op = rng.choice(["+", "-", "*", "/"])
    return f"({random_expression(rng, depth + 1)} {op} {random_expression(rng, depth + 1)})"


def test_calculate_agrees_with_python():
    rng = random.Random(0)
    checked = 0
    for _ in range(300):
        expr = random_expression(rng)
        try:
            expected = eval(expr)  # the reference, on expressions this test generated itself
        except ZeroDivisionError:
            with pytest.raises(ZeroDivisionError):
                calculate(expr)
            continue
        assert calculate(expr) == pytest.approx(expected, rel=1e-12, abs=1e-9)
        checked += 1
    assert checked > 250


@pytest.mark.parametrize(
    "text,value",
    [
        ("4,817 × 29", 139693),
        ("2^10", 1024),
        ("-3 + 5", 2),
        ("10 / 4", 2.5),
        ("(1 + 2) * 3 =", 9),
        ("8 ÷ 2", 4),
    ],
)
def test_calculate_reads_what_people_write(text, value):
    assert calculate(text) == value


@pytest.mark.parametrize(
    "bad",
    [
        "__import__('os').system('ls')",
        "abs(-1)",
        "x + 1",
        "'a' * 3",
        "[1, 2]",
        "2 ** 1000",
        "1 if 1 else 2",
        "",
        "2 +",
    ],
)
def test_calculate_refuses_anything_but_arithmetic(bad):
    with pytest.raises(ValueError):
        calculate(bad)


def test_calculator_errors_reach_the_model_as_results():
    calc = next(t for t in task_tools() if t.name == "calculator")
    res = run_tool([calc], ToolCall(name="calculator", arguments={"expression": "1/0"}))
    assert not res.ok and "ZeroDivisionError" in res.content
    res = run_tool([calc], ToolCall(name="calculator", arguments={"expression": "open('x')"}))
    assert not res.ok and "does not match" in res.content  # the schema's pattern refuses it
    res = run_tool(
        [tool(calculator)], ToolCall(name="calculator", arguments={"expression": "open('x')"})
    )
    assert not res.ok and "only numbers" in res.content  # and so does the function itself
    assert calculator("7 * 6") == "42" and calculator("1/3") == "0.3333333333"


def test_wiki_lookup_finds_the_article_and_cuts_it():
    text = wiki_lookup("Casablanca film")
    assert text.startswith("Casablanca (film).") and "1942" in text and len(text) <= 404
    with pytest.raises(ValueError, match="no words"):
        wiki_lookup("?!")


def test_check_uses_the_last_number():
    task = AgentTask(
        id="t",
        kind="arithmetic",
        question="What is 4,817 × 29?",
        answer="139693",
        tool="calculator",
    )
    assert check("4817 * 29 = 139,693.", task) and check("139693", task)
    assert not check("139,693 or maybe 139,694", task) and not check("I don't know", task)
    assert last_number("born 1847, died 1931") == "1931" and last_number("") is None


def test_tasks_are_seeded_balanced_and_solvable_with_their_tool():
    tasks = load_tasks()
    assert len(tasks) >= 24 and tasks == load_tasks() and tasks != load_tasks(seed=1)
    assert {t.kind for t in tasks[::2]} == {"arithmetic"} and {t.kind for t in tasks[1::2]} == {
        "fact"
    }
    for t in tasks:
        if t.kind == "arithmetic":  # the calculator (and its schema) read the question's notation
            expression = t.question.removeprefix("What is ").rstrip("?")
            assert check(calculator(expression), t) and re.match(EXPRESSION, expression)
        else:  # the lookup by title returns a lead whose first year is the answer
            name = t.question.split(" the ", 1)[1].split(" first ")[0]
            lead = wiki_lookup(name)
            assert t.answer in lead, (t, lead)
    with pytest.raises(ValueError, match="n_per_kind"):
        load_tasks(0)
