"""Quote-constrained decoding: the model may only copy one of the given passages, word for word.

The model reads the question and a few numbered options (pieces of your documents) and writes
its answer, but at every step only the tokens that continue one of the options are allowed; the
others get probability zero. So whatever it writes is a quote, and the citation follows from the
option it copied. The model does what a 135M model can do (pick what to copy); the constraint
does the rest (it cannot invent a flag or a file name).

Covers ``quote(lm, question, options)``: greedy constrained decoding over the options' token
sequences. Once only one option still matches what was written, the rest of it is forced, so
decoding stops there: the cost is one prefill plus a few steps, however long the quote.
``QuoteChoice`` says which option was copied, after how many free steps, and the log-probability
of the tokens the model chose (under its unconstrained distribution: how willingly it copied).

Leaves out: copying a span that starts mid-option or joins two options (the options are whole
answer units, ``llmlab.rag.extractive.answer_units``), sampling, and batching several questions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmlab.decoding.chat_template import chat_token_ids
from llmlab.decoding.kv_cache import cached_forward
from llmlab.rag.answering import format_passages

if TYPE_CHECKING:
    from llmlab.runtime.models import LM

INSTRUCTION = (
    "Answer the question by copying, word for word, the one numbered passage that answers it. "
    "Do not write the number."
)


@dataclass
class QuoteChoice:
    """The option the model copied (0-based), the steps it decided, and their log-probability."""

    index: int
    steps: int  # tokens decoded before only one option was left
    logprob: float  # sum over those steps of log p(token) under the unconstrained model
    prompt_tokens: int


def quote_prompt(lm: LM, question: str, options: Sequence[str]) -> list[int]:
    """The chat the model reads: the instruction, the numbered options, the question."""
    user = f"Passages:\n{format_passages(options)}\n\nQuestion: {question}"
    messages = [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": user}]
    return chat_token_ids(lm, messages)


def quote(lm: LM, question: str, options: Sequence[str], max_steps: int = 64) -> QuoteChoice:
    """The option the model copies when it may write nothing else (greedy).

    ``quote(lm, "How do I install it?", ["Run pip install x.", "It is fast."]).index -> 0``
    (with the bundled model: the option that answers). One option: it is the answer, no model call.
    """
    import torch

    options = [" ".join(o.split()) for o in options]
    if not options or not all(options):
        raise ValueError("quote() needs at least one non-empty option to copy.")
    if len(options) == 1:
        return QuoteChoice(index=0, steps=0, logprob=0.0, prompt_tokens=0)
    ids = quote_prompt(lm, question, options)
    seqs = [lm.tokenizer(o, add_special_tokens=False)["input_ids"] for o in options]
    alive = list(range(len(options)))
    logprob, steps, cache = 0.0, 0, None
    x = torch.tensor([ids])  # (1, T): the whole prompt first, then one token at a time
    while len(alive) > 1 and steps < max_steps:
        out, cache = cached_forward(lm.model, x, cache, logits_to_keep=1)
        logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # (V,)
        allowed = {seqs[i][steps] for i in alive if steps < len(seqs[i])}
        if not allowed:  # every live option ended together: identical token sequences
            break
        token = max(allowed, key=lambda t: logp[t].item())  # greedy among the allowed tokens
        logprob += logp[token].item()
        alive = [i for i in alive if steps < len(seqs[i]) and seqs[i][steps] == token]
        steps += 1
        x = torch.tensor([[token]])  # (1, 1)
    return QuoteChoice(
        index=alive[0],
        steps=steps,
        logprob=logprob if math.isfinite(logprob) else -1e9,
        prompt_tokens=len(ids),
    )
