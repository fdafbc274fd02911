"""The transformer rebuilt by hand from SmolLM2's own weights, nanoGPT-style.

One decoder layer ("block") of a Llama-family model is, in order::

    x = x + attention(rms_norm(x))     # tokens exchange information (RoPE positions, GQA heads)
    x = x + mlp(rms_norm(x))           # each token is processed on its own (SwiGLU)

and the whole model is ``embedding -> 30 blocks -> final rms_norm -> LM head``. This module writes
each box as a small function that reads its weights straight from ``lm.model`` (the transformers
``LlamaForCausalLM`` that ``llmlab.runtime.models.load_lm`` returns), so the learner can check every
step against the real thing:

- the architecture facts come from ``llmlab.runtime.architecture.config_of(lm)`` (read, never assumed);
- ``rms_norm``, ``rotary`` + ``rotate_half`` + ``apply_rotary`` (RoPE): the one implementation
  of each in llmlab (``llmlab.internals.attention`` uses them too); ``queries_keys_values`` and
  ``attention`` (grouped-query: 9 query heads share 3 key/value heads), ``mlp`` (SwiGLU).
- ``block_forward(lm, layer, hidden_states)``: one whole decoder layer; equal to the model's
  own layer output (tests check 1e-4).
- ``residual_stream(lm, text)``: embedding + every block, by hand; ``final_logits`` on top.
- ``parameter_breakdown(lm)``: where the 134.5 M parameters live.
- ``logit_lens(lm, text)``: decode every layer's residual stream through the final norm and the
  LM head, to watch the answer form layer by layer.

Shape letters: B batch, T tokens, C hidden size (576), nh query heads (9), nkv key/value heads (3),
hs head size (64), F MLP width (1536), V vocabulary (49152), L layers (30).

Leaves out: padding masks (one unpadded sequence per row), the KV cache used during generation,
dropout and training, and RoPE scaling variants (SmolLM2 uses plain RoPE; we check that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from llmlab.runtime.architecture import check_layer_head, config_of


def _layer(lm: Any, layer: int) -> Any:
    """The model's decoder layer ``layer``, or a ValueError naming the valid range."""
    check_layer_head(lm, layer)
    return lm.model.model.layers[layer]


# --- the boxes ----------------------------------------------------------------------------------


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Scale each vector to root-mean-square 1, then by a learned per-channel ``weight``.

    Unlike LayerNorm there is no mean subtraction and no bias. ``x``: (..., C).
    """
    ms = x.pow(2).mean(-1, keepdim=True)  # (..., 1) mean of squares of each vector
    return weight * (x * torch.rsqrt(ms + eps))  # (..., C)


def rotary(
    position_ids: torch.Tensor, head_dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE tables: cos and sin of angle ``position * theta**(-2i/head_dim)`` for each pair i.

    ``position_ids``: (B, T) ints. Returns ``(cos, sin)``, each (B, T, head_dim).
    """
    inv_freq = 1.0 / (
        theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    )  # (hs/2,)
    angles = (
        position_ids[..., None].float() * inv_freq
    )  # (B, T, hs/2) one angle per position and pair
    angles = torch.cat((angles, angles), dim=-1)  # (B, T, hs) dims i and i + hs/2 share an angle
    return angles.cos(), angles.sin()  # (B, T, hs) each


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dim: a 90-degree turn of each pair."""
    x1, x2 = x.chunk(2, dim=-1)  # (..., hs/2) each
    return torch.cat((-x2, x1), dim=-1)  # (..., hs)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate query or key vectors by their position's angles. ``x``: (B, heads, T, hs)."""
    cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, hs) broadcast over heads
    return x * cos + rotate_half(x) * sin  # (B, heads, T, hs)


