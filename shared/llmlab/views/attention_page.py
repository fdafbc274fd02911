"""A self-contained attention page: heat map + line view, layer/head sliders, no network.

``render_html(tokens, weights, scores=...)`` returns one HTML document with everything inline:
the weights (2 bytes each, base64), the CSS and the JavaScript of ``attention_page.js`` beside
this file. It opens on the head worth seeing first (``llmlab.internals.heads.head_worth_seeing``) and
says why on the page. ``iframe(page)`` shows it inside a notebook, isolated from the notebook's
styles; the frame grows to fit the page.

Leaves out: computing weights or scores (``llmlab.internals.attention``, ``llmlab.internals.heads``) and
matplotlib pictures (``llmlab.views.attention_plots``).
"""

from __future__ import annotations

import base64
import html
import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmlab.runtime.architecture import check_layer_head
from llmlab.views.attention_plots import show_token

_JS = (Path(__file__).with_name("attention_page.js")).read_text(encoding="utf-8")
MAX_BYTES = 50e6  # weights in one page, before base64


def _cell_color(w: float) -> str:
    return f"rgba(33,102,172,{w:.3f})"


def _geometry(T: int) -> dict[str, int]:
    """Line-view layout shared by Python (first drawing) and the JS (redraws)."""
    row = 16
    return {"row": row, "top": 14, "x0": 130, "x1": 250, "width": 380, "height": T * row + 10}


def estimated_height(T: int) -> int:
    """Pixels the page needs with the heat map and the line view stacked (the narrow case)."""
    cell = 16
    return 150 + (70 + T * cell) + (T * 16 + 10) + 40


def render_html(
    tokens: Sequence[str],
    weights: np.ndarray,
    layer: int | None = None,
    head: int | None = None,
    *,
    scores: Any = None,
    start: tuple[int, int] | None = None,
    why: str | None = None,
    title: str = "Attention",
    hide_sink: bool = True,
    full_page: bool = True,
) -> str:
    """The page for ``weights`` (layers, heads, T, T); ``layer``/``head`` keep only that one.

    ``scores`` (``llmlab.internals.heads.HeadScores``) labels every head. ``start`` = (layer, head) to open
    on and ``why`` the sentence saying why (``llmlab.internals.heads.head_worth_seeing`` gives both);
    by default the first kept head. ``hide_sink`` starts with the lines to the first token hidden
    (a checkbox shows them). ``full_page=False`` gives a fragment for ``IPython.display``.
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
    if n_bytes > MAX_BYTES:
        raise ValueError(
            f"{len(layers)} layers × {len(heads)} heads × {T}² weights would make a "
            f"{n_bytes * 4 / 3 / 1e6:,.0f} MB page; pass layer=... (and head=...) or use a "
            "shorter text."
        )
    start = start or (layers[0], heads[0])
    check_layer_head(w, *start)
    if start[0] not in layers or start[1] not in heads:
        raise ValueError(f"start={start} is not among the layers {layers} and heads {heads} kept.")
    li, hi = layers.index(start[0]), heads.index(start[1])
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
        "start": [li, hi],
        "geom": _geometry(T),
        "fitFrame": full_page,
    }
    uid = "llmlab-attn-" + uuid.uuid4().hex[:8]
    payload = json.dumps(data).replace("</", "<\\/")
    shown = sub[li, hi]  # (T, T) the head the page opens on
    esc = [html.escape(t) for t in data["tokens"]]
    table = _heat_table(esc, shown)
    svg = _lines_svg(esc, shown, hide_sink)
    start_label = html.escape(labels[li][hi]) if labels else f"L{start[0]} H{start[1]}"
    opened = f"Opened on <b>layer {start[0]}, head {start[1]}</b>"
    opened += f": {html.escape(why)}." if why else "."

    def slider(name: str, values: list[int], at: int) -> str:
        return (
            f'<label>{name} <input type="range" class="{name.lower()}" min="0" '
            f'max="{len(values) - 1}" value="{at}" step="1"> <b class="{name.lower()}-v">'
            f"{values[at]}</b></label>"
        )

    body = f"""<div class="llmlab-attn" id="{uid}">
