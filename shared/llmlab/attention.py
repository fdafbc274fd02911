"""Attention: the textbook formula in numpy, the real model's attention, and tools to look at it.

Covers:
- ``scaled_dot_product_attention(q, k, v, mask)`` and ``causal_mask(T)``: the formula
  softmax(q·kᵀ / √d) · v, in numpy, small enough to follow by hand.
- ``attention_weights(lm, text)``: the model's own attention probabilities, shape
  (layers, heads, T, T), as transformers reports them (``output_attentions=True``).
- ``attention_from_weights(lm, text, layer)``: the same probabilities for one layer rebuilt from
  the weight matrices (RMSNorm → q/k projections → RoPE → grouped-query attention → causal mask →
  softmax), so you can check that nothing is hidden.
- ``head_scores(weights, ids)``: how much each head behaves like a previous-token head, a
  first-token ("attention sink") head and an induction head.
- ``heads_ablated`` / ``ablate_heads``: switch heads off and measure the change in next-token
  probabilities.
- ``render_html(tokens, weights, ...)``: a self-contained page (inline CSS/JS, no network) with a
  token×token heat map and a token-to-token line view; ``cli`` is ``llmlab attend``.

Leaves out: batches and padding (one text at a time), the KV cache, value vectors and what a head
*writes* (see ``llmlab.transformer`` for whole blocks), and attention implementations other than
"eager" (sdpa/flash kernels never materialise the weights).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# --- the formula, in numpy --------------------------------------------------------------------


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax. ``softmax(np.array([0., 0.])) -> [0.5, 0.5]``; -inf gets 0."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # a row that is all -inf stays all 0 below
    e = np.exp(x - m)
    s = e.sum(axis=axis, keepdims=True)
    return e / np.where(s == 0, 1.0, s)


def causal_mask(T: int) -> np.ndarray:
    """(T, T) booleans, True where query i may look at key j (j <= i).

    ``causal_mask(3) -> [[T, F, F], [T, T, F], [T, T, T]]``
    """
    if T < 1:
        raise ValueError(f"T must be a positive number of tokens, got {T}.")
    return np.tril(np.ones((T, T), dtype=bool))  # (T, T)


def scaled_dot_product_attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """softmax(q·kᵀ/√d, masked) · v. Returns (output (..., Tq, dv), weights (..., Tq, Tk)).

    ``mask`` is boolean, True = may attend (the same convention as torch's ``attn_mask``);
    it broadcasts against the scores, so ``causal_mask(T)`` works for any number of heads.
    """
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same last dimension, got {q.shape} and {k.shape}.")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same number of positions, got {k.shape} and {v.shape}.")
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)  # (..., Tq, Tk)
    if mask is not None:
        scores = np.where(np.asarray(mask, dtype=bool), scores, -np.inf)
    weights = softmax(scores, axis=-1)  # (..., Tq, Tk), each row sums to 1
    return weights @ v, weights  # (..., Tq, dv), (..., Tq, Tk)


# --- the real model's attention ---------------------------------------------------------------


def _dims(lm: Any) -> tuple[int, int, int, int]:
    cfg = lm.model.config
    n_heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    return cfg.num_hidden_layers, n_heads, cfg.num_key_value_heads, head_dim


def check_layer_head(lm_or_weights: Any, layer: int | None = None, head: int | None = None) -> None:
    """Raise a ValueError naming the valid range if ``layer``/``head`` is out of range."""
    if isinstance(lm_or_weights, np.ndarray):
        n_layers, n_heads = lm_or_weights.shape[:2]
    else:
        n_layers, n_heads = _dims(lm_or_weights)[:2]
    for name, value, n in (("layer", layer, n_layers), ("head", head, n_heads)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer in 0..{n - 1}, got {value!r}.")
        if not 0 <= value < n:
            raise ValueError(
                f"{name} {value} is out of range: this model has {n} {name}s, numbered 0..{n - 1}."
            )


def token_ids(lm: Any, text: str | Sequence[int]) -> list[int]:
    """The ids the model sees for ``text`` (no BOS is added: SmolLM2's tokenizer adds none)."""
    if isinstance(text, str):
        if not text:
            raise ValueError("text is empty: give at least one character to attend over.")
        ids = list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])
    else:
        ids = [int(i) for i in text]
        if not ids:
            raise ValueError("the list of token ids is empty.")
    if len(ids) > lm.context_length:
        raise ValueError(
            f"{len(ids)} tokens is longer than the model's context ({lm.context_length} tokens): "
            "shorten the text."
        )
    return ids


