"""The explorer's matplotlib pictures: one step's candidates, and a whole exploration.

- ``plot_step(view)``: bar chart of the top candidates -- after temperature (light), what is
  really drawn from (dark), cut tokens grey, the model's own probability as an orange tick; each
  row is labelled with ``Row.label`` (the same label the widget's candidate buttons show).
- ``plot_exploration(exploration)``: each step's chosen-token probability and entropy, above the
  candidates of one step.

Leaves out: computing anything (``llmlab.decoding.explorer``) and interaction (``llmlab.views.explorer_app``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmlab.views.gltr import band_colour

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from llmlab.decoding.explorer import Exploration, View

KEPT, TEMPERED, CUT, MODEL = "#1f77b4", "#aec7e8", "#c7c7c7", "#ff7f0e"


def _off(value: Any) -> str:
    return "off" if value is None or value == 0 else f"{value:g}"


def plot_step(view: View, ax: Axes | None = None, chosen: int | None = None) -> Axes:
    """Bar chart of the top candidates; ``chosen`` (a token id) is outlined."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    rows = view.rows[::-1]  # most likely at the top
    y = range(len(rows))
    ax.barh(y, [r.tempered for r in rows], color=[TEMPERED if r.kept else CUT for r in rows])
    ax.barh(y, [r.final for r in rows], height=0.45, color=KEPT)
    ax.scatter([r.prob for r in rows], y, marker="|", s=200, color=MODEL)
    for yi, r in zip(y, rows, strict=True):
        ax.text(max(r.tempered, r.final, r.prob) + 0.01, yi, r.label, va="center", fontsize=8)
        if chosen is not None and r.token_id == chosen:
            ax.axhspan(yi - 0.45, yi + 0.45, fill=False, edgecolor="black", linewidth=1.5)
    ax.set_yticks(list(y), [repr(r.token) for r in rows], fontfamily="monospace")
    top = max((max(r.tempered, r.final, r.prob) for r in rows), default=1.0)
    ax.set_xlim(0, min(1.3, max(0.3, 1.15 * top + 0.2)))  # room for the labels
    ax.set_xlabel("probability (the label: the chance it is drawn now)")
    s = view.settings
    ax.set_title(
        f"T={s.temperature:g}  top-k={_off(s.top_k)}  top-p={_off(s.top_p)}  min-p={_off(s.min_p)}"
        f"  ·  tokens kept: {view.n_kept}  ·  entropy {abs(view.entropy):.2f} → "
        f"{abs(view.entropy_final):.2f} bits",
        fontsize=9,
    )
    handles = [
        Patch(color=TEMPERED, label="after temperature"),
        Patch(color=KEPT, label="drawn from (filters applied)"),
        Patch(color=CUT, label="cut by a filter"),
        ax.scatter([], [], marker="|", s=200, color=MODEL, label="model's own (T=1)"),
    ]
    ax.legend(handles=handles, loc="lower right", fontsize=7)
    return ax


def plot_exploration(ex: Exploration, step: int | None = None) -> Figure:
    """Top: each step's chosen-token probability (bars) and entropy (line). Bottom: the
    candidates at ``step`` (default: the first step)."""
    import matplotlib.pyplot as plt

    # Made by pyplot (so a notebook knows how to show it) but closed at once, so it is shown only
    # when you ask for it (`ex.figure` at the end of a cell), not after every call.
    fig = plt.figure(figsize=(9, 6.5), layout="constrained")
    plt.close(fig)
    top, bottom = fig.subplots(2, 1, height_ratios=[1, 1.3])
    xs = range(len(ex.steps))
    top.bar(xs, [s.prob for s in ex.steps], color=[band_colour(s.prob) for s in ex.steps])
    top.set_xticks(list(xs), [repr(s.token) for s in ex.steps], rotation=45, ha="right")
    top.set_ylabel("p(chosen token)")
    top.set_ylim(0, 1)
    ent = top.twinx()
    ent.plot(xs, [s.entropy for s in ex.steps], "k.-", label="entropy (bits)")
    ent.set_ylabel("entropy (bits)")
    ent.legend(loc="upper right", fontsize=8)
    for i, s in enumerate(ex.steps):
        if s.forced:
            top.annotate("forced", (i, 0.02), ha="center", fontsize=7, rotation=90)
    top.set_title("each step: the chosen token's probability and the model's uncertainty")
    i = 0 if step is None else step
    if ex.steps:
        if not 0 <= i < len(ex.steps):
            raise ValueError(f"step must be in [0, {len(ex.steps)}), got {step!r}.")
        plot_step(ex.steps[i].view, bottom, chosen=ex.steps[i].token_id)
        bottom.set_title(f"step {i} — " + bottom.get_title(), fontsize=9)
    return fig
