"""How a language model writes: next-token probabilities, sampling, and the generation loop.

Covers:
- ``next_token_logits`` / ``next_token_probs``: one forward pass, the scores at the last position,
  softmax -> a probability for every token in the vocabulary.
- The sampling knobs as small pure functions on one distribution: ``apply_temperature``,
  ``filter_top_k``, ``filter_top_p``, ``filter_min_p`` (each returns a *mask* of the tokens it
  keeps, so a picture can grey out the ones it cuts), ``entropy`` and ``sampling_distribution``.
- ``generate``: the whole loop written out -- forward, pick a token, append, repeat -- with a
  KV cache (the model hands back its keys/values so the past is never recomputed), stop at
  end-of-sequence, seeded sampling, and a record of every step (candidates, entropy).
- ``sample_many``: several samples of one prompt at once, as a batch (for side-by-side comparisons).
- ``encode_prompt`` (plain text or chat template), ``check_fits`` (the context-window error),
  ``perplexity`` (how surprised the model is by a text) and the ``llmlab explore`` command.

Leaves out: batching several prompts, beam search, speculative decoding, streaming, and
GPU/half precision. Temperature 0 means greedy and gives exactly what transformers'
``model.generate(do_sample=False)`` gives; sampled outputs match transformers only in
distribution (the random numbers are drawn differently).
"""

from __future__ import annotations

import argparse
import inspect
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from llmlab.models import LM

# A prompt is plain text, a chat (list of {"role", "content"} messages) or token ids.
Prompt = str | Sequence[dict] | Sequence[int]


# --- records ----------------------------------------------------------------------------------


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
    """The result of ``generate``: the new tokens only (the end-of-sequence token included if hit)."""

    token_ids: list[int]
    text: str
    steps: list[Step]
    prompt_ids: list[int] = field(default_factory=list)
    stop_reason: str = "length"  # "eos" (the model said it was done) or "length" (max_new_tokens)


class ContextWindowError(ValueError):
    """Prompt + tokens to generate do not fit in the model's context window."""


# --- prompts ----------------------------------------------------------------------------------


def encode_prompt(lm: LM, prompt: Prompt, chat: bool = False) -> list[int]:
    """Token ids the model will see. ``chat=True`` wraps the prompt in the chat template.

    ``prompt`` may be text, a list of chat messages (``[{"role": "user", "content": ...}]``,
    implies ``chat``) or a list of token ids (used as is).
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("The prompt is empty: give at least one non-blank character.")
        if not chat:
            return list(lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        messages = [{"role": "user", "content": prompt}]
    else:
        items = list(prompt)
        if not items:
            raise ValueError("The prompt is empty: give text, chat messages or token ids.")
        if all(isinstance(i, int) for i in items):
            if chat:
                raise ValueError("chat=True needs text or messages, not token ids.")
            vocab = len(lm.tokenizer)
            bad = [i for i in items if not 0 <= i < vocab]
            if bad:
                raise ValueError(f"Token ids must be in [0, {vocab}); got {bad[:5]}.")
            return items
        if not all(isinstance(m, dict) and "role" in m and "content" in m for m in items):
            raise ValueError(
                "A list prompt must be token ids or chat messages like "
                '[{"role": "user", "content": "Hi"}].'
            )
        messages = items
    text = chat_text(lm, messages)
    return list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])


def chat_text(lm: LM, messages: Prompt, add_generation_prompt: bool = True) -> str:
    """The exact text the chat template builds (special tokens included), ready for the answer."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return lm.tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
    )


def check_fits(lm: LM, n_prompt_tokens: int, max_new_tokens: int) -> None:
    """Raise ``ContextWindowError`` if prompt + new tokens exceed ``lm.context_length``."""
    limit = lm.context_length
    total = n_prompt_tokens + max_new_tokens
    if total > limit:
        raise ContextWindowError(
            f"The prompt is {n_prompt_tokens} tokens and you asked for {max_new_tokens} more: "
            f"{total} tokens, beyond {lm.name}'s context window of {limit} tokens. "
            f"Shorten the prompt to at most {max(limit - max_new_tokens, 0)} tokens, lower "
            f"max_new_tokens to at most {max(limit - n_prompt_tokens, 0)}, or drop old turns "
            "(keep the system message and the latest messages)."
        )