def display_tokens(lm: Any, ids: Sequence[int]) -> list[str]:
    """Each id decoded on its own: ``[' cat', ' sat']`` (bytes of a split character show as �)."""
    return [lm.tokenizer.decode([i]) for i in ids]


def attention_weights(
    lm: Any, text: str | Sequence[int], max_tokens: int = 512
) -> tuple[list[str], np.ndarray]:
    """The model's attention probabilities: (tokens, weights (layers, heads, T, T)) as float32.

    ``weights[l, h, i, j]`` = how much token i looks at token j in head h of layer l.
    The array grows with T²: 512 tokens already take 30·9·512²·4 bytes ≈ 283 MB, hence ``max_tokens``.
    """
    import torch

    ids = token_ids(lm, text)
    if len(ids) > max_tokens:
        n_layers, n_heads = _dims(lm)[:2]
        size = n_layers * n_heads * len(ids) ** 2 * 4 / 1e6
        raise ValueError(
            f"{len(ids)} tokens would need a {size:,.0f} MB attention array; the limit is "
            f"max_tokens={max_tokens}. Use a shorter text, or raise max_tokens if you have the memory."
        )
    with torch.no_grad():
        out = lm.model(torch.tensor([ids]), output_attentions=True)  # attentions: L × (1, H, T, T)
    if out.attentions is None or out.attentions[0] is None:
        raise RuntimeError(
            "The model returned no attention weights: load it with attn_implementation='eager' "
            "(llmlab.models.load_lm does)."
        )
    weights = torch.stack(out.attentions)[:, 0].float().numpy()  # (L, H, T, T)
    return display_tokens(lm, ids), weights


def layer_input(lm: Any, text: str | Sequence[int], layer: int) -> np.ndarray:
    """The residual stream entering decoder layer ``layer``: (T, hidden) float32."""
    import torch

    check_layer_head(lm, layer)
    ids = token_ids(lm, text)
    captured: dict[str, torch.Tensor] = {}

    def grab(module, args, kwargs):  # a forward pre-hook sees the layer's inputs
        captured["x"] = (args[0] if args else kwargs["hidden_states"]).detach()

    handle = lm.model.model.layers[layer].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.no_grad():
            lm.model(torch.tensor([ids]))
    finally:
        handle.remove()
    return captured["x"][0].float().numpy()  # (T, C)


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """RMSNorm: scale each vector to root-mean-square 1, then multiply by a learned weight."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + eps) * weight  # (T, C)


def rope(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """Rotary position embedding, "rotate-half" layout (Llama/transformers): x (..., T, d).

    Dimension pair (i, i + d/2) is rotated by the angle position × theta^(-2i/d): fast turns in
    the first pairs, slow ones in the last, so q·k depends on how far apart two tokens are.
    """
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    inv_freq = 1.0 / theta ** (np.arange(0, d, 2) / d)  # (d/2,)
    angles = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq  # (T, d/2)
    cos = np.cos(np.concatenate([angles, angles], axis=-1))  # (T, d)
    sin = np.sin(np.concatenate([angles, angles], axis=-1))  # (T, d)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    rotated_half = np.concatenate([-x2, x1], axis=-1)  # (..., T, d)
    return x * cos + rotated_half * sin


def queries_keys(lm: Any, hidden: np.ndarray, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Queries (H, T, d) and keys (KV, T, d) of ``layer`` for residual stream ``hidden`` (T, C), RoPE applied."""
    check_layer_head(lm, layer)
    _, n_heads, n_kv, d = _dims(lm)
    cfg = lm.model.config
    block = lm.model.model.layers[layer]
    w = {n: p.detach().double().numpy() for n, p in block.named_parameters()}
    x = rms_norm(hidden, w["input_layernorm.weight"], cfg.rms_norm_eps)  # (T, C)
    T = x.shape[0]
    q = (x @ w["self_attn.q_proj.weight"].T).reshape(T, n_heads, d).transpose(1, 0, 2)  # (H, T, d)
    k = (x @ w["self_attn.k_proj.weight"].T).reshape(T, n_kv, d).transpose(1, 0, 2)  # (KV, T, d)
    theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta") or cfg.rope_theta
    pos = np.arange(T)
    return rope(q, pos, theta), rope(k, pos, theta)


