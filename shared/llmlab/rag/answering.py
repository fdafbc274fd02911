"""Retrieval-augmented generation: put the retrieved passages in the prompt, then answer from them.

Covers:
- ``build_prompt(question, passages, lm=...)``: the chat the model reads -- an instruction
  ("answer from the passages, cite your source as [n]"), the passages numbered [1], [2], ...,
  the question -- as exact text, plus its token count against the context budget of Phase 2.
  Too long -> ``ContextWindowError`` saying by how many tokens, and which passages to drop.
  No passages -> a closed-book prompt (the model answers from its weights alone).
- Answer format, where a small model gains most: ``prime`` starts the answer for the model
  ("Answer:"), a stop rule ends it at the first newline, ``extract_answer`` pulls the short answer
  out of chatty output ("The article described as ... is X." -> "X").
- ``answer(lm, questions, passages)``: build every prompt, generate in batches with
  ``llmlab.decoding.batching.generate_batch`` (sorted by length: less padding), extract answers and
  citations. ``extract_citations("Paris [2][3]") -> [2, 3]``.

Leaves out: retrieval itself (``llmlab.search.retrievers``), scoring (``llmlab.evaluation.metrics``), checking
that a citation really supports the sentence (needs an entailment model; evaluation.ipynb
uses a word-overlap proxy), multi-turn chat and streaming (``llmlab.chat.local``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmlab.decoding.batching import generate_batch
from llmlab.decoding.chat_template import chat_text
from llmlab.decoding.context_window import ContextWindowError

if TYPE_CHECKING:
    from llmlab.runtime.models import LM

INSTRUCTION = (
    "Answer the question using only the numbered passages. Reply with the short answer only, "
    "then cite the passage you used as [n]."
)
CLOSED_BOOK_INSTRUCTION = (
    "Answer the question from what you know. Reply with the short answer only."
)
PRIME = "Answer:"  # the start of the answer, written for the model: it continues from here
STOP = ("\n",)  # the stop rule: a short answer is one line


@dataclass
class RagPrompt:
    """What the model reads for one question, and what it costs in tokens."""

    question: str
    passages: list[str]
    text: str  # the exact prompt text (chat template applied, prime appended)
    n_tokens: int  # tokens of ``text``: what prefill reads
    budget: int  # most tokens the prompt may take (context window - max_new_tokens, or yours)
    passage_tokens: list[int] = field(default_factory=list)  # tokens each passage adds


@dataclass
class RagAnswer:
    """One generated answer: the raw output, the short answer pulled from it, its citations."""

    question: str
    prompt: RagPrompt
    raw: str  # what the model wrote (after the prime)
    answer: str  # extract_answer(raw)
    citations: list[int]  # passage numbers cited in ``raw`` that exist (1-based)
    stop_reason: str


def format_passages(passages: Sequence[str]) -> str:
    """``format_passages(["A.", "B."]) -> "[1] A.\\n[2] B."``: numbered so the answer can cite."""
    return "\n".join(f"[{i}] {' '.join(p.split())}" for i, p in enumerate(passages, start=1))


def _user_text(question: str, passages: Sequence[str]) -> str:
    if not passages:
        return f"Question: {question}"
    return f"Passages:\n{format_passages(passages)}\n\nQuestion: {question}"


def _check(question: str, passages: Sequence[str]) -> list[str]:
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"The question is empty ({question!r}): ask something.")
    if isinstance(passages, str):
        raise TypeError("passages must be a list of strings (one per passage), not one string.")
    passages = list(passages)
    bad = [i + 1 for i, p in enumerate(passages) if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(
            f"Passages {bad} are empty or not text: drop them before building the prompt."
        )
    return passages


def build_prompt(
    question: str,
    passages: Sequence[str],
    *,
    lm: LM,
    instruction: str | None = None,
    prime: str = PRIME,
    budget: int | None = None,
    max_new_tokens: int = 32,
) -> RagPrompt:
    """The RAG prompt for ``question`` over ``passages`` (empty list: closed book), counted in tokens.

    ``budget`` defaults to what the context window leaves after ``max_new_tokens``; pass a
    smaller one to keep prefill fast. Raises ``ContextWindowError`` if the prompt does not fit.
    """
    passages = _check(question, passages)
    if instruction is None:
        instruction = INSTRUCTION if passages else CLOSED_BOOK_INSTRUCTION
    window = lm.context_length - max_new_tokens
    budget = window if budget is None else budget
    if not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive number of tokens, got {budget!r}.")
    budget = min(budget, window)

    def render(ps: Sequence[str]) -> str:
        messages = [
            {"role": "system", "content": instruction},
            {"role": "user", "content": _user_text(question, ps)},
        ]
        return chat_text(lm, messages) + prime

    def count(text: str) -> int:
        return len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    text = render(passages)
    n_tokens = count(text)
    sizes = [
        count(render(passages[: i + 1])) - count(render(passages[:i])) for i in range(len(passages))
    ]  # what passage i+1 adds, numbering included
    if n_tokens > budget:
        raise ContextWindowError(_overflow_advice(n_tokens, budget, window, sizes, max_new_tokens))
    return RagPrompt(
        question=question,
        passages=passages,
        text=text,
        n_tokens=n_tokens,
        budget=budget,
        passage_tokens=sizes,
    )


def _overflow_advice(
    n_tokens: int, budget: int, window: int, sizes: list[int], max_new: int
) -> str:
    over = n_tokens - budget
    limit = (
        f"the budget of {budget} tokens"
        if budget < window
        else f"the {window} tokens the context window leaves after max_new_tokens={max_new}"
    )
    head = f"The RAG prompt is {n_tokens} tokens, {over} over {limit}. "
    if not sizes:
        return head + "There are no passages to drop: shorten the question or the instruction."
    per = ", ".join(f"[{i}] {s}" for i, s in enumerate(sizes, start=1))
    freed, drop = 0, 0
    for s in reversed(sizes):  # the last passages are the lowest ranked: drop those first
        freed, drop = freed + s, drop + 1
        if freed >= over:
            break
    if freed >= over:
        cut = (
            f"Keep the first {len(sizes) - drop} passages (drop the last {drop}: they free {freed})"
        )
    else:
        cut = "Even with no passages it does not fit"
    return (
        head + f"Tokens per passage: {per}. {cut}, or split passages into shorter chunks "
        f"so each adds fewer tokens, or lower max_new_tokens."
    )


CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def extract_citations(text: str, n_passages: int | None = None) -> list[int]:
    """Passage numbers cited as ``[n]`` or ``[n, m]``, first-seen order, each once.

    ``extract_citations("Paris [2], France [1, 2]") -> [2, 1]``. With ``n_passages``, numbers
    that name no passage (``[7]`` of 3) are dropped: a made-up citation cites nothing.
    """
    seen: list[int] = []
    for group in CITATION.findall(text):
        for num in (int(x) for x in group.split(",")):
            ok = n_passages is None or 1 <= num <= n_passages
            if ok and num not in seen:
                seen.append(num)
    return seen


_LEADS = re.compile(
    r"^(?:answer\s*:|the (?:short )?answer is|the article (?:described as|about) .*? is"
    r"|the (?:wikipedia )?article is|it is|this is)\s*",
    re.IGNORECASE,
)


_COPULA = re.compile(r"^(.+?)\s+(?:is|was|are|were)\s+(?:a|an|the|one)\b")


def extract_answer(text: str) -> str:
    """The short answer inside a model's reply: first line, lead-in phrases, citations, quotes and
    a final full stop removed; from "X is a ..." only the subject X (at most 8 words) is kept.
    ``extract_answer('The answer is "Paris" [1].') -> 'Paris'``.
    A heuristic: it cannot rescue an answer that is not there."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    line = CITATION.sub("", line).strip()
    for _ in range(2):  # "Answer: The answer is X"
        line = _LEADS.sub("", line).strip()
    line = line.strip(" *\"'`“”")
    subject = _COPULA.match(
        line
    )  # "The alligator snapping turtle is a large species..." -> subject
    if subject and len(subject.group(1).split()) <= 8:
        line = subject.group(1)
    if line.endswith(".") and not re.search(r"\b[A-Z]\.$|\.\.\.$", line):
        line = line[:-1]
    return line.strip(" *\"'`“”")


