"""Tests for llmlab.agents.run_record: budgets, the bookkeeping of a run, how it finishes."""

from __future__ import annotations

import json

import pytest

from llmlab.agents.run_record import Budget, RunRecord


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_steps": 0},
        {"max_steps": -1},
        {"max_tokens": 0},
        {"max_seconds": 0},
        {"max_steps": 1.5},
        {"max_steps": True},
    ],
)
def test_budget_rejects_non_positive(kwargs):
    with pytest.raises(ValueError, match="Budget"):
        Budget(**kwargs)


def test_run_record_adds_costs_checks_budgets_and_finishes():
    rec = RunRecord(budget=Budget(max_steps=3, max_tokens=100))
    rec.calls = 1
    rec.add("tool", "4", tool="add", arguments={"a": 2}, tokens=60, seconds=0.5)
    assert rec.over_budget() is None and rec.steps[0].index == 1 and rec.steps[0].ok
    rec.add("tool", "5", tokens=50)
    assert rec.over_budget() == "max_tokens"
    run = rec.finish("max_tokens", [{"role": "user", "content": "q"}])
    assert (run.tokens, run.seconds, run.stop_reason, run.answer) == (110, 0.5, "max_tokens", "")
    again = RunRecord.resume(run, Budget(max_steps=2))
    assert (again.calls, again.tokens, len(again.steps)) == (1, 110, 2)
    again.calls = 2
    assert again.over_budget() == "max_steps"


def test_a_finished_run_reads_and_saves_as_plain_json():
    rec = RunRecord(budget=Budget(max_steps=2))
    rec.add("tool", "4", tool="add", arguments={"a": 2, "b": 2}, tokens=10)
    run = rec.finish("answer", [{"role": "user", "content": "2 + 2?"}], answer="4")
    assert json.loads(json.dumps(run.to_json()))["answer"] == "4"
    assert 'add({"a": 2, "b": 2})' in run.trace() and run.n_steps == 1
