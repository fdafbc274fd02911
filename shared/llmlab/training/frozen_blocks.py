"""Train only the top blocks: read the frozen blocks below them once.

With LoRA (or any training) on the top k blocks of a model, the blocks below never change, so
what they hand the first trained block never changes either. Read every sequence once through
the whole model with no gradients, keep that hidden state, and each training step afterwards
runs only the top k blocks and the output head: the same log-probs and the same gradients
(``tests/training/test_dpo.py`` checks both against the full model) at a fraction of the cost.
The same pass gives the log-probs of the model as it was, which DPO needs as its reference.

Covers:
- ``sequence_logprobs``: log p(answer | prompt) from a full forward pass's logits (the reference
  computation, as trl does it); ``answer_logprobs``: the same from final hidden states, with the
  output head run only where a counted token is predicted.
- ``frozen_pass``: the one pass (any adapter switched off; a batch's common beginning, such as a
  shared system prompt, read once) -> ``FrozenPass``: per sequence, the hidden state entering
  block ``first_block`` and the reference log-prob of its counted tokens.
- ``top_logprobs`` / ``rows_logprobs``: log-probs running only blocks ``first_block`` and up.

Leaves out: left padding, attention masks other than causal (rows are padded on the right),
models whose blocks are not called as ``block(hidden, attention_mask=..., position_ids=...,
position_embeddings=...)`` (Llama-style decoders in transformers 5), and sequences longer than
a few hundred tokens (the stored states are kept in memory: T x 576 floats per sequence here).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from llmlab.decoding.batching import common_prefix_length
from llmlab.decoding.kv_cache import cache_from_output, cache_kwarg, select_rows
from llmlab.training.lora import lora_disabled
from llmlab.training.sft import Tokenized


def sequence_logprobs(
    logits: torch.Tensor, ids: torch.Tensor, counted: torch.Tensor
) -> torch.Tensor:
    """Sum over the counted tokens of log p(token | tokens before it): ``(B,)``.

    ``logits`` (B, T, V) from the model on ``ids`` (B, T); ``counted`` (B, T) bool. Position
    t's logits predict token t + 1, so the first token is never counted.
    """
    token_logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V)
    picked = token_logps.gather(-1, ids[:, 1:, None])[..., 0]  # (B, T-1)
    return (picked * counted[:, 1:]).sum(-1)  # (B,)


@dataclass
class FrozenPass:
    """Sequences read once by the frozen model: for sequence i, ``hidden[i]`` (T_i, C) is what
    enters block ``first_block`` and ``logps[i]`` the reference log-prob of its counted tokens."""

    first_block: int
    ids: list[list[int]]
    counted: list[list[bool]]
    hidden: list[torch.Tensor]  # each (T_i, C)
    logps: torch.Tensor  # (N,)
    tokens: int  # real tokens read
    seconds: float


def pad_rows(rows: Sequence[Sequence[Any]], value: Any, dtype: torch.dtype) -> torch.Tensor:
    """Rows of different lengths as one ``(B, T)`` tensor, padded on the right with ``value``:
    ``pad_rows([[1, 2], [3]], 0, torch.long) -> [[1, 2], [3, 0]]``."""
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows], dtype=dtype)


def answer_logprobs(
    model: Any, hidden: torch.Tensor, ids: torch.Tensor, counted: torch.Tensor
) -> torch.Tensor:
    """Summed log-probs of the counted tokens from the final hidden states ``(B, T, C)``; the
    output head (576 -> 49,152) runs only at the positions that predict a counted token."""
    keep = counted[:, 1:]  # (B, T-1): position t predicts token t + 1
    logits = model.get_output_embeddings()(hidden[:, :-1][keep])  # (N, V)
    picked = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:][keep][:, None])[:, 0]
    row = torch.arange(len(ids))[:, None].expand_as(keep)[keep]  # (N,) which row each belongs to
    return torch.zeros(len(ids), dtype=picked.dtype).index_add(0, row, picked)  # (B,)


def _read_batch(
    model: Any, rows: list[list[int]], seen: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Run rows of ids (padded on the right) through the model; their common beginning (the
    system prompt, say) is read once, as one row, and its keys/values copied to every row.
    Returns the final hidden states and what entered the hooked block, each ``(B, T, C)``, and
    the number of tokens read."""
    decoder, B = model.get_decoder(), len(rows)
    shared = common_prefix_length(rows) if B > 1 else 0
    seen.clear()
    cache, before_last, before_in = None, [], []
    if shared:
        out = decoder(input_ids=torch.tensor([rows[0][:shared]]), use_cache=True)  # (1, S)
        cache = select_rows(model, cache_from_output(out), [0] * B)  # (B, ..., S, ...)
        before_last = [out.last_hidden_state.expand(B, -1, -1)]  # (B, S, C)
        before_in = [seen.pop().expand(B, -1, -1)]  # (B, S, C)
    tails = [r[shared:] for r in rows]
    ids = pad_rows(tails, 0, torch.long)  # (B, W)
    attention = torch.cat(
        [
            torch.ones(B, shared, dtype=torch.long),
            pad_rows([[1] * len(t) for t in tails], 0, torch.long),
        ],
        dim=1,
    )  # (B, S + W)
    positions = (shared + torch.arange(ids.shape[1]))[None].expand(B, -1)  # (B, W)
    out = decoder(
        input_ids=ids,
        attention_mask=attention,
        position_ids=positions,
        use_cache=shared > 0,
        **{cache_kwarg(decoder): cache},
    )
    last = torch.cat([*before_last, out.last_hidden_state], dim=1)  # (B, T, C)
    entering = torch.cat([*before_in, seen.pop()], dim=1)  # (B, T, C)
    return last, entering, shared + sum(len(t) for t in tails)