def answer(
    lm: LM,
    questions: Sequence[str],
    passages: Sequence[Sequence[str]] | None = None,
    *,
    instruction: str | None = None,
    prime: str = PRIME,
    stop: Sequence[str] = STOP,
    max_new_tokens: int = 16,
    budget: int | None = None,
    batch_size: int = 16,
) -> list[RagAnswer]:
    """Answer every question from its passages (``passages[i]`` for ``questions[i]``; None: closed book).

    Greedy, batched through ``generate_batch`` (prompts sorted by length so a batch pads little).
    ``prime=""`` and ``stop=()`` show the raw chatty answer; ``extract_answer`` is applied either way.
    """
    questions = list(questions)
    if not questions:
        raise ValueError("questions is empty: give at least one question.")
    passages = [[] for _ in questions] if passages is None else [list(p) for p in passages]
    if len(passages) != len(questions):
        raise ValueError(
            f"Got {len(questions)} questions but {len(passages)} passage lists: one each."
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
    prompts = [
        build_prompt(
            q,
            ps,
            lm=lm,
            instruction=instruction,
            prime=prime,
            budget=budget,
            max_new_tokens=max_new_tokens,
        )
        for q, ps in zip(questions, passages, strict=True)
    ]
    order = sorted(
        range(len(prompts)), key=lambda i: prompts[i].n_tokens
    )  # similar lengths together
    results: list[RagAnswer | None] = [None] * len(prompts)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        gens = generate_batch(
            lm,
            [prompts[i].text for i in batch],
            max_new_tokens=max_new_tokens,
            temperature=0.0,
            stop=stop,
        )
        for i, gen in zip(batch, gens, strict=True):
            p = prompts[i]
            results[i] = RagAnswer(
                question=p.question,
                prompt=p,
                raw=gen.text,
                answer=extract_answer(gen.text),
                citations=extract_citations(gen.text, len(p.passages)),
                stop_reason=gen.stop_reason,
            )
    return results  # type: ignore[return-value]
