"""The record of one agent run: its budget, its steps, how it ended. One type for every agent.

The loop (``llmlab.agents.loop``), every pattern (``llmlab.agents.patterns``) and the research
agent keep their accounts the same way, so their runs can be compared, printed and saved alike:

- ``Budget``: limits on one run (model calls, tokens, seconds), checked before each model call.
- ``AgentStep``: one step (a tool call and its result, a thought, a plan, an error), with the
  tokens and seconds it cost.
- ``RunRecord``: the bookkeeping while a run goes (``add`` a step, ``over_budget``), and
  ``finish`` -> ``AgentRun``: the answer, the steps, the stop reason (one of ``STOP_REASONS``),
  tokens and seconds, with ``trace()`` to read it and ``to_json()`` to save it.

Leaves out: deciding anything (that is the loop's job) and persisting runs (``to_json`` gives
plain JSON; where it goes is yours).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

STOP_REASONS = ("answer", "max_steps", "max_tokens", "max_seconds", "loop", "error")


@dataclass
class Budget:
    """Limits on one run: model calls, tokens (prompt + completion, summed) and seconds."""

    max_steps: int = 8
    max_tokens: int = 6000
    max_seconds: float = 60.0

    def __post_init__(self) -> None:
        for name in ("max_steps", "max_tokens", "max_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(
                    f"Budget {name} must be a number > 0, got {value!r}: an agent "
                    f"with no budget cannot take a single step."
                )
        if self.max_steps != int(self.max_steps) or self.max_tokens != int(self.max_tokens):
            raise ValueError("Budget max_steps and max_tokens must be whole numbers.")


@dataclass
class AgentStep:
    """One thing the agent did. ``kind``: "tool" | "answer" | "plan" | "critique" | "error".

    ``index``: the model call it came from (1, 2, ...); ``tokens`` what that model call cost
    (prompt + completion; 0 for the second and later calls of one reply); ``seconds`` the model
    call and the tool run; ``raw`` the model's output before parsing.
    """

    index: int
    kind: str
    result: str
    tool: str | None = None
    arguments: dict | None = None
    ok: bool = True
    tokens: int = 0
    seconds: float = 0.0
    raw: str = ""


@dataclass
class AgentRun:
    """A finished run: the answer (maybe partial), what happened, why it stopped, its cost."""

    answer: str
    steps: list[AgentStep]
    stop_reason: str
    tokens: int
    seconds: float
    messages: list[dict] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        """Decisions made: a reply with two tool calls counts once; a ReAct step is two model calls."""
        return len({s.index for s in self.steps if s.tokens or s.kind != "tool"})

    def to_json(self) -> dict:
        """Everything as plain JSON types (``json.dumps(run.to_json())`` works)."""
        return asdict(self)

    def trace(self, width: int = 90) -> str:
        """One line per step: ``#1 tool calculator({"expression": "2+2"}) -> 4``."""
        lines = []
        for s in self.steps:
            call = f"{s.tool}({json.dumps(s.arguments, ensure_ascii=False)})" if s.tool else ""
            mark = "" if s.ok else " [failed]"
            lines.append(f"#{s.index} {s.kind:<8} {call} -> {s.result!r}{mark}"[:width])
        lines.append(
            f"stop: {self.stop_reason}; answer {self.answer!r}; {self.tokens} tokens, "
            f"{self.seconds:.1f} s"
        )
        return "\n".join(lines)


@dataclass
class RunRecord:
    """A run in progress: its steps, what they cost, its budget, and why it stopped.

    ``calls`` counts model calls (what ``Budget.max_steps`` limits); ``add`` records a step and
    adds its tokens and seconds; ``over_budget()`` is checked before each model call; ``answer``
    is the best partial answer so far; ``finish(reason, messages)`` is the ``AgentRun``.
    """

    budget: Budget = field(default_factory=Budget)
    on_step: Callable[[AgentStep], None] | None = None
    steps: list[AgentStep] = field(default_factory=list)
    calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    answer: str = ""
    stop_reason: str | None = None  # None while the run goes on

    @classmethod
    def resume(cls, run: AgentRun, budget: Budget, on_step: Callable | None = None) -> RunRecord:
        """A record that goes on from a finished ``run``: its steps and spending count."""
        return cls(
            budget=budget,
            on_step=on_step,
            steps=list(run.steps),
            calls=run.n_steps,
            tokens=run.tokens,
            seconds=run.seconds,
            answer=run.answer,
        )

    def add(self, kind: str, result: str, **fields: Any) -> AgentStep:
        """Record one step (``AgentStep`` fields as keywords; index: the current model call)."""
        step = AgentStep(index=fields.pop("index", self.calls), kind=kind, result=result, **fields)
        self.steps.append(step)
        self.tokens, self.seconds = self.tokens + step.tokens, self.seconds + step.seconds
        if self.on_step is not None:
            self.on_step(step)
        return step

    def over_budget(self) -> str | None:
        """The stop reason if a budget is spent ("max_steps", ...), else None."""
        b = self.budget
        if self.calls >= b.max_steps:
            return "max_steps"
        if self.tokens >= b.max_tokens:
            return "max_tokens"
        return "max_seconds" if self.seconds >= b.max_seconds else None

    def finish(
        self, reason: str, messages: list[dict] | None = None, answer: str | None = None
    ) -> AgentRun:
        """Stop for ``reason``: the run with ``answer`` (default: the best partial answer)."""
        self.stop_reason = reason
        return AgentRun(
            answer=self.answer if answer is None else answer,
            steps=self.steps,
            stop_reason=reason,
            tokens=self.tokens,
            seconds=self.seconds,
            messages=list(messages or []),
        )
