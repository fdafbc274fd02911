"""How a language model writes: next-token probabilities and the generation loop.

Covers:
- ``next_token_logits`` / ``next_token_probs``: one forward pass, the scores at the last
  position, softmax -> a probability for every token of the vocabulary.
- ``generate``: the loop for one prompt, plain enough to read in one sitting -- forward, pick a
  token, append, repeat -- with a KV cache (``llmlab.decoding.kv_cache``), the sampling knobs
  of ``llmlab.decoding.sampling``, a private seeded random stream, stop at end-of-sequence (or
  a stop string), and a ``Step`` per token. This is the loop next-token-prediction.ipynb writes.
- ``record_step`` / ``stop_text`` / ``check_candidates``: the record of one chosen token; a
  text cut at a stop string; the one check of ``n_candidates`` (shared with
  ``llmlab.decoding.fast_generation`` and ``llmlab.decoding.batching``).
- ``token_surprisals`` / ``perplexity``: how surprised the model is by a text.
- Every function refuses a request longer than the context window and says what to cut
  (``check_fits`` / ``ContextWindowError``, from ``llmlab.decoding.context_window``).

Leaves out: what serving engines add to the loop -- constraints with jump-forward, a prompt
cache, repetition/frequency/presence penalties -- which ``fast_generation.fast_generate`` adds
beside this loop (tested to write the same tokens), many prompts at once
(``llmlab.decoding.batching``), beam search, speculative decoding, streaming callbacks and
GPU/half precision. Greedy output equals transformers' ``generate(do_sample=False)``; sampled
outputs match it only in distribution (the random numbers are drawn differently).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmlab.decoding.chat_template import Prompt, encode_prompt, stop_token_ids
from llmlab.decoding.context_window import check_fits
from llmlab.decoding.kv_cache import cached_forward
from llmlab.decoding.sampling import (
    apply_temperature,
    check_settings,
    entropy,
    random_stream,
    sampling_distribution,
)
from llmlab.runtime.threads import use_threads

if TYPE_CHECKING:
    import torch

    from llmlab.runtime.models import LM


@dataclass
class Candidate:
    """One possible next token and its probability. ``kept`` is False if a filter cut it."""

    token: str
    token_id: int
    prob: float
    kept: bool = True


@dataclass
class Step:
    """One step of generation.

    ``prob``, ``candidates`` and ``entropy`` (bits) describe the model's own distribution
    (temperature 1, nothing cut): what the model believed. ``sampled_prob`` is the chosen token's
    probability in the distribution actually drawn from (after penalties, temperature, filters).
    """

    token_id: int
    token: str
    prob: float
    candidates: list[Candidate]
    entropy: float
    sampled_prob: float = 1.0


@dataclass
class Generation:
    """What ``generate`` wrote: the new tokens only (the end-of-sequence token included if hit)."""

    token_ids: list[int]
    text: str
    steps: list[Step]
    prompt_ids: list[int] = field(default_factory=list)
    stop_reason: str = "length"  # "eos" (model said done), "stop" (a stop string), "length",
    # or "constraint" (the constraint is complete: nothing but end-of-sequence could follow)


def next_token_logits(lm: LM, prompt: Prompt, chat: bool = False) -> torch.Tensor:
    """The model's raw scores for the token after ``prompt``: shape ``(vocab_size,)``."""
    import torch

    ids = encode_prompt(lm, prompt, chat=chat)
    check_fits(lm, len(ids), 0)
    with torch.inference_mode(), use_threads(len(ids)):
        out = lm.model(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1)
    return out.logits[0, -1].float()  # (V,)