def stop_token_ids(lm: LM) -> set[int]:
    """Token ids that end a generation: the tokenizer's and generation config's end-of-sequence."""
    ids: set[int] = set()
    for eos in (
        getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None),
        lm.tokenizer.eos_token_id,
    ):
        if isinstance(eos, int):
            ids.add(eos)
        elif eos is not None:
            ids.update(int(i) for i in eos)
    im_end = lm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != lm.tokenizer.unk_token_id:
        ids.add(im_end)
    return ids


# --- one distribution -------------------------------------------------------------------------


def _as_tensor(x: Any) -> torch.Tensor:
    import torch

    return torch.as_tensor(x, dtype=torch.float32)


def apply_temperature(logits: Any, temperature: float) -> torch.Tensor:
    """Probabilities ``softmax(logits / temperature)``; temperature 0 puts all mass on the argmax.

    ``apply_temperature([2.0, 1.0, 0.0], 1.0) -> [0.665, 0.245, 0.090]``;
    at 0.5 -> ``[0.867, 0.117, 0.016]`` (sharper); at 2.0 -> ``[0.506, 0.307, 0.186]`` (flatter).
    """
    import torch

    _check_temperature(temperature)
    logits = _as_tensor(logits)
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / temperature, dim=-1)


def filter_top_k(probs: Any, k: int) -> torch.Tensor:
    """Mask keeping the ``k`` most likely tokens. ``filter_top_k([.5, .3, .2], 2) -> [T, T, F]``."""
    import torch

    _check_top_k(k)
    probs = _as_tensor(probs)
    k = min(k, probs.shape[-1])
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep.scatter_(-1, torch.topk(probs, k, dim=-1).indices, True)
    return keep


def filter_top_p(probs: Any, p: float) -> torch.Tensor:
    """Mask keeping the smallest set of most likely tokens whose total probability reaches ``p``.

    ``filter_top_p([.5, .3, .2], 0.7) -> [T, T, F]`` (0.5 < 0.7, 0.5 + 0.3 >= 0.7).
    """
    import torch

    _check_top_p(p)
    probs = _as_tensor(probs)
    if p >= 1.0:
        return torch.ones_like(probs, dtype=torch.bool)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass of the tokens ahead
    keep_sorted = mass_before < p  # keep a token while the set before it is still short of p
    keep_sorted[..., 0] = True  # the most likely token always survives
    keep = torch.zeros_like(keep_sorted)
    keep.scatter_(-1, order, keep_sorted)
    return keep


def filter_min_p(probs: Any, min_p: float) -> torch.Tensor:
    """Mask keeping tokens at least ``min_p`` times as likely as the top one.

    ``filter_min_p([.5, .3, .2], 0.5) -> [T, T, F]`` (threshold 0.5 * 0.5 = 0.25).
    """
    _check_min_p(min_p)
    probs = _as_tensor(probs)
    return probs >= min_p * probs.max(dim=-1, keepdim=True).values


def renormalize(probs: Any, keep: Any) -> torch.Tensor:
    """Zero the cut tokens and rescale the kept ones to sum to 1."""
    probs = _as_tensor(probs) * _as_tensor(keep)
    return probs / probs.sum(dim=-1, keepdim=True)


def entropy(probs: Any) -> float:
    """Entropy in bits: 0 = certain; log2(n) = a fair pick among n tokens. ``entropy([.5, .5]) -> 1.0``."""
    import torch

    probs = _as_tensor(probs)
    nz = probs[probs > 0]
    return float(-(nz * torch.log2(nz)).sum())


def sampling_distribution(
    logits: Any,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
) -> torch.Tensor:
    """The distribution ``generate`` draws from: temperature first, then top-k, top-p, min-p."""
    probs = apply_temperature(logits, temperature)
    keep = probs > 0
    if top_k is not None:
        keep &= filter_top_k(probs, top_k)
    if top_p is not None:
        keep &= filter_top_p(probs, top_p)
    if min_p is not None:
        keep &= filter_min_p(probs, min_p)
    return renormalize(probs, keep)


