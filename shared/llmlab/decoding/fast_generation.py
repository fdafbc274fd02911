"""``generate``'s optimised twin: the same loop plus what a serving engine adds to it.

``llmlab.decoding.generation.generate`` is the loop to read. ``fast_generate`` is the loop apps
and agents call (``llmlab.chat.local``, ``llmlab.tool_use.calling``): with none of its extras
switched on it writes exactly the tokens ``generate`` writes (greedy) and draws exactly the same
samples (same ``seed``); the tests check both on the real model. The extras:

- ``constraint=`` (``llmlab.decoding.constraints``): forbidden tokens get score -inf before the
  choice, so the output stays in a language (a regex, a JSON schema, a tool-call grammar).
- **Jump-forward** (greedy, with a constraint): where the constraint allows exactly one token,
  the token is written without asking the model, and a run of such tokens is read in ONE
  forward pass together with the next chosen token (``GrammarConstraint(forcing=True)`` forces
  about half of a tool call's tokens). The same tokens as one pass per token, fewer passes.
- ``prompt_cache=`` (``llmlab.decoding.prompt_cache``): the longest prefix of the prompt already
  read by an earlier call is not read again (an agent re-sends everything before its new turns).
- ``repetition_penalty`` / ``frequency_penalty`` / ``presence_penalty``: push down tokens
  already used (``llmlab.decoding.sampling.apply_penalties``).

Leaves out: batches (``llmlab.decoding.batching.generate_batch`` has per-row constraints),
speculative decoding, streaming callbacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmlab.decoding.chat_template import Prompt, encode_prompt, stop_token_ids
from llmlab.decoding.context_window import check_fits
from llmlab.decoding.generation import (
    Generation,
    Step,
    check_candidates,
    record_step,
    stop_text,
)
from llmlab.decoding.kv_cache import cached_forward
from llmlab.decoding.sampling import (
    apply_penalties,
    check_settings,
    random_stream,
    sampling_distribution,
)
from llmlab.runtime.threads import use_threads

if TYPE_CHECKING:
    from llmlab.runtime.models import LM


def fast_generate(
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
    stop: str | Sequence[str] = (),
    constraint: Any = None,
    prompt_cache: Any = None,
) -> Generation:
    """``generate`` with constraints (and jump-forward), a prompt cache and penalties.

    Every argument ``generate`` takes means the same here. ``constraint``: an object with
    ``.allowed()`` (bool ``(V,)``), ``.advance(token_id)`` and ``.done``; generation ends with
    stop_reason "constraint" once ``done`` is True, or "eos" if the model (allowed to) wrote
    end-of-sequence first. ``Step.prob`` still shows the model's own belief in each token, a
    forced one included. ``prompt_cache``: a ``PromptCache``, looked up before the first pass and
    given the prompt's keys/values right after it. ``use_cache=False`` switches off the KV
    cache, and with it jump-forward and the prompt cache.
    """
    import torch

    check_settings(
        temperature,
        top_k,
        top_p,
        min_p,
        max_new_tokens,
        repetition_penalty,
        frequency_penalty,
        presence_penalty,
    )
    check_candidates(n_candidates)
    prompt_ids = encode_prompt(lm, prompt, chat=chat)
    check_fits(lm, len(prompt_ids), max_new_tokens)
    stop_ids, rng = stop_token_ids(lm), random_stream(seed)

    ids = list(prompt_ids)  # everything so far: prompt + new tokens
    new_ids: list[int] = []
    steps: list[Step] = []
    cache = None  # keys/values of every token already read, one entry per layer
    reused = 0  # prompt tokens whose keys/values come from ``prompt_cache``
    if prompt_cache is not None and use_cache:
        reused, cache = prompt_cache.lookup(lm.model, prompt_ids)
    feed = torch.tensor([prompt_ids[reused:]])  # (1, T): the prompt, or what the cache lacks
    stop_reason, text = "length", None
    # Jump-forward: where the constraint allows exactly one token, it is written without asking
    # the model, and all such tokens are read in ONE pass with the next chosen one (greedy only).
    jump = constraint is not None and use_cache and temperature == 0 and not stop
    forced: list[int] = []  # forced tokens in `feed` whose steps this pass's logits complete
    while True:
        if use_cache:  # feed only what the cache has not seen; it now holds all of `ids`
            out, cache = cached_forward(lm.model, feed, cache, logits_to_keep=len(forced) + 1)
            if prompt_cache is not None and len(ids) == len(prompt_ids):
                prompt_cache.store(prompt_ids, cache)  # the prompt, read: reusable next time
        else:  # no memory: read the whole sequence again
            with torch.inference_mode(), use_threads(len(ids)):
                out = lm.model(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1)
        for i, token in enumerate(forced):  # (V,) the model's belief in each forced token
            probs = torch.softmax(out.logits[0, i].float(), -1)  # (V,)
            steps.append(record_step(lm, probs, token, None, n_candidates))
        if forced and (constraint.done or len(new_ids) >= max_new_tokens):
            stop_reason = "constraint" if constraint.done else "length"
            break
        forced = []
        logits = out.logits[0, -1].float()  # (V,) scores for the next token
        probs = torch.softmax(logits, dim=-1)  # (V,) what the model believes

        scores = apply_penalties(
            logits, ids, new_ids, repetition_penalty, frequency_penalty, presence_penalty
        )  # (V,)
        if constraint is not None:  # forbidden tokens can never be chosen
            allowed = torch.from_numpy(constraint.allowed())  # (V,) bool
            scores = scores.masked_fill(~allowed, float("-inf"))
        if temperature == 0:
            next_id, dist = int(scores.argmax()), None
        else:
            dist = sampling_distribution(scores, temperature, top_k, top_p, min_p)  # (V,)
            next_id = int(torch.multinomial(dist, 1, generator=rng))

        steps.append(record_step(lm, probs, next_id, dist, n_candidates))
        ids.append(next_id)
        new_ids.append(next_id)
        if constraint is not None:
            constraint.advance(next_id)
        if next_id in stop_ids:
            stop_reason = "eos"
            break
        if stop and (text := stop_text(lm, new_ids, stop)) is not None:
            stop_reason = "stop"
            break
        if constraint is not None and constraint.done:
            stop_reason = "constraint"
            break
        if len(new_ids) >= max_new_tokens:
            break
        while jump and len(new_ids) < max_new_tokens and not constraint.done:
            allowed = constraint.allowed()  # (V,) bool
            if allowed.sum() != 1 or int(allowed.argmax()) in stop_ids:
                break
            forced.append(int(allowed.argmax()))
            ids.append(forced[-1])
            new_ids.append(forced[-1])
            constraint.advance(forced[-1])
        feed = torch.tensor([[next_id, *forced]])  # (1, 1 + forced): the cache has the rest

    if text is None:
        text = lm.tokenizer.decode(new_ids, skip_special_tokens=True)
    return Generation(
        token_ids=new_ids, text=text, steps=steps, prompt_ids=prompt_ids, stop_reason=stop_reason
    )
