"""Prompt engineering as an experiment: build prompt variants, score them on a labelled set.

Covers:
- ``Example`` (an input text and its label) and ``Template`` (instruction, input/answer cues,
  the words each label is answered with, chat template or raw text); ``build_prompt`` puts a
  template, k few-shot examples (in the order given) and one input together.
- ``score_labels``: the model's log-probability of every label's tokens after each prompt. The
  token prefix all prompts share (instruction + examples) is read ONCE and its KV cache reused
  for every item -- the "cached input" providers bill at a discount -- and the items are run as
  batches of similar length (little padding), projected onto the vocabulary only at the positions
  that predict a label. A label of several tokens scores the sum of its tokens' log-probabilities.
- ``accuracy_ci`` / ``summary``: accuracy with a bootstrap 95% interval (``llmlab.evaluation.metrics``).
- ``classify`` (answer = the most likely label: always one of the labels) and
  ``classify_by_generation`` (let the model write, then ``parse_label`` its text: what an app
  that reads free text gets); both return a ``Run`` with accuracy and per-item correctness.
- ``keyword_items``: a task whose answer word is in the input (short Wikipedia descriptions).

Leaves out: calibration, automatic prompt search, and scoring over an HTTP API (most servers do
not return prompt log-probabilities).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from llmlab.decoding.batching import generate_batch
from llmlab.decoding.chat_template import chat_text
from llmlab.decoding.context_window import check_fits
from llmlab.decoding.kv_cache import cache_tensors, cached_forward, make_cache
from llmlab.evaluation.metrics import bootstrap_ci

if TYPE_CHECKING:
    from llmlab.runtime.models import LM


@dataclass(frozen=True)
class Example:
    """One labelled input: ``Example("1968 film by Stanley Kubrick", "film")``."""

    text: str
    label: str


@dataclass(frozen=True)
class Template:
    """How a prompt is laid out. Raw text:

    ``{instruction}\\n\\n{input_prefix}{example}\\n{answer_prefix} {label}\\n\\n ... {input_prefix}{text}\\n{answer_prefix}``

    With ``chat=True`` the instruction is the system message, each example a user/assistant
    turn, and the answer is what the assistant says (``answer_prefix`` is not used).
    ``label_words`` maps a label to the words the model answers with (default: the label).
    """

    instruction: str = ""
    input_prefix: str = "Input: "
    answer_prefix: str = "Answer:"
    label_words: dict[str, str] = field(default_factory=dict)
    chat: bool = False

    def word(self, label: str) -> str:
        return self.label_words.get(label, label)


def build_prompt(template: Template, shots: Sequence[Example], text: str) -> str | list[dict]:
    """The prompt for ``text``: raw text, or chat messages if ``template.chat``."""
    t = template
    if t.chat:
        msgs = [{"role": "system", "content": t.instruction}] if t.instruction else []
        for ex in shots:
            msgs += [
                {"role": "user", "content": t.input_prefix + ex.text},
                {"role": "assistant", "content": t.word(ex.label)},
            ]
        return msgs + [{"role": "user", "content": t.input_prefix + text}]
    parts = [t.instruction] if t.instruction else []
    parts += [f"{t.input_prefix}{ex.text}\n{t.answer_prefix} {t.word(ex.label)}" for ex in shots]
    return "\n\n".join(parts + [f"{t.input_prefix}{text}\n{t.answer_prefix}"])


def prompt_ids(lm: LM, prompt: str | list[dict]) -> list[int]:
    """Token ids of a ``build_prompt`` result (chat: the template with the assistant cue)."""
    text = chat_text(lm, prompt) if isinstance(prompt, list) else prompt
    return list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])


def label_token_ids(lm: LM, template: Template, labels: Sequence[str]) -> list[list[int]]:
    """The tokens each label is answered with (after a space in raw text, as in the examples)."""
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be a non-empty list without repeats, got {list(labels)!r}.")
    space = "" if template.chat else " "
    ids = [
        list(lm.tokenizer(space + template.word(lab), add_special_tokens=False)["input_ids"])
        for lab in labels
    ]
    for lab, toks in zip(labels, ids, strict=True):
        if not toks or not template.word(lab).strip():
            raise ValueError(
                f"Label {lab!r} is answered with {template.word(lab)!r}, which "
                "tokenizes to nothing: give it a non-empty word in label_words."
            )
    if len({tuple(t) for t in ids}) != len(ids):
        raise ValueError("Two labels are answered with the same tokens: make label_words distinct.")
    return ids


@dataclass
class LabelScores:
    """``logprobs[i, j]``: log P(label j's tokens | prompt i), shape (N, L)."""

    logprobs: np.ndarray  # (N, L)
    shared_tokens: int  # prefix tokens read once and reused from the KV cache
    tokens_read: int  # every token the model actually read
    tokens_without_cache: int  # what reading each full prompt (+ label) separately would cost


def _common_prefix(rows: Sequence[Sequence[int]]) -> int:
    n = min(len(r) for r in rows)
    for i in range(n):
        if any(r[i] != rows[0][i] for r in rows):
            return i
    return n


def score_labels(
    lm: LM, prompts: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], batch_size: int = 16
) -> LabelScores:
    """Log-probability of every label after every prompt, from ONE read of the shared prefix.

    ``prompts``: token ids per item; ``labels``: token ids per label. A row is an item's own
    tokens plus a label's tokens but its last (one row per item when every label is one token).
    """
    import torch

    if not prompts:
        raise ValueError("No prompts to score: give at least one item.")
    if not labels or any(len(lab) == 0 for lab in labels):
        raise ValueError("Every label needs at least one token (see label_token_ids).")
    longest = max(map(len, prompts)) + max(map(len, labels))
    check_fits(lm, longest, 1)
    shared = min(_common_prefix(prompts), min(map(len, prompts)) - 1)  # keep >= 1 own token
    prefix_kvs, read = None, shared
    if shared:
        _, cache = cached_forward(
            lm.model, torch.tensor([list(prompts[0][:shared])]), logits_to_keep=1
        )
        prefix_kvs = cache_tensors(cache)  # per layer (1, kv_heads, shared, head_dim)

    rows = sorted(
        {tuple(p[shared:]) + tuple(lab[:-1]) for p in prompts for lab in labels},
        key=lambda r: (len(r), r),
    )  # similar lengths share a batch: little padding
    index = {r: i for i, r in enumerate(rows)}
    tail = max(map(len, labels))  # every row's label predictions sit in its last `tail` positions
    logp_rows: list[torch.Tensor] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        b, width = len(chunk), max(map(len, chunk))
        feed = torch.tensor([[0] * (width - len(r)) + list(r) for r in chunk])  # (b, W) left-padded
        own = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in chunk])  # (b, W)
        mask = torch.cat([torch.ones(b, shared, dtype=own.dtype), own], dim=-1)  # (b, shared + W)
        cache = None
        if prefix_kvs is not None:  # the same prefix for every row: expand, don't copy
            cache = make_cache(
                lm.model,
                [(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)) for k, v in prefix_kvs],
            )
        positions = shared + (own.cumsum(-1) - 1).clamp(min=0)  # (b, W) own tokens from `shared`
        out, _ = cached_forward(
            lm.model, feed, cache, attention_mask=mask, position_ids=positions, logits_to_keep=tail
        )  # the vocabulary projection for `tail` only
        logp_rows += list(torch.log_softmax(out.logits.float(), dim=-1))  # b x (tail, V)
        read += int(own.sum())

    scores = np.zeros((len(prompts), len(labels)))  # (N, L)
    for i, p in enumerate(prompts):
        own = tuple(p[shared:])
        for j, lab in enumerate(labels):
            lp = logp_rows[index[own + tuple(lab[:-1])]]  # (tail, V): the row's last positions
            first = tail - len(lab)  # the position that predicts the label's first token
            scores[i, j] = sum(float(lp[first + t, tok]) for t, tok in enumerate(lab))
    naive = sum(len(p) + len(lab) - 1 for p in prompts for lab in labels)
    return LabelScores(
        logprobs=scores, shared_tokens=shared, tokens_read=read, tokens_without_cache=naive
    )


