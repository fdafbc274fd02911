"""The context window: what the model sees, what it costs, and what to do when a chat is too long.

Covers:
- Counting: ``chat_token_ids`` / ``count_chat_tokens`` give the exact tokens of a whole chat *with*
  its template (role markers, the default system prompt SmolLM2 adds, the assistant cue);
  ``message_token_costs`` says what each message adds.
- Memory: ``kv_cache_bytes(config, n_tokens)`` = 2 (keys and values) x layers x kv-heads x
  head-dim x tokens x bytes per number; ``cache_tensor_bytes`` adds up a real cache's tensors.
- Too long: ``truncate_tokens`` (keep the start, the end, or both ends of a token list) and
  ``truncate_chat`` (keep the system message and the most recent turns, optionally the first
  user turn too), with a ``ContextWindowError`` that says what to do when nothing fits.
- Measuring: ``decode_seconds`` (time for one new token with n tokens already in the cache) and
  ``prefill_seconds`` (time to read n tokens), and a key/value needle-in-a-haystack test
  (``needle_test``): facts hidden at different depths of filler text, asked about one at a time.

Leaves out: summarising old turns with the model, retrieval (phase 4), sliding-window and
sparse attention, and cache quantization. Everything runs on the CPU in float32.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmlab.generation import ContextWindowError, cache_from_output, cache_kwarg

if TYPE_CHECKING:
    import torch

    from llmlab.models import LM

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


# --- counting ---------------------------------------------------------------------------------


def _check_messages(messages: Sequence[Message]) -> list[Message]:
    msgs = list(messages)
    if not msgs:
        raise ValueError('The chat is empty: give at least one {"role": ..., "content": ...}.')
    for m in msgs:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m):
            raise ValueError(
                f'Each message must be a dict like {{"role": "user", "content": "Hi"}}, got {m!r}.'
            )
    return msgs


def chat_token_ids(
    lm: LM, messages: Sequence[Message], add_generation_prompt: bool = True
) -> list[int]:
    """The token ids the model reads for this chat: template, special tokens and all."""
    msgs = _check_messages(messages)
    text = lm.tokenizer.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    return list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])


def count_chat_tokens(
    lm: LM, messages: Sequence[Message], add_generation_prompt: bool = True
) -> int:
    """How many tokens the whole chat costs. ``[{"role": "user", "content": "hi"}] -> 31`` for SmolLM2
    (the template adds a default system prompt and role markers around a 1-token message)."""
    return len(chat_token_ids(lm, messages, add_generation_prompt))


def message_token_costs(lm: LM, messages: Sequence[Message]) -> list[int]:
    """Tokens each message adds to the chat (template overhead included), in order.

    The first entry also carries anything the template puts before it (e.g. a default system
    prompt). ``sum(costs) == count_chat_tokens(lm, messages, add_generation_prompt=False)``.
    """
    msgs = _check_messages(messages)
    costs, before = [], 0
    for i in range(1, len(msgs) + 1):
        now = count_chat_tokens(lm, msgs[:i], add_generation_prompt=False)
        costs.append(now - before)
        before = now
    return costs


# --- memory -----------------------------------------------------------------------------------


def kv_shape(config: Any) -> tuple[int, int, int]:
    """(layers, kv_heads, head_dim) read from a transformers config. SmolLM2-135M: (30, 3, 64)."""
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    return layers, kv_heads, head_dim


def kv_cache_bytes(
    config: Any, n_tokens: int, bytes_per_value: int = 4, batch_size: int = 1
) -> int:
    """Memory of the KV cache for ``n_tokens``: 2 x layers x kv_heads x head_dim x tokens x bytes.

    SmolLM2-135M, float32: ``kv_cache_bytes(config, 1) -> 46080`` (45 KiB per token).
    """
    if n_tokens < 0 or bytes_per_value < 1 or batch_size < 1:
        raise ValueError("n_tokens must be >= 0, bytes_per_value and batch_size >= 1.")
    layers, kv_heads, head_dim = kv_shape(config)
    return 2 * layers * kv_heads * head_dim * n_tokens * bytes_per_value * batch_size


def cache_tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The (keys, values) tensors of each layer, each ``(batch, kv_heads, tokens, head_dim)``."""
    if hasattr(cache, "layers"):  # transformers >= 4.56: DynamicCache.layers[i].keys / .values
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):  # older DynamicCache
        return list(zip(cache.key_cache, cache.value_cache, strict=True))
    return [(k, v) for k, v in cache]  # legacy tuple of (keys, values)


