"""Multiple-choice scoring the way evaluation harnesses do it: one model, several scores.

A multiple-choice item is a question, a few options and the index of the right one. Harnesses
turn it into numbers in different ways, and the same model gets different scores:

- ``acc`` (lm-evaluation-harness): show the question alone ("cloze"), score each option's text
  as a continuation, pick the largest **sum** of token log-probabilities.
- ``acc_norm`` (lm-evaluation-harness): the same sums divided by each option's length in
  **characters** (``len(choice)``, without the space in front), so long options are not
  punished for having more tokens.
- ``letter`` (the original MMLU code; lm-eval's MMLU today): list the options as A-D in the
  prompt and compare the log-probabilities of the four letters " A", " B", " C", " D" only.
- ``generate`` (HELM): the same prompt, the model *writes* its answer, a parser reads the
  letter. A word that is not a letter is wrong, even if the letters' ranking was right.

The options' log-probabilities come from ``llmlab.evaluation.loglikelihood`` (computed as
lm-evaluation-harness does, each prompt read once): ``cloze_requests`` / ``letter_requests``
build the (prompt, options) pairs, ``batch_choice_logprobs`` scores them, and the scorers here
turn the numbers into picks: ``score_acc``, ``score_acc_norm``, ``score_letter`` and
``score_generate`` (texts the model wrote, read by ``parse_letter``), each an ``MCResult``
(per-item correctness, accuracy, 95% CI). Also: ``cloze_prompt``, ``letter_prompt``,
``few_shot_prefix`` (solved examples first, lm-eval's layout), ``permute`` (the same item with
its options reordered), ``gold_loss``, ``chance``.

Leaves out: ``acc_mutual_info`` (subtract each option's log-probability without the question),
byte-length normalisation (``acc_bytes``), chat templates (lm-eval's ``--apply_chat_template``),
truncating contexts longer than the model's window (too long is an error here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from llmlab.evaluation.loglikelihood import ChoiceLogprobs, Request
from llmlab.evaluation.metrics import bootstrap_ci, wilson_ci

LETTERS = "ABCDEFGHIJ"
CLOZE_TEMPLATE = "Question: {question}\nAnswer:"  # lm-eval's ARC template
TARGET_DELIMITER = " "  # lm-eval puts it between the prompt and every option
FEWSHOT_DELIMITER = "\n\n"  # lm-eval joins solved examples and the question with it
MC_INSTRUCTION = "The following are multiple choice questions (with answers).\n\n"  # MMLU's


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice question: ``choices[answer]`` is right. ``id`` names it in reports."""

    question: str
    choices: tuple[str, ...]
    answer: int
    id: str = ""

    def __post_init__(self) -> None:
        if len(self.choices) < 2:
            raise ValueError(f"Item {self.id!r} needs at least 2 choices, got {len(self.choices)}.")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(
                f"Item {self.id!r}: answer {self.answer} is not an index of its "
                f"{len(self.choices)} choices."
            )


# --- prompts -----------------------------------------------------------------------------------


def cloze_prompt(item: MCItem, template: str = CLOZE_TEMPLATE) -> str:
    """The question alone, options not shown (lm-eval's ARC style): ``Question: ...\\nAnswer:``."""
    return template.format(question=item.question.strip())


def letter_prompt(item: MCItem, labels: str = LETTERS) -> str:
    """The question with lettered options, as lm-eval's MMLU template writes it::

    <question>
    A. <choice 0>
    B. <choice 1>
    ...
    Answer:
    """
    if len(item.choices) > len(labels):
        raise ValueError(f"Item {item.id!r} has more choices than labels ({labels!r}).")
    lines = [item.question.strip()]
    lines += [f"{labels[k]}. {c}" for k, c in enumerate(item.choices)]
    return "\n".join(lines) + "\nAnswer:"


def solved(item: MCItem, style: str) -> str:
    """One worked example: the prompt followed by its right answer (text or letter)."""
    if style == "cloze":
        return cloze_prompt(item) + TARGET_DELIMITER + item.choices[item.answer]
    if style == "letter":
        return letter_prompt(item) + TARGET_DELIMITER + LETTERS[item.answer]
    raise ValueError(f"style must be 'cloze' or 'letter', got {style!r}.")


def few_shot_prefix(shots: Sequence[MCItem], style: str, instruction: str = "") -> str:
    """``instruction`` + solved examples, each followed by a blank line (lm-eval's layout)."""
    return instruction + "".join(solved(s, style) + FEWSHOT_DELIMITER for s in shots)


def permute(item: MCItem, order: Sequence[int]) -> MCItem:
    """The same item with its options in another order: ``choices[order[0]]`` comes first."""
    order = list(order)
    if sorted(order) != list(range(len(item.choices))):
        raise ValueError(f"order must be a permutation of 0..{len(item.choices) - 1}, got {order}.")
    return MCItem(
        question=item.question,
        choices=tuple(item.choices[k] for k in order),
        answer=order.index(item.answer),
        id=item.id,
    )


# --- scores ------------------------------------------------------------------------------------