@dataclass
class Run:
    """The result of one prompt variant on a labelled set."""

    predictions: list[str | None]  # None = the free text named no label
    gold: list[str]
    scores: LabelScores | None = None
    texts: list[str] | None = None  # what the model wrote (classify_by_generation)

    @property
    def correct(self) -> np.ndarray:
        return np.array([p == g for p, g in zip(self.predictions, self.gold, strict=True)], float)

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def accuracy_ci(run: Run, confidence: float = 0.95) -> tuple[float, float, float]:
    """Accuracy and its bootstrap confidence interval: ``(0.9, 0.82, 0.97)``."""
    low, high = bootstrap_ci(run.correct, confidence=confidence)
    return run.accuracy, low, high


def summary(name: str, run: Run) -> str:
    """One line for a table: ``"zero-shot   0.950  [0.900, 1.000]  n=60"``."""
    acc, low, high = accuracy_ci(run)
    return f"{name:<24} {acc:.3f}  [{low:.3f}, {high:.3f}]  n={len(run.gold)}"


def _check_items(items: Sequence[Example], labels: Sequence[str]) -> None:
    if not items:
        raise ValueError("The labelled set is empty: give at least one Example.")
    unknown = sorted({ex.label for ex in items} - set(labels))
    if unknown:
        raise ValueError(
            f"Labels {unknown} are not in labels={list(labels)}: add them or fix the data."
        )


