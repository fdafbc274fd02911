"""A finished generation as text coloured by each token's probability (after GLTR).

GLTR (Gehrmann, Strobelt and Rush, 2019) colours each token by how likely the model found it:
green = the model's easy pick, red = a surprise. ``gltr_html(steps)`` returns plain HTML (inline
styles only: no scripts, no links, renders offline) with probability, rank and entropy on hover.
``band_colour(prob)`` is the colour scale, shared with the explorer's charts.

Leaves out: computing the probabilities (``llmlab.decoding.explorer``, ``llmlab.decoding.generation``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

# (lower bound of probability, colour, label): the more surprising, the warmer.
BANDS = [
    (0.5, "#b7e4b0", "p ≥ 50%"),
    (0.1, "#fff2a8", "10–50%"),
    (0.01, "#ffc58f", "1–10%"),
    (0.0, "#f4a3a3", "< 1%"),
]


def band_colour(prob: float) -> str:
    """The background colour for a token of probability ``prob``: ``band_colour(0.7) -> '#b7e4b0'``."""
    return next(colour for low, colour, _ in BANDS if prob >= low)


def _rank_text(step: Any) -> str:
    rank = getattr(step, "rank", None)
    if rank is not None:
        return f"rank {rank}"
    ids = [c.token_id for c in getattr(step, "candidates", [])]  # a generation.Step
    if step.token_id in ids:
        return f"rank {ids.index(step.token_id) + 1}"
    return f"rank > {len(ids)}" if ids else "rank not recorded"


def gltr_html(
    steps: Sequence[Any], prompt: str = "", legend: bool = True, mark_forced: bool = True
) -> str:
    """Generated text as HTML, each token's background coloured by its probability; hover shows
    probability, rank and entropy; a forced token is underlined. Accepts
    ``llmlab.decoding.explorer.ExploreStep``s or ``llmlab.decoding.generation.Step``s."""
    spans = []
    for n, s in enumerate(steps):
        forced = mark_forced and getattr(s, "forced", False)
        title = (
            f"step {n}: {s.token!r} · p = {s.prob:.1%} · {_rank_text(s)} · "
            f"entropy {s.entropy:.2f} bits" + (" · forced" if forced else "")
        )
        text = html.escape(s.token).replace("\n", "↵<br>")
        style = f"background:{band_colour(s.prob)};border-radius:3px;padding:0 1px"
        if forced:
            style += ";text-decoration:underline;text-decoration-thickness:2px"
        spans.append(f'<span title="{html.escape(title)}" style="{style}">{text}</span>')
    head = f'<span style="color:#777">{html.escape(prompt)}</span>' if prompt else ""
    body = (
        '<div style="font-family:monospace;white-space:pre-wrap;line-height:1.7">'
        + head
        + "".join(spans)
        + "</div>"
    )
    if legend:
        keys = " ".join(
            f'<span style="background:{c};padding:0 4px;border-radius:3px">{label}</span>'
            for _, c, label in BANDS
        )
        body += (
            f'<div style="font-size:small;margin-top:4px">probability: {keys} · '
            "hover a token for details</div>"
        )
    return body