@dataclass
class MCResult:
    """One way of scoring a list of items: what was picked and whether it was right.

    ``correct[i]`` is 1/0 (or a share, for a baseline that splits ties); ``predictions[i]`` the
    chosen option (-1: no answer could be read). ``scores[i]`` the numbers it chose from, if any.
    """

    name: str
    correct: list[float]
    predictions: list[int]
    scores: list[list[float]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.correct)

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / self.n if self.n else float("nan")

    def ci(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wilson interval when every item is right or wrong; percentile bootstrap otherwise."""
        if all(c in (0, 1) for c in self.correct):
            return wilson_ci(int(sum(self.correct)), self.n, confidence)
        return bootstrap_ci(self.correct, confidence=confidence)

    def __str__(self) -> str:
        low, high = self.ci()
        return f"{self.name:<14} {self.accuracy:6.1%}  95% CI [{low:.1%}, {high:.1%}]  n={self.n}"


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda k: (values[k], -k))  # ties: the first, as np.argmax


def _result(name: str, items: Sequence[MCItem], scores: Sequence[Sequence[float]]) -> MCResult:
    if len(scores) != len(items):
        raise ValueError(f"Got {len(scores)} score lists for {len(items)} items.")
    preds = [_argmax(s) for s in scores]
    return MCResult(
        name=name,
        correct=[float(p == it.answer) for p, it in zip(preds, items, strict=True)],
        predictions=preds,
        scores=[list(s) for s in scores],
    )


def cloze_requests(items: Sequence[MCItem], prefix: str = "") -> list[Request]:
    """(context, options) per item for ``acc``/``acc_norm``: each option after a space."""
    return [(prefix + cloze_prompt(it), [TARGET_DELIMITER + c for c in it.choices]) for it in items]


def letter_requests(
    items: Sequence[MCItem], prefix: str = MC_INSTRUCTION, labels: str = LETTERS
) -> list[Request]:
    """(context, letters) per item for the letter scorer: " A", " B", ..."""
    return [
        (
            prefix + letter_prompt(it, labels),
            [TARGET_DELIMITER + labels[k] for k in range(len(it.choices))],
        )
        for it in items
    ]


def score_acc(items: Sequence[MCItem], logprobs: Sequence[Sequence[float]]) -> MCResult:
    """lm-eval ``acc``: the option with the largest summed log-probability (``cloze_requests``)."""
    return _result("acc", items, logprobs)


def score_acc_norm(items: Sequence[MCItem], logprobs: Sequence[Sequence[float]]) -> MCResult:
    """lm-eval ``acc_norm``: the largest log-probability per **character** of the option text
    (``len(choice)``, the space in front not counted), exactly as the harness divides."""
    per_char = [
        [lp / len(c) for lp, c in zip(row, it.choices, strict=True)]
        for row, it in zip(logprobs, items, strict=True)
    ]
    return _result("acc_norm", items, per_char)


def score_letter(items: Sequence[MCItem], logprobs: Sequence[Sequence[float]]) -> MCResult:
    """Original-MMLU style: the letter with the largest log-probability among the options'
    letters only (``letter_requests``); a more likely word outside them does not count."""
    return _result("letter", items, logprobs)


_LETTER_AT_START = re.compile(r"^[\s(\[*\"']*([A-Z])(?![A-Za-z])")


def parse_letter(text: str, labels: str) -> int:
    """Index of the option letter a generated answer starts with, -1 if none: HELM's rule
    made a little lenient (``" B"``, ``"B."``, ``"(B) ..."`` all read as B; ``"The answer"``
    and a letter that is not an option do not)."""
    m = _LETTER_AT_START.match(text)
    if m is None or m.group(1) not in labels:
        return -1
    return labels.index(m.group(1))


def score_generate(
    items: Sequence[MCItem], texts: Sequence[str], labels: str = LETTERS
) -> MCResult:
    """HELM style: the model *wrote* ``texts[i]`` after item i's letter prompt (greedy); the
    letter it starts with is its answer (``parse_letter``), and an unreadable answer is wrong.

    The texts can come from any model: ``batch_choice_logprobs(..., generate=n).generated``
    here, or a text-only API called with ``[c for c, _ in letter_requests(items)]``.
    """
    texts = list(texts)
    if len(texts) != len(items):
        raise ValueError(f"Got {len(texts)} generated texts for {len(items)} items.")
    preds = [parse_letter(t, labels[: len(it.choices)]) for t, it in zip(texts, items, strict=True)]
    return MCResult(
        name="generate",
        correct=[float(p == it.answer) for p, it in zip(preds, items, strict=True)],
        predictions=preds,
    )


def gold_loss(items: Sequence[MCItem], scored: ChoiceLogprobs) -> list[float]:
    """Per item: the right option's negative log-likelihood per token (its loss, in nats)."""
    return [
        -scored.logprobs[i][it.answer] / scored.lengths[i][it.answer] for i, it in enumerate(items)
    ]


def chance(items: Sequence[MCItem]) -> float:
    """Expected accuracy of guessing uniformly: the mean of 1 / (number of choices)."""
    return sum(1 / len(it.choices) for it in items) / len(items) if items else math.nan