def classify(
    lm: LM,
    template: Template,
    shots: Sequence[Example],
    items: Sequence[Example],
    labels: Sequence[str],
) -> Run:
    """Answer each item with its most likely label (label log-probabilities; never unparseable)."""
    _check_items(items, labels)
    label_ids = label_token_ids(lm, template, labels)
    ids = [prompt_ids(lm, build_prompt(template, shots, ex.text)) for ex in items]
    scores = score_labels(lm, ids, label_ids)
    preds = [labels[j] for j in scores.logprobs.argmax(axis=1)]
    return Run(predictions=preds, gold=[ex.label for ex in items], scores=scores)


def parse_label(text: str, labels: Sequence[str], template: Template | None = None) -> str | None:
    """The label whose word appears first in ``text`` (whole words, any case), else None.

    ``parse_label("It is a city in France.", ["city", "country"]) -> "city"``.
    """
    t = template or Template()
    found = []
    for lab in labels:
        m = re.search(rf"\b{re.escape(t.word(lab))}\b", text, flags=re.IGNORECASE)
        if m:
            found.append((m.start(), lab))
    return min(found)[1] if found else None


def classify_by_generation(
    lm: LM,
    template: Template,
    shots: Sequence[Example],
    items: Sequence[Example],
    labels: Sequence[str],
    max_new_tokens: int = 8,
) -> Run:
    """Let the model write (greedy, batched) and parse a label out of its text."""
    _check_items(items, labels)
    prompts = [build_prompt(template, shots, ex.text) for ex in items]
    gens = generate_batch(lm, prompts, max_new_tokens=max_new_tokens, stop=["\n"])
    texts = [g.text for g in gens]
    preds = [parse_label(t, labels, template) for t in texts]
    return Run(predictions=preds, gold=[ex.label for ex in items], texts=texts)


def confusion_matrix(
    gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]
) -> np.ndarray:
    """Counts ``m[i, j]`` = items of label i answered j; the last column counts "no label"."""
    m = np.zeros((len(labels), len(labels) + 1), dtype=int)  # (L, L + 1)
    col = {lab: j for j, lab in enumerate(labels)}
    for g, p in zip(gold, predicted, strict=True):
        m[col[g], col.get(p, len(labels))] += 1
    return m


def keyword_items(
    articles: Sequence[Any], labels: Sequence[str], per_label: int, seed: int = 0
) -> list[Example]:
    """Descriptions that contain exactly one of the label words, ``per_label`` of each, shuffled.

    The answer is in the input (the model has to find it, not know it): in a 135M model's range.
    """
    pattern = {lab: re.compile(rf"\b{re.escape(lab)}\b", re.IGNORECASE) for lab in labels}
    pools: dict[str, list[Example]] = {lab: [] for lab in labels}
    for a in articles:
        hits = [lab for lab in labels if pattern[lab].search(a.description)]
        if len(hits) == 1:
            pools[hits[0]].append(Example(text=a.description, label=hits[0]))
    rng = random.Random(seed)
    short = [lab for lab in labels if len(pools[lab]) < per_label]
    if short:
        raise ValueError(
            f"Too few descriptions for {short}: lower per_label (max "
            f"{min(len(pools[lab]) for lab in labels)})."
        )
    items = [ex for lab in labels for ex in rng.sample(pools[lab], per_label)]
    rng.shuffle(items)
    return items
