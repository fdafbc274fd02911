"""The context window in practice: cutting a chat to fit, what a long context costs in time,
and how well the model reads it (needle in a haystack).

Covers:
- ``check_fits`` / ``ContextWindowError``: refuse prompt + answer longer than the window, saying
  by how many tokens and what to cut (``llmlab.decoding.generation`` calls it before every run).
- ``truncate_tokens`` (keep the start, the end, or both ends of a token list) and
  ``truncate_chat`` (keep the system message and the most recent turns, optionally the first
  user turn too), with a ``ContextWindowError`` that says what to do when nothing fits.
- ``decode_seconds`` (time for one new token with n tokens already in the KV cache) and
  ``prefill_seconds`` (time to read n tokens): best of several interleaved rounds, so a busy
  machine disturbs every size alike.
- ``needle_test``: facts hidden at different depths of filler text, all asked in one batch that
  reuses the haystack's KV cache.

Counting a chat's tokens lives in ``llmlab.decoding.chat_template``; the cache's memory in
``llmlab.decoding.kv_cache``. Leaves out: summarising old turns with the model, retrieval (phase 4),
sliding-window and sparse attention.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmlab.decoding.chat_template import Message, chat_parts, check_message_list, count_chat_tokens
from llmlab.decoding.kv_cache import cache_tensors, cached_forward, make_cache, random_cache

if TYPE_CHECKING:
    from llmlab.runtime.models import LM


class ContextWindowError(ValueError):
    """Prompt + tokens to generate do not fit in the model's context window."""


def check_fits(lm: LM, n_prompt_tokens: int, max_new_tokens: int) -> None:
    """Raise ``ContextWindowError`` saying what to cut if prompt + new tokens exceed the window."""
    limit, total = lm.context_length, n_prompt_tokens + max_new_tokens
    if total <= limit:
        return
    over = total - limit
    head = (
        f"The prompt is {n_prompt_tokens} tokens and you asked for {max_new_tokens} more: "
        f"{total} tokens, {over} beyond {lm.name}'s context window of {limit} tokens "
        "(prompt and answer share it). "
    )
    if n_prompt_tokens >= limit and max_new_tokens >= limit:
        advice = (
            "Shorten the prompt and lower max_new_tokens: together they must add up to at most "
            f"{limit}."
        )
    elif n_prompt_tokens >= limit:  # only a shorter prompt helps
        advice = (
            f"Shorten the prompt by at least {over} tokens (to at most {limit - max_new_tokens}): "
            "drop old turns, keep the system message and the latest messages."
        )
    elif max_new_tokens >= limit:  # the request alone overflows
        advice = f"Lower max_new_tokens to at most {limit - n_prompt_tokens}."
    else:
        advice = (
            f"Lower max_new_tokens to at most {limit - n_prompt_tokens}, or shorten the prompt "
            f"by at least {over} tokens (drop old turns, keep the system message and the latest)."
        )
    raise ContextWindowError(head + advice)


def truncate_tokens(ids: Sequence[int], max_tokens: int, keep: str = "end") -> list[int]:
    """Cut a token list to ``max_tokens``: keep the ``"end"`` (drop the oldest), the ``"start"``,
    or ``"both"`` ends (drop the middle). ``truncate_tokens([1, 2, 3, 4, 5], 4, "both") -> [1, 2, 4, 5]``."""
    if keep not in {"end", "start", "both"}:
        raise ValueError(f'keep must be "end", "start" or "both", got {keep!r}.')
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}.")
    ids = list(ids)
    if len(ids) <= max_tokens:
        return ids
    if keep == "end":
        return ids[-max_tokens:]
    if keep == "start":
        return ids[:max_tokens]
    head = (max_tokens + 1) // 2
    return ids[:head] + ids[len(ids) - (max_tokens - head) :]