def cache_tensor_bytes(cache: Any) -> int:
    """Bytes actually held by a KV cache's tensors (what ``kv_cache_bytes`` predicts)."""
    return sum(
        t.numel() * t.element_size() for kv in cache_tensors(cache) for t in kv if t is not None
    )


def _make_cache(config: Any, kvs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """A fresh DynamicCache holding ``kvs`` (the tensors are shared, not copied)."""
    from transformers import DynamicCache

    try:
        cache = DynamicCache(config=config)
    except TypeError:  # older transformers
        cache = DynamicCache()
    for i, (k, v) in enumerate(kvs):
        cache.update(k, v, i)
    return cache


def random_cache(config: Any, n_tokens: int, seed: int = 0) -> Any:
    """A KV cache of ``n_tokens`` random keys/values: same shape and cost as a real one."""
    import torch

    layers, kv_heads, head_dim = kv_shape(config)
    g = torch.Generator().manual_seed(seed)
    shape = (1, kv_heads, n_tokens, head_dim)  # (B, kv_heads, T, head_dim)
    kvs = [
        (torch.randn(shape, generator=g), torch.randn(shape, generator=g)) for _ in range(layers)
    ]
    return _make_cache(config, kvs)


# --- too long ---------------------------------------------------------------------------------


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
    """Drop whole messages until the chat (template included) + ``reserve`` tokens fit ``max_tokens``.

    Always kept: leading system messages and the last message (the question being asked).
    Then the most recent turns, newest first, while they fit; ``keep_first_user=True`` also keeps
    the first user message (often the task description) and drops from the middle instead.
    The kept history never starts with an assistant message. Raises ``ContextWindowError`` if
    even the pinned messages do not fit.
    """
    msgs = _check_messages(messages)
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
            f"{budget} are available ({max_tokens} - {reserve} reserved for the answer). "
            "Shorten the last message or the system prompt, or raise max_tokens."
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


def decode_seconds(lm: LM, n_context: int, n_steps: int = 8, seed: int = 0) -> float:
    """Median time to produce one token when ``n_context`` tokens are already in the KV cache.

    The cache is filled with random numbers of the right shape: a step's cost depends on how many
    keys and values there are, not on what they say (and we skip a slow prefill).
    """
    import torch

    kw = cache_kwarg(lm.model)
    kvs = cache_tensors(random_cache(lm.model.config, n_context, seed))
    times = []
    with torch.inference_mode():
        for i in range(n_steps + 1):  # the first step is a warm-up and is not counted
            cache = _make_cache(lm.model.config, kvs)  # back to exactly n_context tokens
            x = torch.tensor([[1000 + i]])  # (1, 1): one new token
            t0 = time.perf_counter()
            lm.model(input_ids=x, use_cache=True, logits_to_keep=1, **{kw: cache})
            times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def prefill_seconds(lm: LM, n_tokens: int, seed: int = 0) -> float:
    """Time to read ``n_tokens`` tokens in one forward pass (the wait before the first new token)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randint(100, lm.tokenizer.vocab_size, (1, n_tokens), generator=g)  # (1, T)
    with torch.inference_mode():
        t0 = time.perf_counter()
        lm.model(input_ids=x, use_cache=True, logits_to_keep=1)
        return time.perf_counter() - t0


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
    prob: float  # probability the model gives the right value, digit by digit
    correct: bool  # greedy decoding would write exactly the right value
    guess: str  # what greedy decoding writes instead (its first len(value) tokens)


def needle_test(
    lm: LM,
    n_filler_tokens: int,
    depths: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    seed: int = 0,
) -> list[NeedleResult]:
    """Hide one fact per depth ("The code for the red door is 4721.") in filler text, then ask
    for each in turn, in a chat. The assistant's reply is started for it ("The code for the red
    door is") so we can read the probability of the right digits from one forward pass.

    The haystack is read once (KV cache); each question reuses that cache.
    """
    import torch

    if not 1 <= len(depths) <= len(KEYS):
        raise ValueError(f"Give between 1 and {len(KEYS)} depths, got {len(depths)}.")
    if any(not 0 <= d <= 1 for d in depths):
        raise ValueError(f"Depths are fractions of the filler in [0, 1], got {list(depths)}.")
    rng = random.Random(seed)
    keys = rng.sample(KEYS, len(depths))
    values = [str(rng.randint(1000, 9999)) for _ in depths]
    tok = lm.tokenizer

    def ids(text: str) -> list[int]:
        return list(tok(text, add_special_tokens=False)["input_ids"])

    sentences = []
    n, i = 0, rng.randrange(len(FILLER))
    while n < n_filler_tokens:
        s = ids(" " + FILLER[i % len(FILLER)])
        sentences.append(s)
        n, i = n + len(s), i + 1
    for d, k, v in sorted(zip(depths, keys, values, strict=True), reverse=True):
        sentences.insert(round(d * len(sentences)), ids(f" The code for the {k} door is {v}."))
    haystack = [t for s in sentences for t in s]

    head, tail = _chat_parts(lm)
    intro = ids(head + "Read this text carefully.\n\n")
    context = intro + haystack  # the shared part: read once
    kw = cache_kwarg(lm.model)
    results = []
    with torch.inference_mode():
        out = lm.model(input_ids=torch.tensor([context]), use_cache=True, logits_to_keep=1)
        kvs = cache_tensors(cache_from_output(out))
        for d, k, v in zip(depths, keys, values, strict=True):
            question = ids(
                f"\n\nWhat is the code for the {k} door? Answer with the code only."
                + tail
                + f"The code for the {k} door is"
            )
            answer = ids(f" {v}")
            target = torch.tensor(answer)  # (A,)
            # Read question + answer on top of the haystack's cache, score each answer token.
            x = torch.tensor([question + answer[:-1]])  # (1, Q + A - 1)
            out = lm.model(input_ids=x, use_cache=True, **{kw: _make_cache(lm.model.config, kvs)})
            logp = torch.log_softmax(out.logits[0, len(question) - 1 :].float(), -1)  # (A, V)
            prob = float(logp[torch.arange(len(answer)), target].sum().exp())
            guess = logp.argmax(-1).tolist()  # greedy's picks if every earlier pick was right
            if guess != answer:  # wrong somewhere: decode greedily to see what it really writes
                n_asked = len(context) + len(question)
                asked = [
                    (k_[..., :n_asked, :], v_[..., :n_asked, :])
                    for k_, v_ in cache_tensors(cache_from_output(out))
                ]
                cache = _make_cache(lm.model.config, asked)
                guess = guess[:1]
                for _ in range(len(answer) - 1):
                    step = lm.model(
                        input_ids=torch.tensor([guess[-1:]]), use_cache=True, **{kw: cache}
                    )
                    cache = cache_from_output(step)
                    guess.append(int(step.logits[0, -1].argmax()))
            results.append(
                NeedleResult(
                    n_tokens=len(context) + len(question),
                    depth=d,
                    key=k,
                    value=v,
                    prob=prob,
                    correct=guess == answer,
                    guess=tok.decode(guess).strip(),
                )
            )
    return results


def _chat_parts(lm: LM) -> tuple[str, str]:
    """The chat template split around one user message: (text before it, text after it)."""
    marker = "\x00MSG\x00"
    text = lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": marker}], tokenize=False, add_generation_prompt=True
    )
    head, tail = text.split(marker)
    return head, tail
