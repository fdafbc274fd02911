"""What attention heads do: measure them, pick the ones worth looking at, switch them off.

Covers:
- ``head_scores(weights, ids)``: how much each head behaves like a previous-token head, a
  first-token ("attention sink") head and an induction head, as ``HeadScores`` (layers, heads).
- ``head_worth_seeing`` and ``interesting_heads``: which heads to show a learner first, and why.
- ``strongest_links``: for one head, what each token looks at most ("Paris -> capital 0.41").
- ``heads_ablated`` / ``ablate_heads``: switch heads off and measure the change in next-token
  probabilities.

Leaves out: what a head *writes* (its value/output vectors), path patching and other causal
methods beyond zero-ablation, and scores other than these three patterns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmlab.internals.attention import token_ids
from llmlab.runtime.architecture import check_layer_head, config_of

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
    return HeadScores(previous_token=prev, first_token=first, induction=ind)


def repeated_random_ids(lm: Any, n: int = 30, seed: int = 0) -> list[int]:
    """n random ordinary tokens, then the same n again: the classic induction-head probe."""
    rng = np.random.default_rng(seed)
    special = set(lm.tokenizer.all_special_ids)
    low = max(special) + 1 if special else 0
    half = rng.choice(np.arange(low, lm.tokenizer.vocab_size), size=n, replace=False).tolist()
    return half + half


# --- which heads to look at -------------------------------------------------------------------


@dataclass
class Link:
    """Token ``query`` looks at earlier token ``key`` with ``weight`` (one head)."""

    query: int
    key: int
    weight: float


def strongest_links(
    w: np.ndarray, skip_first: bool = True, skip_recent: bool = False
) -> list[Link]:
    """For each token of one head's (T, T) map, the earlier token it looks at most.

    ``skip_first`` leaves out token 0, where idle heads park their attention (the sink);
    ``skip_recent`` also leaves out the token itself and the one just before it, to see which
    *other* word it picks out. Tokens with nothing left to choose from get no link.
    ``strongest_links(np.array([[1, 0], [0.3, 0.7]])) -> [Link(query=1, key=1, weight=0.7)]``
    """
    w = np.asarray(w)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"w must be one head's (T, T) attention map, got shape {w.shape}.")
    lo = 1 if skip_first else 0
    links = []
    for i in range(w.shape[0]):
        hi = i - 1 if skip_recent else i + 1  # keys lo..hi-1
        if hi > lo:
            j = lo + int(np.argmax(w[i, lo:hi]))
            links.append(Link(query=i, key=j, weight=float(w[i, j])))
    return links


@dataclass
class HeadPick:
    """A head worth showing, with the measurement that makes it so."""

    layer: int
    head: int
    kind: str  # "induction", "previous_token" or "content"
    score: float

    @property
    def why(self) -> str:
        """``'the strongest induction head on this text (0.85): ...'``"""
        return {
            "induction": "the strongest induction head on this text ({:.2f}): a repeated token "
            "looks at the token that followed its earlier copy",
            "previous_token": "the strongest previous-token head on this text ({:.2f}): each "
            "token looks at the one just before it",
            "content": "the head that looks hardest at a specific earlier word ({:.2f}); "
            "shown without the token itself, the one before it and the first token",
        }[self.kind].format(self.score)


def content_scores(weights: np.ndarray) -> np.ndarray:
    """(layers, heads): mean over tokens i >= 3 of the largest weight on a token j in 1..i-2.

    High when a head picks out a specific earlier word that is neither the sink (token 0) nor
    the previous token: the heads that link "Paris" back to "capital".
    """
    w = np.asarray(weights)  # (L, H, T, T)
    T = w.shape[-1]
    if T < 4:
        return np.zeros(w.shape[:2])
    best = [w[..., i, 1 : i - 1].max(-1) for i in range(3, T)]  # each (L, H)
    return np.mean(best, axis=0)  # (L, H)


def interesting_heads(
    weights: np.ndarray, ids: Sequence[Any], min_score: float = 0.3
) -> list[HeadPick]:
    """Up to three heads worth a look on this text, best kind first: induction (only if the text
    repeats something and a head scores >= ``min_score``), content, previous-token."""
    scores = head_scores(weights, ids)
    picks = []
    ind = scores.top("induction", 1)
    if ind and ind[0][2] >= min_score:
        la, h, s = ind[0]
        picks.append(HeadPick(layer=la, head=h, kind="induction", score=s))
    la, h, s = scores.top("previous_token", 1)[0]
    prev = HeadPick(layer=la, head=h, kind="previous_token", score=s)
    c = content_scores(weights)  # (L, H)
    for p in [*picks, prev]:
        c[p.layer, p.head] = 0.0  # a head already shown for another reason is not shown twice
    if c.max() > 0:
        la, h = np.unravel_index(int(np.argmax(c)), c.shape)
        picks.append(HeadPick(layer=int(la), head=int(h), kind="content", score=float(c[la, h])))
    if all((p.layer, p.head) != (prev.layer, prev.head) for p in picks):
        picks.append(prev)
    return picks


def head_worth_seeing(weights: np.ndarray, ids: Sequence[Any]) -> HeadPick:
    """The one head to open a viewer on: the strongest induction head if the text repeats
    something, else the head that looks hardest at a specific earlier word."""
    return interesting_heads(weights, ids)[0]


# --- ablation ---------------------------------------------------------------------------------


Heads = tuple[int, int] | Iterable[tuple[int, int]]  # one (layer, head) or several


def _as_head_list(lm: Any, heads: Heads) -> list[tuple[int, int]]:
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
def heads_ablated(lm: Any, heads: Heads) -> Iterator[None]:
    """Inside the ``with``, the given (layer, head)s write nothing: their slice of ``o_proj``'s input is zeroed."""
    d = config_of(lm).head_dim
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
    """Probabilities (vocab,) of the token that follows ``text``, as float64 numpy."""
    from llmlab.decoding.generation import next_token_logits

    logits = next_token_logits(lm, token_ids(lm, text))  # (V,) the model's raw scores
    return logits.double().softmax(-1).numpy()  # (V,)


def ablate_heads(lm: Any, text: str | Sequence[int], heads: Heads, k: int = 5) -> Ablation:
    """Zero the given head(s) and report how the next-token probabilities change.

    ``ablate_heads(lm, "one two three one two", (17, 4))`` – one head; a list for several.
    """
    heads = _as_head_list(lm, heads)
    p = next_token_distribution(lm, text)
    with heads_ablated(lm, heads):
        q = next_token_distribution(lm, text)
    ids = list(dict.fromkeys(np.argsort(-p)[:k].tolist() + np.argsort(-q)[:k].tolist()))
    changes = [
        ProbChange(
            token=lm.tokenizer.decode([i]), token_id=int(i), before=float(p[i]), after=float(q[i])
        )
        for i in ids
    ]
    changes.sort(key=lambda c: -abs(c.change))
    tv = float(0.5 * np.abs(p - q).sum())  # total variation distance
    decode = lm.tokenizer.decode
    return Ablation(
        heads=heads,
        changes=changes,
        total_variation=tv,
        top_before=decode([int(p.argmax())]),
        top_after=decode([int(q.argmax())]),
    )