def apply_penalties(
    logits: torch.Tensor,
    context_ids: Sequence[int],
    generated_ids: Sequence[int],
    repetition_penalty: float | None = None,
    frequency_penalty: float = 0.0,
    presence_penalty: float = 0.0,
) -> torch.Tensor:
    """Push down tokens already used (returns new logits; the input is unchanged).

    ``repetition_penalty`` (transformers style, > 1 penalizes): every token of prompt + output has
    its logit divided by it (multiplied if negative). ``frequency_penalty`` / ``presence_penalty``
    (OpenAI API style): subtract ``count * frequency + (count > 0) * presence`` for tokens generated so far.
    """
    import torch

    logits = logits.clone()
    if repetition_penalty is not None and repetition_penalty != 1.0 and context_ids:
        seen = torch.tensor(sorted(set(context_ids)))
        score = logits[seen]
        logits[seen] = torch.where(
            score > 0, score / repetition_penalty, score * repetition_penalty
        )
    if (frequency_penalty or presence_penalty) and generated_ids:
        counts = torch.bincount(torch.tensor(list(generated_ids)), minlength=logits.shape[-1])
        logits -= frequency_penalty * counts + presence_penalty * (counts > 0)
    return logits


# --- the model --------------------------------------------------------------------------------


def cache_kwarg(model: Any) -> str:
    """transformers >= 5.2x calls the KV cache argument ``cache``; older versions ``past_key_values``."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_from_output(out: Any) -> Any:
    """The KV cache a forward pass handed back (``out.cache`` or ``out.past_key_values``)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def next_token_logits(lm: LM, prompt: Prompt, chat: bool = False) -> torch.Tensor:
    """The model's raw scores for the token after ``prompt``: shape ``(vocab_size,)``."""
    import torch

    ids = encode_prompt(lm, prompt, chat=chat)
    check_fits(lm, len(ids), 0)
    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([ids]), use_cache=False)  # logits (1, T, V)
    return out.logits[0, -1].float()  # (V,)


def next_token_probs(
    lm: LM, prompt: Prompt, k: int = 10, temperature: float = 1.0, chat: bool = False
) -> list[Candidate]:
    """The ``k`` most likely next tokens: softmax over the last position's logits.

    ``next_token_probs(lm, "The capital of France is", k=1)[0].token -> ' Paris'``.
    """
    _check_top_k(k, "k")
    probs = apply_temperature(next_token_logits(lm, prompt, chat=chat), temperature)  # (V,)
    return _top_candidates(lm, probs, k)


def _top_candidates(lm: LM, probs: torch.Tensor, k: int, keep: Any = None) -> list[Candidate]:
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
    repetition_penalty: float | None = None,
    frequency_penalty: float = 0.0,
    presence_penalty: float = 0.0,
    use_cache: bool = True,
    n_candidates: int = 10,
) -> Generation:
    """Write up to ``max_new_tokens`` tokens after ``prompt``, one forward pass per token.

    ``temperature=0`` is greedy (always the most likely token). Otherwise the next token is drawn
    from ``sampling_distribution`` with a private ``torch.Generator``: the same ``seed`` gives the
    same text. ``use_cache=False`` re-reads the whole sequence every step (slow; for comparison).
    """
    import torch

    check_settings(temperature, top_k, top_p, min_p, max_new_tokens, repetition_penalty)
    if not isinstance(n_candidates, int) or n_candidates < 1:
        raise ValueError(f"n_candidates must be an integer >= 1, got {n_candidates!r}.")

    prompt_ids = encode_prompt(lm, prompt, chat=chat)
    check_fits(lm, len(prompt_ids), max_new_tokens)
    stop_ids = stop_token_ids(lm)
    rng = torch.Generator()  # our own random stream: never touches torch's global seed
    if seed is not None:
        rng.manual_seed(seed)
    else:
        rng.seed()
    cache_kw = cache_kwarg(lm.model)

    ids = list(prompt_ids)  # everything so far: prompt + new tokens
    new_ids: list[int] = []
    steps: list[Step] = []
    cache = None  # keys/values of every token already read, one entry per layer
    feed = torch.tensor([prompt_ids])  # (1, T): the first pass reads the whole prompt
    stop_reason = "length"
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            if use_cache:
                out = lm.model(
                    input_ids=feed, use_cache=True, logits_to_keep=1, **{cache_kw: cache}
                )
                cache = cache_from_output(out)  # now holds the keys/values of all of `ids`
            else:  # no memory: read the whole sequence again
                out = lm.model(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1)
            logits = out.logits[0, -1].float()  # (V,) scores for the next token
            probs = torch.softmax(logits, dim=-1)  # (V,) what the model believes

            scores = apply_penalties(
                logits, ids, new_ids, repetition_penalty, frequency_penalty, presence_penalty
            )
            if temperature == 0:
                next_id = int(scores.argmax())
                dist = None
            else:
                dist = sampling_distribution(scores, temperature, top_k, top_p, min_p)  # (V,)
                next_id = int(torch.multinomial(dist, 1, generator=rng))

            steps.append(
                Step(
                    token_id=next_id,
                    token=lm.tokenizer.decode([next_id]),
                    prob=float(probs[next_id]),
                    candidates=_top_candidates(
                        lm, probs, n_candidates, keep=None if dist is None else dist > 0
                    ),
                    entropy=entropy(probs),
                    sampled_prob=1.0 if dist is None else float(dist[next_id]),
                )
            )
            ids.append(next_id)
            new_ids.append(next_id)
            if next_id in stop_ids:
                stop_reason = "eos"
                break
            feed = torch.tensor([[next_id]])  # (1, 1): only the new token; the cache has the rest

    text = lm.tokenizer.decode(new_ids, skip_special_tokens=True)
    return Generation(new_ids, text, steps, prompt_ids=list(prompt_ids), stop_reason=stop_reason)