<style>
#{uid} {{font-family: system-ui, sans-serif; font-size: 13px; color: #222;}}
#{uid} .controls {{display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center;
  margin: 6px 0;}}
#{uid} .why {{margin: 4px 0; color: #333;}}
#{uid} .lab {{font-family: monospace; color: #444;}}
#{uid} .views {{display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap;}}
#{uid} .heatbox, #{uid} .linebox {{max-width: 100%; overflow-x: auto;}}
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
<div class="title"><b>{html.escape(title)}</b> — {T} tokens. Each token on the left looks at
earlier tokens on the right (darker = more attention); hover a token to see only its lines.</div>
<div class="why">{opened} Move the sliders to see the other heads.</div>
<div class="controls">{slider("Layer", layers, li)}{slider("Head", heads, hi)}
<span class="lab">{start_label}</span>
<label><input type="checkbox" class="nosink"{" checked" if hide_sink else ""}> hide lines to the
first token (the sink, where idle heads park their attention)</label>
</div>
<div class="views"><div class="heatbox">{table}</div><div class="linebox">{svg}</div></div>
<script type="application/json" class="attn-data">{payload}</script>
<script>{_JS.replace("__UID__", uid)}</script>
</div>"""
    if not full_page:
        return body
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="llmlab-height" content="{estimated_height(T)}">'
        f"<title>{html.escape(title)}</title></head><body>\n{body}\n</body></html>\n"
    )


def _heat_table(esc: Sequence[str], w: np.ndarray) -> str:
    """The (T, T) map as an HTML table, drawn in Python so the page shows it even without JS."""
    T = len(esc)
    head_row = "".join(f'<th class="col"><span>{t}</span></th>' for t in esc)
    rows = []
    for i in range(T):
        cells = [
            '<td class="fut"></td>'
            if j > i
            else f'<td style="background:{_cell_color(w[i, j])}" '
            f'title="{esc[i]} → {esc[j]}: {w[i, j]:.3f}"></td>'
            for j in range(T)
        ]
        rows.append(f'<tr><th class="row" data-i="{i}">{esc[i]}</th>{"".join(cells)}</tr>')
    return f'<table class="heat"><tr><th></th>{head_row}</tr>{"".join(rows)}</table>'


def _lines_svg(esc: Sequence[str], w: np.ndarray, hide_sink: bool) -> str:
    """Two columns of tokens; a line from query i (left) to key j (right), opacity = weight."""
    g = _geometry(len(esc))
    parts = [f'<svg class="lines" width="{g["width"]}" height="{g["height"]}">']
    for i in range(len(esc)):
        for j in range(1 if hide_sink else 0, i + 1):
            if w[i, j] >= 0.02:
                parts.append(
                    f'<line x1="{g["x0"]}" y1="{g["top"] + i * g["row"] - 4}" x2="{g["x1"]}" '
                    f'y2="{g["top"] + j * g["row"] - 4}" stroke-opacity="{w[i, j]:.3f}" '
                    f'stroke-width="{1 + 3 * w[i, j]:.2f}"/>'
                )
    for i, t in enumerate(esc):
        y = g["top"] + i * g["row"]
        parts.append(
            f'<text class="q" data-i="{i}" x="{g["x0"] - 6}" y="{y}" text-anchor="end">{t}</text>'
        )
        parts.append(f'<text class="k" x="{g["x1"] + 6}" y="{y}">{t}</text>')
    parts.append("</svg>")
    return "".join(parts)


def iframe(page: str, height: int | None = None) -> str:
    """Wrap a full page in ``<iframe srcdoc=...>`` so its CSS/JS stay apart from a notebook's.

    ``height`` defaults to what the page says it needs; the page's script then resizes the
    frame to fit exactly, once it runs.
    """
    if height is None:
        m = re.search(r'<meta name="llmlab-height" content="(\d+)">', page)
        height = int(m.group(1)) if m else 600
    return (
        f'<div><iframe srcdoc="{html.escape(page, quote=True)}" '
        f'style="width: 100%; height: {height}px; border: 1px solid #ddd;"></iframe></div>'
    )
