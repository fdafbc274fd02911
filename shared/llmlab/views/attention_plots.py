"""Matplotlib pictures of attention: one head's heat map and line view, and all heads at once.

Covers ``show_token`` (a token made visible), ``heatmap`` (rows = the token looking, columns =
the token looked at), ``line_view`` (lines from each token to the tokens it looks at),
``mosaic`` (every head's map tiled into one image) and ``head_grid`` (that mosaic drawn, with
the top heads of each kind marked by a letter).

Leaves out: interactivity (``llmlab.views.attention_page`` is the offline HTML/JS page) and any
computation of weights or scores (``llmlab.internals.attention``, ``llmlab.internals.heads``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llmlab.internals.attention import causal_mask


def show_token(t: str) -> str:
    """A token made visible: newline → ↵, tab → ⇥, empty → ∅ (spaces stay: show with ``pre``)."""
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


def line_view(
    ax: Any,
    tokens: Sequence[str],
    w: np.ndarray,
    min_weight: float = 0.05,
    hide_first: bool = False,
) -> None:
    """Tokens on the left look at tokens on the right; line opacity and width = attention weight.

    ``hide_first`` drops the lines to token 0 (the attention sink), which drown out the rest.
    """
    w = np.asarray(w)  # (T, T)
    T = len(tokens)
    for i in range(T):
        for j in range(1 if hide_first else 0, i + 1):
            if w[i, j] >= min_weight:
                ax.plot(
                    [0, 1],
                    [i, j],
                    color="tab:blue",
                    alpha=float(w[i, j]),
                    linewidth=0.5 + 3 * float(w[i, j]),
                )
    for i, t in enumerate(tokens):
        ax.text(-0.03, i, show_token(t), ha="right", va="center", fontsize=8)
        ax.text(1.03, i, show_token(t), ha="left", va="center", fontsize=8)
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(T - 0.5, -0.5)
    ax.axis("off")


def mosaic(weights: np.ndarray, gap: int = 1) -> np.ndarray:
    """All heads' (T, T) maps tiled as one image: (layers·(T+gap), heads·(T+gap)), gaps NaN."""
    L, H, T, _ = weights.shape
    s = T + gap
    out = np.full((L * s, H * s), np.nan)
    for layer in range(L):
        for h in range(H):
            out[layer * s : layer * s + T, h * s : h * s + T] = weights[layer, h]
    return out


MARKS = {
    "previous_token": ("P", "tab:orange"),
    "first_token": ("S", "tab:gray"),
    "induction": ("I", "tab:red"),
}


def head_grid(ax: Any, weights: np.ndarray, scores: Any = None, top: int = 4) -> None:
    """Every head's map as a thumbnail (row = layer, column = head) on ``ax``.

    With ``scores`` (``llmlab.internals.heads.HeadScores``) the ``top`` heads of each kind get a letter:
    P previous-token, S first-token sink, I induction.
    """
    L, H, T, _ = weights.shape
    ax.imshow(mosaic(weights), cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    step = T + 1
    ax.set_xticks([h * step + T / 2 for h in range(H)], range(H))
    ax.set_yticks([la * step + T / 2 for la in range(L)], range(L))
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    for kind, (letter, color) in MARKS.items() if scores is not None else ():
        for la, h, _ in scores.top(kind, top):
            ax.text(
                h * step + T - 2,
                la * step + 2,
                letter,
                color=color,
                fontsize=10,
                fontweight="bold",
                ha="center",
                va="center",
            )