def sample_many(
    lm: LM,
    prompt: Prompt,
    n: int = 10,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    seed: int | None = None,
    chat: bool = False,
) -> list[Generation]:
    """``n`` continuations of one prompt, generated side by side as one batch (steps not recorded).

    The rows share the prompt, so they need no padding; one batched step costs about as much as
    one single step on a CPU. Same ``seed`` -> same list. Penalties are not supported here.
    """
    import torch

    check_settings(temperature, top_k, top_p, min_p, max_new_tokens)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}.")
    prompt_ids = encode_prompt(lm, prompt, chat=chat)
    check_fits(lm, len(prompt_ids), max_new_tokens)
    stop_ids = stop_token_ids(lm)
    rng = torch.Generator()
    if seed is not None:
        rng.manual_seed(seed)
    else:
        rng.seed()
    cache_kw = cache_kwarg(lm.model)

    rows: list[list[int]] = [[] for _ in range(n)]
    done = [False] * n
    cache = None
    feed = torch.tensor([prompt_ids] * n)  # (n, T)
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            out = lm.model(input_ids=feed, use_cache=True, logits_to_keep=1, **{cache_kw: cache})
            cache = cache_from_output(out)
            logits = out.logits[:, -1].float()  # (n, V)
            if temperature == 0:
                nxt = logits.argmax(-1)  # (n,)
            else:
                dist = sampling_distribution(logits, temperature, top_k, top_p, min_p)  # (n, V)
                nxt = torch.multinomial(dist, 1, generator=rng)[:, 0]  # (n,)
            for row, token in enumerate(nxt.tolist()):
                if not done[row]:
                    rows[row].append(token)
                    done[row] = token in stop_ids
            if all(done):
                break
            feed = nxt[:, None]  # (n, 1)
    return [
        Generation(
            ids,
            lm.tokenizer.decode(ids, skip_special_tokens=True),
            steps=[],
            prompt_ids=list(prompt_ids),
            stop_reason="eos" if ids and ids[-1] in stop_ids else "length",
        )
        for ids in rows
    ]


def token_surprisals(lm: LM, text: str) -> list[tuple[str, float]]:
    """Each token of ``text`` (after the first) with its surprisal -log2 p(token | tokens before), in bits."""
    import torch

    ids = encode_prompt(lm, text)
    if len(ids) < 2:
        raise ValueError("Surprisal needs a text of at least 2 tokens.")
    check_fits(lm, len(ids), 0)
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]  # (T, V)
    logp = torch.log_softmax(logits.float(), dim=-1)[:-1]  # (T-1, V): predictions for tokens 1..T-1
    target = torch.tensor(ids[1:])  # (T-1,)
    nll = -logp[torch.arange(len(target)), target] / math.log(2)  # (T-1,) bits
    return [(lm.tokenizer.decode([i]), float(s)) for i, s in zip(ids[1:], nll, strict=True)]


def perplexity(lm: LM, text: str) -> float:
    """exp(mean negative log-likelihood per token): "as unsure as a fair pick among N tokens"."""
    bits = [s for _, s in token_surprisals(lm, text)]
    return 2 ** (sum(bits) / len(bits))