def attention_from_weights(lm: Any, text: str | Sequence[int], layer: int) -> np.ndarray:
    """Layer ``layer``'s attention probabilities (H, T, T) computed by hand from its weights."""
    _, n_heads, n_kv, d = _dims(lm)
    q, k = queries_keys(lm, layer_input(lm, text, layer), layer)  # (H, T, d), (KV, T, d)
    k = np.repeat(k, n_heads // n_kv, axis=0)  # GQA: query head h uses key head h // 3 -> (H, T, d)
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)  # (H, T, T)
    scores = np.where(causal_mask(q.shape[1]), scores, -np.inf)
    return softmax(scores, axis=-1)  # (H, T, T)


# --- what a head does, measured ---------------------------------------------------------------


@dataclass
class HeadScores:
    """Per (layer, head) scores in [0, 1]; each array has shape (layers, heads).

    previous_token: mean weight from token i to token i-1.
    first_token: mean weight from token i to token 0, the "attention sink".
    Both average over i >= 2: at i = 1 the previous token *is* the first token.
    induction: mean weight from a repeated token to the token that *followed* its previous
        occurrence ("... A B ... A → B"); NaN when the text repeats nothing.
    """

    previous_token: np.ndarray
    first_token: np.ndarray
    induction: np.ndarray

    KINDS = ("previous_token", "first_token", "induction")

    def top(self, kind: str, k: int = 5) -> list[tuple[int, int, float]]:
        """The k highest-scoring heads as (layer, head, score), best first."""
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}.")
        s = getattr(self, kind)
        if np.all(np.isnan(s)):
            return []
        order = np.argsort(np.nan_to_num(s, nan=-1.0), axis=None)[::-1][:k]
        return [(int(i // s.shape[1]), int(i % s.shape[1]), float(s.flat[i])) for i in order]

    def label(self, layer: int, head: int) -> str:
        """``'L17 H4: prev 0.00 · first 0.83 · induction 0.78'``."""
        ind = self.induction[layer, head]
        return (
            f"L{layer} H{head}: prev {self.previous_token[layer, head]:.2f}"
            f" · first {self.first_token[layer, head]:.2f}"
            f" · induction {'–' if np.isnan(ind) else f'{ind:.2f}'}"
        )


def induction_targets(ids: Sequence[Any]) -> list[tuple[int, int]]:
    """(query, key) pairs for induction: token i repeats token j (j < i-1) → key j+1.

    ``induction_targets([5, 6, 7, 5, 6, 7]) -> [(3, 1), (4, 2), (5, 3)]``
    """
    last: dict[Any, int] = {}
    pairs = []
    for i, t in enumerate(ids):
        j = last.get(t)
        if j is not None and j + 1 < i:
            pairs.append((i, j + 1))
        last[t] = i
    return pairs


def head_scores(weights: np.ndarray, ids: Sequence[Any]) -> HeadScores:
    """Score every head of ``weights`` (layers, heads, T, T) on the text ``ids`` (ids or tokens)."""
    w = np.asarray(weights)
    if w.ndim == 3:
        w = w[None]  # one layer -> (1, H, T, T)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"weights must have shape (layers, heads, T, T), got {w.shape}.")
    T = w.shape[-1]
    if len(ids) != T:
        raise ValueError(f"ids has {len(ids)} tokens but the weights cover {T}.")
    if T < 3:
        raise ValueError(
            f"need at least 3 tokens to score heads (got {T}): with fewer, the previous token "
            "and the first token are the same."
        )
    i = np.arange(2, T)  # at i = 1 the previous token is the first token: skip it
    prev = w[..., i, i - 1].mean(-1)  # (L, H)
    first = w[..., i, 0].mean(-1)  # (L, H)
    pairs = induction_targets(ids)
    if pairs:
        qi, kj = np.array(pairs).T
        ind = w[..., qi, kj].mean(-1)  # (L, H)
    else:
        ind = np.full(w.shape[:2], np.nan)
    return HeadScores(prev, first, ind)


def repeated_random_ids(lm: Any, n: int = 30, seed: int = 0) -> list[int]:
    """n random ordinary tokens, then the same n again: the classic induction-head probe."""
    rng = np.random.default_rng(seed)
    special = set(lm.tokenizer.all_special_ids)
    low = max(special) + 1 if special else 0
    half = rng.choice(np.arange(low, lm.tokenizer.vocab_size), size=n, replace=False).tolist()
    return half + half


# --- ablation ---------------------------------------------------------------------------------


def _as_head_list(
    lm: Any, heads: tuple[int, int] | Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    heads = list(heads)
    if len(heads) == 2 and all(isinstance(x, (int, np.integer)) for x in heads):
        heads = [tuple(heads)]  # a single (layer, head)
    out = []
    for h in heads:
        layer, head = h
        check_layer_head(lm, layer, head)
        out.append((int(layer), int(head)))
    return out


@contextmanager
def heads_ablated(lm: Any, heads: tuple[int, int] | Iterable[tuple[int, int]]) -> Iterator[None]:
    """Inside the ``with``, the given (layer, head)s write nothing: their slice of ``o_proj``'s input is zeroed."""
    d = _dims(lm)[3]
    by_layer: dict[int, list[int]] = {}
    for layer, head in _as_head_list(lm, heads):
        by_layer.setdefault(layer, []).append(head)

    def make_hook(hs: list[int]):
        def hook(module, args):
            x = args[0].clone()  # (B, T, H*d): the heads' outputs side by side
            for h in hs:
                x[..., h * d : (h + 1) * d] = 0.0
            return (x, *args[1:])

        return hook

    handles = [
        lm.model.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(make_hook(hs))
        for layer, hs in by_layer.items()
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class ProbChange:
    """One candidate next token, before and after the ablation."""

    token: str
    token_id: int
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


@dataclass
class Ablation:
    """Effect of switching off ``heads`` on the next-token distribution after ``text``."""

    heads: list[tuple[int, int]]
    changes: list[ProbChange]  # top-k before ∪ top-k after, biggest |change| first
    total_variation: float  # ½·Σ|p - q| over the whole vocabulary: 0 = no effect, 1 = disjoint
    top_before: str
    top_after: str


def next_token_distribution(lm: Any, text: str | Sequence[int]) -> np.ndarray:
    """Probabilities (vocab,) of the token that follows ``text``."""
    import torch

    ids = token_ids(lm, text)
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0, -1]  # (V,)
    return torch.softmax(logits.double(), -1).numpy()


def ablate_heads(
    lm: Any,
    text: str | Sequence[int],
    heads: tuple[int, int] | Iterable[tuple[int, int]],
    k: int = 5,
) -> Ablation:
    """Zero the given head(s) and report how the next-token probabilities change.

    ``ablate_heads(lm, "one two three one two", (17, 4))`` – one head; a list for several.
    """
    heads = _as_head_list(lm, heads)
    p = next_token_distribution(lm, text)
    with heads_ablated(lm, heads):
        q = next_token_distribution(lm, text)
    ids = list(dict.fromkeys(np.argsort(-p)[:k].tolist() + np.argsort(-q)[:k].tolist()))
    changes = [ProbChange(lm.tokenizer.decode([i]), int(i), float(p[i]), float(q[i])) for i in ids]
    changes.sort(key=lambda c: -abs(c.change))
    return Ablation(
        heads=heads,
        changes=changes,
        total_variation=float(0.5 * np.abs(p - q).sum()),
        top_before=lm.tokenizer.decode([int(p.argmax())]),
        top_after=lm.tokenizer.decode([int(q.argmax())]),
    )


# --- pictures ---------------------------------------------------------------------------------


def show_token(t: str) -> str:
    """A token made visible: newline → ↵, tab → ⇥ (spaces stay, shown with white-space: pre)."""
    return t.replace("\n", "↵").replace("\t", "⇥") or "∅"


def heatmap(ax: Any, tokens: Sequence[str], w: np.ndarray, title: str = "") -> Any:
    """Draw one (T, T) attention matrix on a matplotlib axis: rows = query, columns = key."""
    w = np.asarray(w)
    masked = np.ma.masked_where(~causal_mask(w.shape[0]), w)  # the future is never looked at
    im = ax.imshow(masked, cmap="Blues", vmin=0, vmax=1)
    labels = [show_token(t) for t in tokens]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("key (looked at)")
    ax.set_ylabel("query (looking)")
    ax.set_title(title)
    return im


def mosaic(weights: np.ndarray, gap: int = 1) -> np.ndarray:
    """All heads' (T, T) maps tiled as one image: (layers·(T+gap), heads·(T+gap)), gaps NaN."""
    L, H, T, _ = weights.shape
    s = T + gap
    out = np.full((L * s, H * s), np.nan)
    for layer in range(L):
        for h in range(H):
            out[layer * s : layer * s + T, h * s : h * s + T] = weights[layer, h]
    return out


def _cell_color(w: float) -> str:
    return f"rgba(33,102,172,{w:.3f})"


def render_html(
    tokens: Sequence[str],
    weights: np.ndarray,
    layer: int | None = None,
    head: int | None = None,
    *,
    scores: HeadScores | None = None,
    title: str = "Attention",
    full_page: bool = True,
) -> str:
    """A self-contained attention explorer: heat map + line view, layer/head sliders, no network.

    ``weights`` is (layers, heads, T, T). ``layer``/``head`` restrict the page to that layer/head
    (None = keep all). ``full_page=False`` gives a fragment for ``IPython.display.HTML``.
    Hover a token (left column or row) to see only its lines.
    """
    w = np.asarray(weights)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(f"weights must have shape (layers, heads, T, T), got {w.shape}.")
    if len(tokens) != w.shape[2]:
        raise ValueError(f"{len(tokens)} tokens but the weights cover {w.shape[2]}.")
    check_layer_head(w, layer, head)
    layers = [layer] if layer is not None else list(range(w.shape[0]))
    heads = [head] if head is not None else list(range(w.shape[1]))
    T = w.shape[2]
    n_bytes = len(layers) * len(heads) * T * T * 2  # 2 bytes per weight, before base64
    if n_bytes > 50e6:
        raise ValueError(
            f"{len(layers)} layers × {len(heads)} heads × {T}² weights would make a "
            f"{n_bytes * 4 / 3 / 1e6:,.0f} MB page; pass layer=... (and head=...) or use a "
            "shorter text."
        )
    sub = w[np.ix_(layers, heads)].astype(np.float64)  # (len(layers), len(heads), T, T)
    q16 = np.round(np.clip(sub, 0, 1) * 65535).astype("<u2")  # 2 bytes per weight
    labels = [[scores.label(la, h) for h in heads] for la in layers] if scores is not None else None
    data = {
        "tokens": [show_token(t) for t in tokens],
        "layers": layers,
        "heads": heads,
        "T": T,
        "w": base64.b64encode(q16.tobytes()).decode("ascii"),
        "labels": labels,
    }
    uid = "llmlab-attn-" + uuid.uuid4().hex[:8]
    payload = json.dumps(data).replace("</", "<\\/")
    first = sub[0, 0]
    esc = [html.escape(t) for t in data["tokens"]]

    # The first head is drawn here in Python, so the page shows something even without JS.
    head_row = "".join(f'<th class="col"><span>{t}</span></th>' for t in esc)
    rows = []
    for i in range(T):
        cells = []
        for j in range(T):
            if j > i:
                cells.append('<td class="fut"></td>')
            else:
                cells.append(
                    f'<td style="background:{_cell_color(first[i, j])}" '
                    f'title="{esc[i]} → {esc[j]}: {first[i, j]:.3f}"></td>'
                )
        rows.append(f'<tr><th class="row" data-i="{i}">{esc[i]}</th>{"".join(cells)}</tr>')
    table = f'<table class="heat"><tr><th></th>{head_row}</tr>{"".join(rows)}</table>'
    svg = _lines_svg(esc, first)
    start_label = html.escape(labels[0][0]) if labels else f"L{layers[0]} H{heads[0]}"

    def slider(name: str, values: list[int]) -> str:
        return (
            f'<label>{name} <input type="range" class="{name.lower()}" min="0" '
            f'max="{len(values) - 1}" value="0" step="1"> <b class="{name.lower()}-v">'
            f"{values[0]}</b></label>"
        )

    body = f"""<div class="llmlab-attn" id="{uid}">
<style>
#{uid} {{font-family: system-ui, sans-serif; font-size: 13px; color: #222;}}
#{uid} .controls {{display: flex; gap: 18px; align-items: center; margin: 6px 0;}}
#{uid} .lab {{font-family: monospace; color: #444;}}
#{uid} .views {{display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap;}}
#{uid} table.heat {{border-collapse: collapse;}}
#{uid} table.heat td {{width: 14px; height: 14px; padding: 0; border: 1px solid #f4f4f4;}}
#{uid} table.heat td.fut {{background: #eee;}}
#{uid} table.heat th {{font-weight: normal; font-family: monospace; white-space: pre;
  font-size: 11px; padding: 0 4px; text-align: right;}}
#{uid} table.heat th.col {{height: 70px; vertical-align: bottom; padding: 0;}}
#{uid} table.heat th.col span {{writing-mode: vertical-rl; transform: rotate(180deg);}}
#{uid} svg text {{font-family: monospace; font-size: 12px; white-space: pre; cursor: pointer;}}
#{uid} svg line {{stroke: rgb(33,102,172);}}
</style>
<div class="title"><b>{html.escape(title)}</b> — {T} tokens. Rows look at columns; hover a token.</div>
<div class="controls">{slider("Layer", layers)}{slider("Head", heads)}
<span class="lab">{start_label}</span>
<label><input type="checkbox" class="nosink"> hide lines to the first token</label></div>
<div class="views"><div class="heatbox">{table}</div><div class="linebox">{svg}</div></div>
<script type="application/json" class="attn-data">{payload}</script>
<script>{_JS.replace("__UID__", uid)}</script>
</div>"""
    if not full_page:
        return body
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>\n"
    )


def _lines_svg(esc_tokens: Sequence[str], w: np.ndarray, focus: int | None = None) -> str:
    """Two columns of tokens; a line from query i (left) to key j (right), opacity = weight."""
    T = len(esc_tokens)
    row, x0, x1 = 18, 150, 330
    parts = [f'<svg class="lines" width="480" height="{T * row + 10}">']
    for i in range(T):
        for j in range(i + 1):
            a = w[i, j]
            if a < 0.02 or (focus is not None and i != focus):
                continue
            y0, y1 = 14 + i * row - 4, 14 + j * row - 4
            parts.append(
                f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" '
                f'stroke-opacity="{a:.3f}" stroke-width="{1 + 3 * a:.2f}"/>'
            )
    for i, t in enumerate(esc_tokens):
        y = 14 + i * row
        parts.append(
            f'<text class="q" data-i="{i}" x="{x0 - 6}" y="{y}" text-anchor="end">{t}</text>'
        )
        parts.append(f'<text class="k" x="{x1 + 6}" y="{y}">{t}</text>')
    parts.append("</svg>")
    return "".join(parts)


# Interactivity: decode the weights, redraw on slider change, focus lines on hover. No libraries.
_JS = r"""
(function () {
  var root = document.getElementById("__UID__");
  if (!root) return;
  var D = JSON.parse(root.querySelector(".attn-data").textContent);
  var raw = atob(D.w), T = D.T, nH = D.heads.length;
  var W = new Float32Array(raw.length / 2);
  for (var n = 0; n < W.length; n++) {
    W[n] = (raw.charCodeAt(2 * n) | (raw.charCodeAt(2 * n + 1) << 8)) / 65535;
  }
  var li = 0, hi = 0, focus = null, nosink = false;
  function w(i, j) { return W[((li * nH + hi) * T + i) * T + j]; }
  function esc(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function drawHeat() {
    var rows = root.querySelectorAll("table.heat tr");
    for (var i = 0; i < T; i++) {
      var cells = rows[i + 1].querySelectorAll("td");
      for (var j = 0; j <= i; j++) {
        var a = w(i, j);
        cells[j].style.background = "rgba(33,102,172," + a.toFixed(3) + ")";
        cells[j].title = D.tokens[i] + " \u2192 " + D.tokens[j] + ": " + a.toFixed(3);
        cells[j].style.outline = (focus === i) ? "1px solid #c33" : "";
      }
    }
  }
  function drawLines() {
    var row = 18, x0 = 150, x1 = 330, s = "";
    for (var i = 0; i < T; i++) {
      if (focus !== null && i !== focus) continue;
      for (var j = 0; j <= i; j++) {
        var a = w(i, j);
        if (a < 0.02 || (nosink && j === 0)) continue;
        s += '<line x1="' + x0 + '" y1="' + (10 + i * row) + '" x2="' + x1 + '" y2="' +
          (10 + j * row) + '" stroke-opacity="' + a.toFixed(3) + '" stroke-width="' +
          (1 + 3 * a).toFixed(2) + '"></line>';
      }
    }
    for (var k = 0; k < T; k++) {
      var y = 14 + k * row, t = esc(D.tokens[k]);
      var bold = (focus === k) ? ' font-weight="bold" fill="#c33"' : "";
      s += '<text class="q" data-i="' + k + '" x="' + (x0 - 6) + '" y="' + y +
        '" text-anchor="end"' + bold + ">" + t + "</text>";
      s += '<text class="k" x="' + (x1 + 6) + '" y="' + y + '">' + t + "</text>";
    }
    var box = root.querySelector(".linebox");
    box.innerHTML = '<svg class="lines" width="480" height="' + (T * row + 10) + '">' + s + "</svg>";
    box.querySelectorAll("text.q").forEach(function (el) {
      el.addEventListener("mouseenter", function () { setFocus(+el.getAttribute("data-i")); });
    });
    box.querySelector("svg").addEventListener("mouseleave", function () { setFocus(null); });
  }
  function setFocus(i) { if (focus !== i) { focus = i; draw(); } }
  function draw() {
    root.querySelector(".layer-v").textContent = D.layers[li];
    root.querySelector(".head-v").textContent = D.heads[hi];
    root.querySelector(".lab").textContent = D.labels ? D.labels[li][hi] :
      ("L" + D.layers[li] + " H" + D.heads[hi]);
    drawHeat();
    drawLines();
  }
  root.querySelector("input.layer").addEventListener("input", function (e) {
    li = +e.target.value; draw();
  });
  root.querySelector("input.head").addEventListener("input", function (e) {
    hi = +e.target.value; draw();
  });
  root.querySelector("input.nosink").addEventListener("change", function (e) {
    nosink = e.target.checked; draw();
  });
  root.querySelectorAll("table.heat th.row").forEach(function (el) {
    el.addEventListener("mouseenter", function () { setFocus(+el.getAttribute("data-i")); });
    el.addEventListener("mouseleave", function () { setFocus(null); });
  });
  draw();
})();
"""


def iframe(page: str, height: int = 600) -> str:
    """Wrap a full page in ``<iframe srcdoc=...>`` so its CSS/JS stay isolated in a notebook."""
    return (
        f'<div><iframe srcdoc="{html.escape(page, quote=True)}" '
        f'style="width: 100%; height: {height}px; border: 1px solid #ddd;"></iframe></div>'
    )


# --- command line -----------------------------------------------------------------------------


def cli(argv: list[str] | None = None) -> int:
    """``llmlab attend "text" [--layer L --head H] [--out attention.html]``."""
    p = argparse.ArgumentParser(
        prog="llmlab attend",
        description="Show which tokens attend to which in the bundled model, as text or HTML.",
    )
    p.add_argument("text", help="the text to run through the model")
    p.add_argument("--layer", type=int, default=None, help="layer to show (0-based)")
    p.add_argument("--head", type=int, default=None, help="head to show (needs --layer)")
    p.add_argument("--out", type=Path, default=None, help="write a self-contained HTML page here")
    p.add_argument("--model", default=None, help="language model (default: the bundled one)")
    args = p.parse_args(argv)
    if args.head is not None and args.layer is None:
        p.error("--head needs --layer too, e.g. --layer 17 --head 4")

    from llmlab.models import load_lm

    lm = load_lm(args.model)
    try:
        check_layer_head(lm, args.layer, args.head)
        ids = token_ids(lm, args.text)
    except ValueError as exc:
        print(f"llmlab attend: {exc}", file=sys.stderr)
        return 2
    tokens, weights = attention_weights(lm, ids)
    L, H, T, _ = weights.shape
    scores = head_scores(weights, ids) if T >= 3 else None
    print(f"{lm.name}: {T} token{'s' if T != 1 else ''}, {L} layers x {H} heads")
    print("tokens:", " ".join(f"{i}:{show_token(t)!r}" for i, t in enumerate(tokens)))
    names = {"previous_token": "previous-token", "first_token": "first-token (sink)"}
    names["induction"] = "induction"
    for kind, name in names.items() if scores is not None else ():
        top = scores.top(kind, 3)
        shown = ", ".join(f"L{la}H{h} {s:.2f}" for la, h, s in top) or "– (no repeated tokens)"
        print(f"top {name} heads: {shown}")
    if scores is None:
        print("(head scores need at least 3 tokens)")
    if args.layer is not None:
        hs = [args.head] if args.head is not None else range(H)
        for h in hs:
            print(scores.label(args.layer, h) if scores is not None else f"L{args.layer} H{h}")
            if args.head is not None:
                w = weights[args.layer, h]  # (T, T)
                print("  token -> the earlier token it looks at most (not counting the first)")
                for i, t in enumerate(tokens[1:], start=1):
                    j = 1 + int(np.argmax(w[i, 1 : i + 1]))
                    print(
                        f"  {show_token(t)!r:>14} -> {show_token(tokens[j])!r:<14} {w[i, j]:.2f}"
                        f"   (first token {w[i, 0]:.2f})"
                    )
    if args.out is not None:
        page = render_html(
            tokens, weights, args.layer, args.head, scores=scores, title=f"Attention in {lm.name}"
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(page, encoding="utf-8")
        print(f"wrote {args.out} ({len(page) / 1024:.0f} KB, opens offline in any browser)")
    return 0