def next_token_probs(
    lm: LM, prompt: Prompt, k: int = 10, temperature: float = 1.0, chat: bool = False
) -> list[Candidate]:
    """The ``k`` most likely next tokens: softmax over the last position's logits.

    ``next_token_probs(lm, "The capital of France is", k=1)[0].token -> ' Paris'``.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k (how many candidates to show) must be an integer >= 1, got {k!r}.")
    probs = apply_temperature(next_token_logits(lm, prompt, chat=chat), temperature)  # (V,)
    return top_candidates(lm, probs, k)


def top_candidates(lm: LM, probs: torch.Tensor, k: int, keep: Any = None) -> list[Candidate]:
    """The ``k`` most likely tokens of ``probs`` ``(V,)``, marked ``kept`` by the mask ``keep``."""
    import torch

    top = torch.topk(probs, min(k, probs.shape[-1]))
    return [
        Candidate(
            token=lm.tokenizer.decode([i]),
            token_id=i,
            prob=float(p),
            kept=True if keep is None else bool(keep[i]),
        )
        for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
    ]


def record_step(
    lm: LM, probs: torch.Tensor, token: int, dist: Any, n_candidates: int, bits: float | None = None
) -> Step:
    """The record of one chosen token. ``probs`` ``(V,)``: the model's; ``dist``: drawn from;
    ``bits``: the entropy of ``probs`` if already computed (a batch computes all rows at once)."""
    keep = None if dist is None else dist > 0  # (V,) tokens the filters left in
    candidates = top_candidates(lm, probs, n_candidates, keep) if n_candidates else []
    sampled = 1.0 if dist is None else float(dist[token])
    return Step(
        token_id=token,
        token=lm.tokenizer.decode([token]),
        prob=float(probs[token]),
        candidates=candidates,
        entropy=entropy(probs) if bits is None else bits,
        sampled_prob=sampled,
    )


def check_candidates(n_candidates: int) -> None:
    """Raise ``ValueError`` unless ``n_candidates`` (candidates recorded per step) is an int >= 1."""
    if not isinstance(n_candidates, int) or n_candidates < 1:
        raise ValueError(f"n_candidates must be an integer >= 1, got {n_candidates!r}.")


def stop_text(lm: LM, ids: list[int], stop: str | Sequence[str]) -> str | None:
    """The text of ``ids`` cut before the first stop string, or None if no stop string appears."""
    text = lm.tokenizer.decode(ids, skip_special_tokens=True)
    cuts = [text.index(s) for s in ([stop] if isinstance(stop, str) else stop) if s and s in text]
    return text[: min(cuts)] if cuts else None


def generate(
    lm: LM,
    prompt: Prompt,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    seed: int | None = None,
    chat: bool = False,
    use_cache: bool = True,
    n_candidates: int = 10,
    stop: str | Sequence[str] = (),
) -> Generation:
    """Write up to ``max_new_tokens`` tokens after ``prompt``: forward, pick, append, repeat.

    ``temperature=0`` is greedy (always the most likely token); otherwise the token is drawn from
    ``sampling_distribution`` with a private random stream: the same ``seed``, the same text.
    ``use_cache=False`` re-reads the whole sequence every step (slow; for comparison). ``stop``:
    strings that end the answer (the text is cut before them). Constraints, penalties and a
    prompt cache: ``llmlab.decoding.fast_generation.fast_generate`` (the same loop, plus those).
    """
    import torch

    check_settings(temperature, top_k, top_p, min_p, max_new_tokens)
    check_candidates(n_candidates)
    prompt_ids = encode_prompt(lm, prompt, chat=chat)
    check_fits(lm, len(prompt_ids), max_new_tokens)  # prompt + answer must fit in the window
    stop_ids, rng = stop_token_ids(lm), random_stream(seed)

    ids, new_ids, steps = list(prompt_ids), [], []  # prompt + new tokens; new tokens; records
    cache, feed = None, torch.tensor([prompt_ids])  # (1, T): the first pass reads the prompt
    stop_reason, text = "length", None
    while len(new_ids) < max_new_tokens:
        if use_cache:  # feed only what the cache has not seen; it then holds all of `ids`
            out, cache = cached_forward(lm.model, feed, cache, logits_to_keep=1)
        else:  # no memory: read the whole sequence again
            with torch.inference_mode(), use_threads(len(ids)):
                out = lm.model(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1)
        logits = out.logits[0, -1].float()  # (V,) a score for every token of the vocabulary
        probs = torch.softmax(logits, dim=-1)  # (V,) what the model believes
        if temperature == 0:
            next_id, dist = int(logits.argmax()), None  # greedy: the most likely token
        else:
            dist = sampling_distribution(logits, temperature, top_k, top_p, min_p)  # (V,)
            next_id = int(torch.multinomial(dist, 1, generator=rng))  # roll the dice
        steps.append(record_step(lm, probs, next_id, dist, n_candidates))
        ids.append(next_id)
        new_ids.append(next_id)
        if next_id in stop_ids:
            stop_reason = "eos"
            break
        if stop and (text := stop_text(lm, new_ids, stop)) is not None:
            stop_reason = "stop"
            break
        feed = torch.tensor([[next_id]])  # (1, 1): next time, only the new token is read

    if text is None:
        text = lm.tokenizer.decode(new_ids, skip_special_tokens=True)
    return Generation(
        token_ids=new_ids, text=text, steps=steps, prompt_ids=prompt_ids, stop_reason=stop_reason
    )


def token_surprisals(lm: LM, text: str | Sequence[int]) -> list[tuple[str, float]]:
    """Each token of ``text`` (after the first) with its surprisal -log2 p(token | before), in bits.

    ``text`` may also be token ids (e.g. a chat prompt's ids + an answer's ids).
    """
    import torch

    ids = encode_prompt(lm, text)
    if len(ids) < 2:
        raise ValueError("Surprisal needs a text of at least 2 tokens.")
    check_fits(lm, len(ids), 0)
    with torch.inference_mode(), use_threads(len(ids)):
        logits = lm.model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]  # (T, V)
    logp = torch.log_softmax(logits.float(), dim=-1)[:-1]  # (T-1, V): predictions of tokens 1..
    target = torch.tensor(ids[1:])  # (T-1,)
    nll = -logp[torch.arange(len(target)), target] / math.log(2)  # (T-1,) bits
    return [(lm.tokenizer.decode([i]), float(s)) for i, s in zip(ids[1:], nll, strict=True)]


def perplexity(lm: LM, text: str | Sequence[int]) -> float:
    """2 ** (mean bits of surprise per token): "as unsure as a fair pick among N tokens"."""
    bits = [s for _, s in token_surprisals(lm, text)]
    return 2 ** (sum(bits) / len(bits))