# --- checks -----------------------------------------------------------------------------------


def check_settings(
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    max_new_tokens: int = 1,
    repetition_penalty: float | None = None,
) -> None:
    """Raise ``ValueError`` naming the valid range if any generation setting is out of range."""
    _check_temperature(temperature)
    if top_k is not None:
        _check_top_k(top_k)
    if top_p is not None:
        _check_top_p(top_p)
    if min_p is not None:
        _check_min_p(min_p)
    if not isinstance(max_new_tokens, numbers.Integral) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}.")
    if repetition_penalty is not None and not (
        _is_number(repetition_penalty) and repetition_penalty > 0
    ):
        raise ValueError(
            f"repetition_penalty must be > 0 (1.0 = off, 1.1-1.3 typical), got {repetition_penalty!r}."
        )


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and not math.isnan(x)


def _check_temperature(t: float) -> None:
    if not _is_number(t) or t < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy, 1 = the model's own), got {t!r}.")


def _check_top_k(k: int, name: str = "top_k") -> None:
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {k!r}.")


def _check_top_p(p: float) -> None:
    if not _is_number(p) or not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 = keep everything), got {p!r}.")


def _check_min_p(p: float) -> None:
    if not _is_number(p) or not 0 <= p < 1:
        raise ValueError(f"min_p must be in [0, 1) (0 = keep everything), got {p!r}.")


# --- command line -----------------------------------------------------------------------------

BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int = 24) -> str:
    """A unicode bar ``width`` characters long at full scale. ``bar(0.5, 4) -> '██  '``."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BLOCKS[part] if part else "")).ljust(width)


def format_step(n: int, step: Step, width: int = 24) -> str:
    """One step as text: the chosen token, then its candidates with probability bars."""
    lines = [
        f"step {n:>3}  → {step.token!r:<16} p={step.prob:6.1%}   entropy {step.entropy:.2f} bits"
    ]
    for c in step.candidates:
        mark = "→" if c.token_id == step.token_id else " "
        cut = "" if c.kept else "  (cut)"
        lines.append(f"  {mark} {c.token!r:<16} {bar(c.prob, width)} {c.prob:6.1%}{cut}")
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    """``llmlab explore "prompt"``: generate step by step, printing each step's top candidates."""
    parser = argparse.ArgumentParser(
        prog="llmlab explore",
        description="Step through generation with the bundled SmolLM2, showing each token's "
        "top candidates and their probabilities.",
    )
    parser.add_argument("prompt", help="the text to continue")
    parser.add_argument("--steps", type=int, default=8, help="tokens to generate (default 8)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    parser.add_argument("--top-k", type=int, default=None, help="keep the K most likely tokens")
    parser.add_argument(
        "--top-p", type=float, default=None, help="keep the smallest set with mass P"
    )
    parser.add_argument("--min-p", type=float, default=None, help="keep tokens >= P x the top one")
    parser.add_argument(
        "--seed", type=int, default=None, help="fix the dice (same seed, same text)"
    )
    parser.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    parser.add_argument("--show", type=int, default=5, help="candidates shown per step (default 5)")
    parser.add_argument("--model", default=None, help="model name (default: bundled SmolLM2)")
    args = parser.parse_args(argv)

    try:  # check the settings before spending a second on loading the model
        check_settings(args.temperature, args.top_k, args.top_p, args.min_p, args.steps)
    except ValueError as exc:
        print(f"llmlab explore: {exc}")
        return 2

    from llmlab.models import load_lm

    lm = load_lm(args.model)
    try:
        gen = generate(
            lm,
            args.prompt,
            max_new_tokens=args.steps,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            min_p=args.min_p,
            seed=args.seed,
            chat=args.chat,
            n_candidates=args.show,
        )
    except ValueError as exc:
        print(f"llmlab explore: {exc}")
        return 2
    mode = "greedy" if args.temperature == 0 else f"temperature {args.temperature}"
    print(f"{lm.name} · prompt of {len(gen.prompt_ids)} tokens · {mode}\n")
    for n, step in enumerate(gen.steps, 1):
        print(format_step(n, step))
        print()
    stop = "end-of-sequence token" if gen.stop_reason == "eos" else f"{args.steps} steps"
    shown = args.prompt if not args.chat else "[chat] " + args.prompt + "\n→ "
    print(f"Text ({stop}):\n{shown}{gen.text}")
    return 0
