"""Many prompts at once: one batch, one KV cache, one forward pass per step for every row.

Covers:
- ``generate_batch``: ``generate`` for a list of prompts. Rows of different lengths are padded
  so every row's last token lines up; the attention mask hides the padding and the position ids
  count only real tokens, so each row sees exactly what it would see alone (greedy outputs are
  token-identical to ``generate`` one prompt at a time). The prompts' **common beginning** (a
  shared system prompt, instructions, few-shot examples) is read once, as one row, and its
  keys/values copied to every row: only each row's own tokens are read in the batch. A row that
  hits end-of-sequence (or a ``stop`` string) is done; finished rows leave the batch once a
  quarter are done; the batch stops when all are.
- ``constraints=``: one constraint per row (``llmlab.decoding.constraints``, or None for a free
  row), e.g. 24 tool calls each held to the call grammar: at every step, each row's forbidden
  tokens get score -inf before the choice (what a logits processor does for transformers'
  ``generate``), and a row whose constraint is complete is done (stop_reason "constraint").
- ``sample_many``: n continuations of one prompt, drawn side by side as one batch.

Why: decoding is memory-bound on a CPU, so a step over 16 rows costs little more than over one;
a batch is many times faster than a loop. Reading prompts is compute-bound: there, what saves
time is reading less (the shared beginning once).

Leaves out: penalties (repetition/frequency/presence) and jump-forward (one prompt at a time:
``llmlab.decoding.fast_generation``), candidates per step, continuous batching (rows joining a
running batch; see ``llmlab.serve.worker``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmlab.decoding.chat_template import Prompt, encode_prompt, stop_token_ids
from llmlab.decoding.context_window import ContextWindowError, check_fits
from llmlab.decoding.generation import Generation, Step, record_step, stop_text
from llmlab.decoding.kv_cache import cached_forward, select_rows
from llmlab.decoding.sampling import check_settings, entropies, random_stream, sampling_distribution

if TYPE_CHECKING:
    import torch

    from llmlab.runtime.models import LM


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """How many first tokens all rows share, leaving each row at least one token of its own."""
    limit = min(len(r) for r in rows) - 1  # a row's last token must be read in the batch
    n = 0
    while n < limit and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def generate_batch(
    lm: LM,
    prompts: Sequence[Prompt],
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    seed: int | None = None,
    chat: bool = False,
    stop: str | Sequence[str] = (),
    constraints: Sequence[Any] | None = None,
) -> list[Generation]:
    """``generate`` for many prompts at once (see the module docstring). Same prompts and ``seed``
    give the same list. Steps are recorded without candidates. ``constraints``: None, or one
    constraint (or None) per prompt; row i then writes what ``fast_generate(...,
    constraint=constraints[i])`` writes without jump-forward."""
    import torch

    check_settings(temperature, top_k, top_p, min_p, max_new_tokens)
    if isinstance(prompts, str | dict) or not isinstance(prompts, Sequence):
        raise ValueError("prompts must be a list of prompts; for a single prompt use generate().")
    if not prompts:
        raise ValueError("prompts is empty: give at least one prompt.")
    if constraints is not None and (
        isinstance(constraints, str) or len(constraints) != len(prompts)
    ):
        raise ValueError(
            f"constraints must be a list with one constraint (or None) per prompt: "
            f"{len(prompts)} prompts, got {constraints!r:.80}."
        )
    rows = [encode_prompt(lm, p, chat=chat) for p in prompts]
    for i, ids in enumerate(rows):
        try:
            check_fits(lm, len(ids), max_new_tokens)
        except ContextWindowError as exc:
            raise ContextWindowError(f"Prompt {i}: {exc}") from None
    stop_ids, rng = stop_token_ids(lm), random_stream(seed)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    n = len(rows)

    shared = common_prefix_length(rows) if n > 1 else 0
    cache = None
    if shared:  # read the common beginning once, then give every row its own copy of the cache
        _, cache = cached_forward(lm.model, torch.tensor([rows[0][:shared]]))  # (1, shared)
        cache = select_rows(lm.model, cache, [0] * n)  # (n, ..., shared, ...)
    tails = [r[shared:] for r in rows]
    width = max(map(len, tails))
    # each row: [shared prefix (in the cache)] [padding] [its own tokens], last tokens aligned
    feed = torch.tensor([[pad] * (width - len(t)) + t for t in tails])  # (B, W)
    mask = torch.tensor(
        [[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails]
    )  # (B, S+W)
    positions = ((mask.cumsum(-1) - 1).clamp(min=0))[:, shared:]  # (B, W): real tokens count on
    new: list[list[int]] = [[] for _ in range(n)]
    steps: list[list[Step]] = [[] for _ in range(n)]
    reason, texts = ["length"] * n, [None] * n
    active = list(range(n))  # rows still writing, in batch order
    for _ in range(max_new_tokens):
        out, cache = cached_forward(
            lm.model, feed, cache, attention_mask=mask, position_ids=positions, logits_to_keep=1
        )
        logits = out.logits[:, -1].float()  # (b, V): one row per active prompt
        probs = torch.softmax(logits, dim=-1)  # (b, V)
        scores = logits if constraints is None else mask_rows(logits, active, constraints, reason)
        if temperature == 0:
            nxt, dist = scores.argmax(-1), None  # (b,)
        else:
            dist = sampling_distribution(scores, temperature, top_k, top_p, min_p)  # (b, V)
            nxt = torch.multinomial(dist, 1, generator=rng)[:, 0]  # (b,)
        bits = entropies(probs).tolist()  # (b,) one pass for every row
        for j, (row, token) in enumerate(zip(active, nxt.tolist(), strict=True)):
            if reason[row] != "length":  # done earlier; rides along until the next compaction
                continue
            new[row].append(token)
            steps[row].append(
                record_step(lm, probs[j], token, None if dist is None else dist[j], 0, bits[j])
            )
            texts[row] = stop_text(lm, new[row], stop) if stop else None
            if constraints is not None and constraints[row] is not None:
                constraints[row].advance(token)
            if token in stop_ids:
                reason[row] = "eos"
            elif texts[row] is not None:
                reason[row] = "stop"
            elif constraints is not None and constraints[row] is not None and constraints[row].done:
                reason[row] = "constraint"
        going = [j for j, row in enumerate(active) if reason[row] == "length"]
        if not going:
            break
        if len(going) <= 0.75 * len(active):  # drop finished rows once a quarter are done:
            # the batch then computes live rows only (copying the cache costs a step or so)
            cache = select_rows(lm.model, cache, going)
            nxt, mask, positions = nxt[going], mask[going], positions[going]
            active = [active[j] for j in going]
        feed = nxt[:, None]  # (b, 1): each row's new token
        mask = torch.cat([mask, torch.ones(len(active), 1, dtype=mask.dtype)], dim=-1)  # (b, T+1)
        positions = positions[:, -1:] + 1  # (b, 1): the next position of each row

    return [
        Generation(
            token_ids=ids,
            text=texts[i]
            if texts[i] is not None
            else lm.tokenizer.decode(ids, skip_special_tokens=True),
            steps=steps[i],
            prompt_ids=rows[i],
            stop_reason=reason[i],
        )
        for i, ids in enumerate(new)
    ]


def mask_rows(
    logits: torch.Tensor, active: Sequence[int], constraints: Sequence[Any], reason: Sequence[str]
) -> torch.Tensor:
    """``logits`` ``(b, V)`` with each live row's forbidden tokens at -inf (rows in ``active``
    order; a row with no constraint, or already done, is left as it is)."""
    import torch

    allowed = torch.ones_like(logits, dtype=torch.bool)  # (b, V)
    for j, row in enumerate(active):
        if constraints[row] is not None and reason[row] == "length":
            allowed[j] = torch.from_numpy(constraints[row].allowed())  # (V,) bool
    return logits.masked_fill(~allowed, float("-inf"))


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
    """``n`` continuations of one prompt, drawn side by side as one batch. Same ``seed``, same list."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}.")
    ids = encode_prompt(lm, prompt, chat=chat)  # encode once; every row is the same prompt
    return generate_batch(lm, [ids] * n, max_new_tokens, temperature, top_k, top_p, min_p, seed)