@torch.no_grad()
def frozen_pass(
    model: Any,
    sequences: Sequence[Tokenized],
    first_block: int,
    *,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "reading the pairs once",
) -> FrozenPass:
    """One pass of the model with any adapter switched off: the reference log-probs and the
    hidden state entering block ``first_block`` of every sequence. Rows are sorted by length
    and batched; a batch's common beginning is read once (``_read_batch``)."""
    from tqdm.auto import tqdm

    blocks = model.get_decoder().layers
    if not 0 <= first_block < len(blocks):
        raise ValueError(f"first_block must be between 0 and {len(blocks) - 1}, got {first_block}.")
    if not sequences:
        raise ValueError("No sequences to read.")
    seen: list[torch.Tensor] = []  # what enters block first_block, one tensor per forward call
    hook = blocks[first_block].register_forward_pre_hook(
        lambda _module, args, kwargs: seen.append(
            (args[0] if args else kwargs["hidden_states"]).detach()
        ),
        with_kwargs=True,
    )
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    hidden: list[torch.Tensor | None] = [None] * len(sequences)
    logps = torch.zeros(len(sequences))
    start, tokens = time.perf_counter(), 0
    try:
        with (
            lora_disabled(model),
            tqdm(total=len(sequences), desc=desc, unit="seq", disable=not progress) as bar,
        ):
            for at in range(0, len(order), batch_size):
                rows = order[at : at + batch_size]
                last, entering, read = _read_batch(model, [sequences[i].ids for i in rows], seen)
                ids = pad_rows([sequences[i].ids for i in rows], 0, torch.long)  # (B, T)
                counted = pad_rows([sequences[i].counted for i in rows], False, torch.bool)
                logps[rows] = answer_logprobs(model, last, ids, counted)
                for j, i in enumerate(rows):
                    hidden[i] = entering[j, : len(sequences[i])].clone()  # (T_i, C)
                tokens += read
                bar.update(len(rows))
    finally:
        hook.remove()
    return FrozenPass(
        first_block=first_block,
        ids=[list(s.ids) for s in sequences],
        counted=[list(s.counted) for s in sequences],
        hidden=hidden,  # type: ignore[arg-type]
        logps=logps,
        tokens=tokens,
        seconds=time.perf_counter() - start,
    )


def top_logprobs(
    model: Any, hidden: torch.Tensor, ids: torch.Tensor, counted: torch.Tensor, first_block: int
) -> torch.Tensor:
    """Summed log-probs of the counted tokens ``(B,)``, running only blocks ``first_block`` and
    above (LoRA included) on ``hidden`` ``(B, T, C)``, the input of block ``first_block``.

    Rows are padded on the right: with a causal mask no real token sees the padding, so the
    mask needs no padding part.
    """
    decoder = model.get_decoder()
    B, T, _ = hidden.shape
    positions = torch.arange(T)[None].expand(B, T)  # (B, T)
    rotary = decoder.rotary_emb(hidden, positions)  # (cos, sin), each (B, T, head_dim)
    causal = torch.full((T, T), float("-inf"), dtype=hidden.dtype).triu(1)  # -inf: the future
    causal = causal[None, None]  # (1, 1, T, T), the same for every row and head
    x = hidden
    for block in decoder.layers[first_block:]:
        x = block(x, attention_mask=causal, position_ids=positions, position_embeddings=rotary)
        x = x[0] if isinstance(x, tuple) else x  # (B, T, C)
    return answer_logprobs(model, decoder.norm(x), ids, counted)


def rows_logprobs(model: Any, frozen: FrozenPass, rows: Sequence[int]) -> torch.Tensor:
    """``top_logprobs`` for sequences ``rows`` of a frozen pass: ``(len(rows),)``."""
    hidden = torch.nn.utils.rnn.pad_sequence([frozen.hidden[i] for i in rows], batch_first=True)
    ids = pad_rows([frozen.ids[i] for i in rows], 0, torch.long)
    counted = pad_rows([frozen.counted[i] for i in rows], False, torch.bool)
    return top_logprobs(model, hidden, ids, counted, frozen.first_block)