def truncate_chat(
    lm: LM,
    messages: Sequence[Message],
    max_tokens: int,
    keep_first_user: bool = False,
    reserve: int = 0,
) -> list[Message]:
    """Drop whole messages until the chat (template included) + ``reserve`` fit ``max_tokens``.

    Always kept: leading system messages and the last message (the question being asked).
    Then the most recent turns, newest first, while they fit; ``keep_first_user=True`` also keeps
    the first user message (often the task description) and drops from the middle instead.
    The kept history never starts with an assistant message. Raises ``ContextWindowError`` if
    even the pinned messages do not fit.
    """
    msgs = check_message_list(messages)
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}.")
    if reserve < 0:
        raise ValueError(f"reserve (tokens kept free for the answer) must be >= 0, got {reserve}.")
    budget = max_tokens - reserve

    n_sys = 0
    while n_sys < len(msgs) - 1 and msgs[n_sys]["role"] == "system":
        n_sys += 1
    pinned = list(range(n_sys))  # indices we always keep
    if keep_first_user:
        first_user = next(
            (i for i in range(n_sys, len(msgs) - 1) if msgs[i]["role"] == "user"), None
        )
        if first_user is not None:
            pinned.append(first_user)
    last = len(msgs) - 1

    def cost(idx: list[int]) -> int:
        return count_chat_tokens(lm, [msgs[i] for i in sorted(idx)])

    if cost(list(range(len(msgs)))) <= budget:
        return msgs  # it all fits: nothing to drop
    need = cost(pinned + [last])
    if need > budget:
        raise ContextWindowError(
            f"Even the system message(s) and the last message need {need} tokens, but only "
            f"{budget} are available ({max_tokens} - {reserve} reserved for the answer): "
            f"{need - budget} too many. Shorten the last message or the system prompt, "
            "or raise max_tokens."
        )
    kept = pinned + [last]
    for i in range(last - 1, max(pinned, default=-1), -1):  # newest to oldest, stop at a pin
        if cost(kept + [i]) > budget:
            break
        kept.append(i)
    # A history that opens with the assistant answering nothing confuses the model: drop it.
    recent = sorted(i for i in kept if i not in pinned)  # ends with `last`
    while len(recent) > 1 and msgs[recent[0]]["role"] == "assistant":
        recent.pop(0)
    kept = pinned + recent
    return [msgs[i] for i in sorted(kept)]


# --- time -------------------------------------------------------------------------------------


def _check_sizes(sizes: Sequence[int], rounds: int) -> list[int]:
    sizes = list(sizes)
    if not sizes or any(not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"Give token counts as integers >= 1, got {sizes!r}.")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}.")
    return sizes


def decode_seconds(lm: LM, contexts: Sequence[int], rounds: int = 5, seed: int = 0) -> list[float]:
    """Time to produce one token with n tokens already in the KV cache, for each n in ``contexts``.

    The cache is filled with random numbers of the right shape: a step's cost depends on how
    many keys and values there are, not on what they say (and a slow prefill is skipped).
    Sizes are measured in turn, ``rounds`` times, and the fastest time of each is kept: other
    programs can only add time, never remove it.
    """
    import torch

    sizes = _check_sizes(contexts, rounds)
    dtype = getattr(lm.model, "dtype", None)  # a bfloat16 model needs a bfloat16 cache
    kvs = {n: cache_tensors(random_cache(lm.model, n, seed, dtype=dtype)) for n in sizes}
    best = {n: float("inf") for n in sizes}
    x = torch.tensor([[1000]])  # (1, 1): one new token
    for n in sizes:  # warm-up, not counted
        cached_forward(lm.model, x, make_cache(lm.model, kvs[n]), logits_to_keep=1)
    for _ in range(rounds):
        for n in sizes:
            cache = make_cache(lm.model, kvs[n])  # exactly n tokens again
            t0 = time.perf_counter()
            cached_forward(lm.model, x, cache, logits_to_keep=1)
            best[n] = min(best[n], time.perf_counter() - t0)
    return [best[n] for n in sizes]


def prefill_seconds(lm: LM, sizes: Sequence[int], rounds: int = 2, seed: int = 0) -> list[float]:
    """Time to read n tokens in one forward pass (the wait before the first new token), best of
    ``rounds`` interleaved runs, for each n in ``sizes``."""
    import torch

    sizes = _check_sizes(sizes, rounds)
    g = torch.Generator().manual_seed(seed)
    best = {n: float("inf") for n in sizes}
    for _ in range(rounds):
        for n in sizes:
            x = torch.randint(100, lm.tokenizer.vocab_size, (1, n), generator=g)  # (1, T)
            t0 = time.perf_counter()
            cached_forward(lm.model, x, None, logits_to_keep=1)
            best[n] = min(best[n], time.perf_counter() - t0)
    return [best[n] for n in sizes]


# --- needle in a haystack ---------------------------------------------------------------------

FILLER = [
    "The town library opens at nine in the morning and closes at six in the evening.",
    "Most visitors come to read newspapers or to borrow novels for the weekend.",
    "In spring the park near the river fills with people walking their dogs.",
    "The bakery on the corner sells bread, rolls and small apple cakes.",
    "Trains to the city leave every half hour from the old station.",
    "The school has a small garden where children grow beans and tomatoes.",
    "On rainy days the museum is busier than usual.",
    "A local choir practises in the church hall every Thursday.",
    "The market square hosts a farmers' market on Saturdays.",
    "Fishermen bring their boats back to the harbour before sunset.",
    "The bridge over the river was repaired last summer.",
    "Cyclists often stop at the cafe for coffee and a sandwich.",
    "The post office is next to the pharmacy on the main street.",
    "In autumn the trees along the avenue turn yellow and red.",
    "The football club trains on the field behind the sports centre.",
]
KEYS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]


@dataclass
class NeedleResult:
    """One question of the needle test: was the fact at ``depth`` (0 = start, 1 = end) recalled?"""

    n_tokens: int  # length of the whole prompt the model read
    depth: float
    key: str
    value: str
    prob: float  # probability the model gives the right value, token by token
    correct: bool  # greedy decoding would write exactly the right value
    guess: str  # what greedy decoding writes instead (its first len(value) tokens)