def queries_keys_values(
    lm: Any, layer: int, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Project (normalised) ``x`` (B, T, C) to per-head q (B, nh, T, hs), k and v (B, nkv, T, hs).

    RoPE is applied to q and k; the key/value heads are *not* repeated yet (that is GQA's job).
    """
    cfg = config_of(lm)
    attn = _layer(lm, layer).self_attn
    B, T, C = x.shape
    nh, nkv, hs = cfg.n_head, cfg.n_kv_head, cfg.head_dim
    q = F.linear(x, attn.q_proj.weight)  # (B, T, nh*hs)  576 -> 576
    k = F.linear(x, attn.k_proj.weight)  # (B, T, nkv*hs) 576 -> 192: only 3 key heads
    v = F.linear(x, attn.v_proj.weight)  # (B, T, nkv*hs) 576 -> 192: only 3 value heads
    q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
    k = k.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
    v = v.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
    q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)  # positions enter here, by rotation
    return q, k, v


def attention(
    lm: Any, layer: int, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal grouped-query self-attention of decoder layer ``layer`` on (normalised) ``x``: (B, T, C).

    Returns ``(out, weights)``: out (B, T, C) to add to the residual stream, and the attention
    probabilities (B, nh, T, T).
    """
    q, k, v = queries_keys_values(lm, layer, x, cos, sin)  # (B, nh|nkv, T, hs)
    B, nh, T, hs = q.shape
    group = nh // k.shape[1]  # 3 query heads share each key/value head
    k = k.repeat_interleave(group, dim=1)  # (B, nh, T, hs) query head h uses kv head h // group
    v = v.repeat_interleave(group, dim=1)  # (B, nh, T, hs)
    scores = (q @ k.transpose(-2, -1)) * hs**-0.5  # (B, nh, T, T) query i . key j, scaled
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # (T, T) True above the diagonal
    scores = scores.masked_fill(future, float("-inf"))  # (B, nh, T, T) no peeking ahead
    weights = scores.softmax(dim=-1)  # (B, nh, T, T) each row sums to 1
    y = weights @ v  # (B, nh, T, hs) weighted average of value vectors
    y = y.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh*hs) heads side by side again
    o_proj = _layer(lm, layer).self_attn.o_proj
    return F.linear(y, o_proj.weight), weights  # (B, T, C), (B, nh, T, T)


def mlp(lm: Any, layer: int, x: torch.Tensor) -> torch.Tensor:
    """SwiGLU feed-forward of decoder layer ``layer``: down(silu(gate(x)) * up(x)). ``x``: (B, T, C)."""
    m = _layer(lm, layer).mlp
    gate = F.silu(F.linear(x, m.gate_proj.weight))  # (B, T, F) 576 -> 1536, then SiLU "gate"
    up = F.linear(x, m.up_proj.weight)  # (B, T, F) 576 -> 1536
    return F.linear(gate * up, m.down_proj.weight)  # (B, T, C) 1536 -> 576


def block_forward(
    lm: Any, layer: int, hidden_states: torch.Tensor, position_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """One decoder layer by hand: x + attn(norm(x)), then + mlp(norm(.)). (B, T, C) -> (B, T, C).

    ``position_ids`` (B, T) default to 0, 1, ..., T-1. Matches ``lm.model.model.layers[layer]``.
    """
    cfg = config_of(lm)
    blk = _layer(lm, layer)
    x = hidden_states
    if x.dim() != 3 or x.shape[-1] != cfg.n_embd:
        raise ValueError(
            f"hidden_states must have shape (B, T, {cfg.n_embd}), got {tuple(x.shape)}."
        )
    B, T, _ = x.shape
    if position_ids is None:
        position_ids = torch.arange(T)[None].expand(B, T)  # (B, T)
    cos, sin = rotary(position_ids, cfg.head_dim, cfg.rope_theta)  # (B, T, hs) each
    h = rms_norm(x, blk.input_layernorm.weight, cfg.rms_norm_eps)  # (B, T, C)
    a, _ = attention(lm, layer, h, cos, sin)  # (B, T, C)
    x = x + a  # (B, T, C) residual connection: attention *adds* to the stream
    h = rms_norm(x, blk.post_attention_layernorm.weight, cfg.rms_norm_eps)  # (B, T, C)
    return x + mlp(lm, layer, h)  # (B, T, C) residual connection again


# --- the whole model ----------------------------------------------------------------------------


def _input_ids(lm: Any, text: str | torch.Tensor) -> torch.Tensor:
    if isinstance(text, torch.Tensor):
        return text if text.dim() == 2 else text[None]  # (B, T)
    if not isinstance(text, str) or not text:
        raise ValueError(
            f"text must be a non-empty string (or a tensor of token ids), got {text!r}."
        )
    return lm.tokenizer(text, return_tensors="pt").input_ids  # (1, T)


@torch.no_grad()
def residual_stream(lm: Any, text: str | torch.Tensor) -> torch.Tensor:
    """The residual stream after the embedding and after each block, by hand: (L+1, B, T, C).

    Entry 0 is the token embeddings; entry i is the output of block i-1 (not yet normalised).
    """
    ids = _input_ids(lm, text)  # (B, T)
    x = F.embedding(ids, lm.model.model.embed_tokens.weight)  # (B, T, C) one row per token id
    stream = [x]
    for layer in range(config_of(lm).n_layer):
        x = block_forward(lm, layer, x)  # (B, T, C)
        stream.append(x)
    return torch.stack(stream)  # (L+1, B, T, C)


def unembed(lm: Any, x: torch.Tensor) -> torch.Tensor:
    """Final RMSNorm + LM head: residual vectors (..., C) -> logits (..., V)."""
    cfg = config_of(lm)
    x = rms_norm(x, lm.model.model.norm.weight, cfg.rms_norm_eps)  # (..., C)
    return F.linear(x, lm.model.lm_head.weight)  # (..., V) the tied head is the embedding matrix


@torch.no_grad()
def final_logits(lm: Any, text: str | torch.Tensor) -> torch.Tensor:
    """Logits from the hand-built model: embedding -> all blocks -> norm -> head. (B, T, V)."""
    return unembed(lm, residual_stream(lm, text)[-1])  # (B, T, V)


# --- counting -----------------------------------------------------------------------------------


def parameter_breakdown(lm: Any) -> dict[str, int]:
    """Parameters per component, summed over all layers; a tied LM head is counted once.

    Keys: ``embedding``, ``attention``, ``mlp``, ``norms`` (the two per-layer RMSNorms),
    ``final_norm``, ``lm_head`` (0 when tied to the embedding). The values sum to
    ``sum(p.numel() for p in lm.model.parameters())``; a parameter this function cannot place
    raises, so a new architecture cannot be miscounted silently.
    """
    counts = dict.fromkeys(["embedding", "attention", "mlp", "norms", "final_norm", "lm_head"], 0)
    for name, p in lm.model.named_parameters():  # tied weights are listed once
        if name.endswith("embed_tokens.weight"):
            key = "embedding"
        elif ".self_attn." in name:
            key = "attention"
        elif ".mlp." in name:
            key = "mlp"
        elif name.endswith(("input_layernorm.weight", "post_attention_layernorm.weight")):
            key = "norms"
        elif name.endswith("model.norm.weight"):
            key = "final_norm"
        elif name.startswith("lm_head."):
            key = "lm_head"
        else:
            raise ValueError(f"parameter_breakdown does not know where {name!r} belongs.")
        counts[key] += p.numel()
    return counts


def layer_parameters(lm: Any, layer: int) -> dict[str, int]:
    """Parameters of one decoder layer by weight matrix: ``{"q_proj": 331776, ...}``."""
    return {
        name.replace(".weight", "").split(".")[-1]: p.numel()
        for name, p in _layer(lm, layer).named_parameters()
    }


# --- logit lens ---------------------------------------------------------------------------------


@dataclass
class LogitLens:
    """What each layer's residual stream "would say" at one position, decoded by the final norm + head."""

    tokens: list[str]  # the input, one string per token
    position: int  # which position was decoded (index into tokens)
    log_probs: torch.Tensor  # (L+1, V): row 0 = embeddings, row i = after block i-1
    tokenizer: Any

    def top(self, k: int = 1) -> list[list[tuple[str, float]]]:
        """Per layer, the k most likely next tokens with their probabilities."""
        p, idx = self.log_probs.exp().topk(k, dim=-1)  # (L+1, k) each
        return [
            [(self.tokenizer.decode([int(i)]), float(v)) for v, i in zip(pr, ix, strict=True)]
            for pr, ix in zip(p, idx, strict=True)
        ]

    def _token_id(self, token: str | int) -> int:
        if isinstance(token, int):
            return token
        ids = self.tokenizer.encode(token, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(
                f"{token!r} is {len(ids)} tokens; pass a single token (e.g. ' Paris')."
            )
        return ids[0]

    def rank(self, token: str | int) -> list[int]:
        """Per layer, the rank of ``token`` among all V candidates (0 = the top prediction)."""
        tid = self._token_id(token)
        lp = self.log_probs  # (L+1, V)
        return (lp > lp[:, tid : tid + 1]).sum(-1).tolist()  # (L+1,) how many beat it

    def prob(self, token: str | int) -> list[float]:
        """Per layer, the probability given to ``token``."""
        return self.log_probs[:, self._token_id(token)].exp().tolist()  # (L+1,)


@torch.no_grad()
def logit_lens(lm: Any, text: str, position: int = -1) -> LogitLens:
    """Decode every layer's residual stream at ``position`` (default: the last token).

    >>> lens = logit_lens(lm, "The capital of France is")   # doctest: +SKIP
    >>> lens.top(1)[-1]                                      # doctest: +SKIP
    [(' Paris', 0.77...)]
    """
    ids = _input_ids(lm, text)  # (1, T)
    T = ids.shape[1]
    if not -T <= position < T:
        raise ValueError(
            f"position must be in [{-T}, {T - 1}] for this {T}-token text, got {position}."
        )
    stream = residual_stream(lm, ids)[:, 0, position]  # (L+1, C)
    log_probs = unembed(lm, stream).log_softmax(-1)  # (L+1, V)
    tokens = [lm.tokenizer.decode([int(i)]) for i in ids[0]]
    return LogitLens(
        tokens=tokens, position=position % T, log_probs=log_probs, tokenizer=lm.tokenizer
    )