def needle_test(
    lm: LM,
    n_filler_tokens: int,
    depths: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    seed: int = 0,
) -> list[NeedleResult]:
    """Hide one fact per depth ("The code for the red door is 4721.") in filler text, then ask
    for each one, in a chat. The assistant's reply is started for it ("The code for the red
    door is") so the probability of the right digits comes from one forward pass.

    The haystack is read once (KV cache); all questions are asked in one batch on top of it.
    """
    import torch

    if not 1 <= len(depths) <= len(KEYS):
        raise ValueError(f"Give between 1 and {len(KEYS)} depths, got {len(depths)}.")
    if any(not 0 <= d <= 1 for d in depths):
        raise ValueError(f"Depths are fractions of the filler in [0, 1], got {list(depths)}.")
    rng = random.Random(seed)
    keys = rng.sample(KEYS, len(depths))
    values = [str(rng.randint(1000, 9999)) for _ in depths]

    def ids(text: str) -> list[int]:
        return list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    sentences, n, i = [], 0, rng.randrange(len(FILLER))
    while n < n_filler_tokens:
        sentences.append(ids(" " + FILLER[i % len(FILLER)]))
        n, i = n + len(sentences[-1]), i + 1
    for d, k, v in sorted(zip(depths, keys, values, strict=True), reverse=True):
        sentences.insert(round(d * len(sentences)), ids(f" The code for the {k} door is {v}."))
    head, tail = chat_parts(lm)
    context = ids(head + "Read this text carefully.\n\n") + [t for s in sentences for t in s]
    _, haystack = cached_forward(lm.model, torch.tensor([context]), None, logits_to_keep=1)
    kvs = cache_tensors(haystack)  # read once, shared by every question

    # Every question in ONE batch on top of the haystack's cache. Row b: question (left-padded, so
    # all questions end in the same column) + its answer but the last token (right-padded).
    qs = [
        ids(
            f"\n\nWhat is the code for the {k} door? Answer with the code only."
            + tail
            + f"The code for the {k} door is"
        )
        for k in keys
    ]
    answers = [ids(f" {v}") for v in values]
    n_rows, qw, aw, n_ctx = len(qs), max(map(len, qs)), max(map(len, answers)), len(context)
    pad = lm.tokenizer.pad_token_id or 0
    x = torch.tensor(
        [
            [pad] * (qw - len(q)) + q + a[:-1] + [pad] * (aw - len(a))
            for q, a in zip(qs, answers, strict=True)
        ]
    )  # (B, qw + aw - 1)
    mask = torch.tensor([[0] * (qw - len(q)) + [1] * (len(q) + aw - 1) for q in qs])  # (B, W)
    mask = torch.cat([torch.ones(n_rows, n_ctx, dtype=mask.dtype), mask], 1)  # (B, n_ctx + W)
    pos = (mask.cumsum(1) - 1)[:, n_ctx:]  # (B, W): positions continue after the haystack
    rows_cache = make_cache(
        lm.model, [(k.expand(n_rows, -1, -1, -1), v.expand(n_rows, -1, -1, -1)) for k, v in kvs]
    )
    out, cache = cached_forward(
        lm.model, x, rows_cache, attention_mask=mask, position_ids=pos, logits_to_keep=aw
    )  # only the columns that predict the answer
    logp = torch.log_softmax(out.logits.float(), -1)  # (B, aw, V): answer tokens
    guesses = logp.argmax(-1).tolist()  # greedy's picks if every earlier pick was right
    if any(g[: len(a)] != a for g, a in zip(guesses, answers, strict=True)):
        # someone is wrong: decode greedily after the question to see what each row really writes
        cache = make_cache(lm.model, cache_tensors(cache), n_tokens=n_ctx + qw)
        mask, col = mask[:, : n_ctx + qw], torch.tensor([[g[0]] for g in guesses])  # (B, 1)
        guesses = [g[:1] for g in guesses]
        for _ in range(aw - 1):
            mask = torch.cat([mask, torch.ones(n_rows, 1, dtype=mask.dtype)], 1)
            step, cache = cached_forward(
                lm.model,
                col,
                cache,
                attention_mask=mask,
                position_ids=mask.sum(1, keepdim=True) - 1,
            )
            col = step.logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            for g, t in zip(guesses, col[:, 0].tolist(), strict=True):
                g.append(t)
    results = []
    for b, (d, k, v) in enumerate(zip(depths, keys, values, strict=True)):
        answer, guess = answers[b], guesses[b][: len(answers[b])]
        prob = float(logp[b, torch.arange(len(answer)), torch.tensor(answer)].sum().exp())
        results.append(
            NeedleResult(
                n_tokens=n_ctx + len(qs[b]),
                depth=d,
                key=k,
                value=v,
                prob=prob,
                correct=guess == answer,
                guess=lm.tokenizer.decode(guess).strip(),
            )
        )
    return results
