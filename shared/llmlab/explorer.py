"""The Token Probability Explorer: watch a language model pick its next token, one step at a time.

Covers:
- ``Explorer``: the state of one exploration (the tokens so far, the sampling settings) with
  ``view()`` (the next-token distribution before and after temperature / top-k / top-p / min-p),
  ``step()`` (sample, or force a token you choose, which branches the continuation) and ``undo()``.
- ``explore(lm, prompt, ...)``: the same thing without widgets -- runs N steps and returns every
  step's data; ``plot_step`` / ``plot_exploration`` draw it with matplotlib.
- ``gltr_html(steps)``: a finished generation as text coloured by each token's probability
  (after GLTR, Gehrmann et al. 2019), with probability, rank and entropy on hover. Plain HTML:
  no scripts, no external styles.
- ``ExplorerApp``: the ipywidgets app (prompt box, sliders, step / undo buttons, a bar chart of the
  candidates, one button per candidate to force it, the coloured text so far).

Each step reads only the new token (a KV cache, cut back on undo) and every distribution is
remembered, so undo and slider moves are instant. The model's own probabilities (temperature 1,
nothing cut) are what the colours and entropies show; the sampling settings only change which
token is drawn. Leaves out: repetition penalties, beam search, batching.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmlab.context import _make_cache, cache_tensors
from llmlab.generation import (
    apply_temperature,
    cache_from_output,
    cache_kwarg,
    check_fits,
    encode_prompt,
    entropy,
    filter_min_p,
    filter_top_k,
    filter_top_p,
    renormalize,
    stop_token_ids,
)

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from llmlab.models import LM


# --- records ----------------------------------------------------------------------------------


@dataclass
class Settings:
    """How the next token is drawn. ``temperature=0`` is greedy; ``None`` switches a filter off."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None

    def check(self) -> None:
        """Raise ``ValueError`` (with the valid range) for a bad setting."""
        apply_temperature([0.0], self.temperature)  # generation's own range checks
        if self.top_k is not None:
            filter_top_k([1.0], self.top_k)
        if self.top_p is not None:
            filter_top_p([1.0], self.top_p)
        if self.min_p is not None:
            filter_min_p([1.0], self.min_p)


@dataclass
class Row:
    """One candidate token: the model's probability, after temperature, and after the filters."""

    token: str
    token_id: int
    prob: float  # the model's own softmax (temperature 1)
    tempered: float  # after temperature, before any filter
    final: float  # what is really drawn from: filters applied, renormalized (0 if cut)
    kept: bool


@dataclass
class View:
    """The next-token distribution at one point: top rows plus summary numbers."""

    rows: list[Row]  # the top candidates after temperature, most likely first
    entropy: float  # bits, the model's own distribution
    entropy_final: float  # bits, the distribution actually drawn from
    n_kept: int  # how many tokens of the whole vocabulary survive the filters
    settings: Settings


@dataclass
class ExploreStep:
    """One generated token and what the model thought of it."""

    token_id: int
    token: str
    prob: float  # the model's own probability for this token
    rank: int  # 1 = the model's favourite
    entropy: float  # bits: how unsure the model was at this step
    final_prob: float  # its probability in the distribution drawn from (0 if forced and cut)
    forced: bool  # True if you chose it instead of the dice
    view: View


@dataclass
class Exploration:
    """What ``explore`` returns: the prompt, every step, the text, and a figure."""

    prompt_ids: list[int]
    steps: list[ExploreStep]
    text: str
    figure: Figure | None = field(default=None, repr=False)


# --- the explorer (no widgets) ----------------------------------------------------------------


class Explorer:
    """Step through generation one token at a time; force any token to branch.

    >>> ex = Explorer(lm, "The capital of France is", Settings(temperature=0))
    >>> ex.view().rows[0].token, ex.step().token   # (' Paris', ' Paris')
    """

    def __init__(
        self,
        lm: LM,
        prompt: str | Sequence[int],
        settings: Settings | None = None,
        seed: int = 0,
        chat: bool = False,
        n_candidates: int = 10,
    ) -> None:
        import torch

        self.lm = lm
        self.settings = settings or Settings()
        self.settings.check()
        if not isinstance(n_candidates, int) or n_candidates < 1:
            raise ValueError(f"n_candidates must be an integer >= 1, got {n_candidates!r}.")
        self.n_candidates = n_candidates
        self.prompt_ids = encode_prompt(lm, prompt, chat=chat)
        self.steps: list[ExploreStep] = []
        self.rng = torch.Generator().manual_seed(seed)
        self._logits: dict[tuple[int, ...], torch.Tensor] = {}  # prefix -> next-token logits
        self._cache: tuple[list[int], list] | None = None  # (ids, per-layer keys/values)
        self._stop = stop_token_ids(lm)

    @property
    def ids(self) -> list[int]:
        """Prompt + generated token ids."""
        return self.prompt_ids + [s.token_id for s in self.steps]

    @property
    def done(self) -> bool:
        """True once the model has written its end-of-sequence token."""
        return bool(self.steps) and self.steps[-1].token_id in self._stop

    def text(self) -> str:
        """The generated text so far (without the prompt)."""
        return self.lm.tokenizer.decode([s.token_id for s in self.steps], skip_special_tokens=True)

    def logits(self) -> torch.Tensor:
        """The model's scores for the next token, shape ``(vocab_size,)`` (cached per prefix)."""
        key = tuple(self.ids)
        if key not in self._logits:
            self._logits[key] = self._forward(list(key))
        return self._logits[key]

    def _forward(self, ids: list[int]) -> torch.Tensor:
        """Next-token logits for ``ids``, reading only the tokens the KV cache does not hold yet."""
        import torch

        check_fits(self.lm, len(ids), 1)
        n, kvs = 0, []
        if self._cache is not None:  # reuse the longest common prefix (undo = cut the cache)
            old_ids, old_kvs = self._cache
            while n < min(len(old_ids), len(ids) - 1) and old_ids[n] == ids[n]:
                n += 1
            kvs = [(k[..., :n, :], v[..., :n, :]) for k, v in old_kvs]  # (B, kv_heads, n, hd)
        cache = _make_cache(self.lm.model.config, kvs) if n else None
        with torch.inference_mode():
            out = self.lm.model(
                input_ids=torch.tensor([ids[n:]]),  # (1, new tokens)
                use_cache=True,
                logits_to_keep=1,
                **{cache_kwarg(self.lm.model): cache},
            )
        self._cache = (ids, cache_tensors(cache_from_output(out)))
        return out.logits[0, -1].float()  # (V,)

    def distributions(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(model probs, after temperature, after filters) -- each ``(vocab_size,)``."""
        return distributions(self.logits(), self.settings)

    def view(self) -> View:
        """The next-token distribution now, as rows for a table or a bar chart."""
        probs, tempered, final = self.distributions()
        return _view(self.lm, probs, tempered, final, self.settings, self.n_candidates)

    def step(self, token: int | str | None = None) -> ExploreStep:
        """Add one token: drawn with the current settings, or ``token`` (id or text) if given."""
        import torch

        if self.done:
            raise ValueError("The model already ended the text; undo() or start a new Explorer.")
        probs, tempered, final = self.distributions()
        if token is None:
            token_id = int(torch.multinomial(final, 1, generator=self.rng))
        else:
            token_id = token_to_id(self.lm, token)
        order = torch.argsort(probs, descending=True, stable=True)
        step = ExploreStep(
            token_id=token_id,
            token=self.lm.tokenizer.decode([token_id]),
            prob=float(probs[token_id]),
            rank=int((order == token_id).nonzero()[0, 0]) + 1,
            entropy=entropy(probs),
            final_prob=float(final[token_id]),
            forced=token is not None,
            view=_view(self.lm, probs, tempered, final, self.settings, self.n_candidates),
        )
        self.steps.append(step)
        return step

    def undo(self) -> ExploreStep | None:
        """Remove the last token (to try another branch); returns it, or None if there was none."""
        return self.steps.pop() if self.steps else None


def distributions(
    logits: torch.Tensor, settings: Settings
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Model probs, temperature-adjusted probs, and the filtered + renormalized draw distribution.

    The filters follow ``llmlab.generation.sampling_distribution``: temperature, then top-k, top-p, min-p.
    """
    import torch

    probs = torch.softmax(logits.float(), -1)  # (V,)
    tempered = apply_temperature(logits, settings.temperature)  # (V,)
    keep = tempered > 0
    if settings.top_k is not None:
        keep &= filter_top_k(tempered, settings.top_k)
    if settings.top_p is not None:
        keep &= filter_top_p(tempered, settings.top_p)
    if settings.min_p is not None:
        keep &= filter_min_p(tempered, settings.min_p)
    return probs, tempered, renormalize(tempered, keep)


def _view(
    lm: LM,
    probs: torch.Tensor,
    tempered: torch.Tensor,
    final: torch.Tensor,
    settings: Settings,
    n: int,
) -> View:
    import torch

    top = torch.topk(probs, min(n, probs.shape[-1])).indices.tolist()  # same order as tempered
    rows = [
        Row(
            token=lm.tokenizer.decode([i]),
            token_id=i,
            prob=float(probs[i]),
            tempered=float(tempered[i]),
            final=float(final[i]),
            kept=bool(final[i] > 0),
        )
        for i in top
    ]
    return View(rows, entropy(probs), entropy(final), int((final > 0).sum()), settings)


def token_to_id(lm: LM, token: int | str) -> int:
    """A token id from an id or from text that is exactly one token (e.g. ``" Paris"``)."""
    vocab = len(lm.tokenizer)
    if isinstance(token, int) and not isinstance(token, bool):
        if not 0 <= token < vocab:
            raise ValueError(f"Token id must be in [0, {vocab}), got {token}.")
        return token
    if isinstance(token, str):
        ids = lm.tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            pieces = [lm.tokenizer.decode([i]) for i in ids]
            raise ValueError(
                f"{token!r} is {len(ids)} tokens {pieces}, not one. Force one token at a time "
                "(mind the leading space: ' Paris' and 'Paris' are different tokens)."
            )
        return int(ids[0])
    raise ValueError(f"A token is an id (int) or a one-token string, got {token!r}.")


def explore(
    lm: LM,
    prompt: str | Sequence[int],
    steps: int = 8,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    forced: Mapping[int, int | str] | None = None,
    seed: int = 0,
    chat: bool = False,
    n_candidates: int = 10,
    plot: bool = True,
) -> Exploration:
    """Generate ``steps`` tokens, recording each step's candidates; ``forced={2: " Lyon"}`` makes
    step 2 (counting from 0) take that token instead of drawing one. The widget-free explorer."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}.")
    forced = dict(forced or {})
    if any(not 0 <= i < steps for i in forced):
        raise ValueError(f"forced step numbers must be in [0, {steps}), got {sorted(forced)}.")
    ex = Explorer(lm, prompt, Settings(temperature, top_k, top_p, min_p), seed, chat, n_candidates)
    for i in range(steps):
        ex.step(forced.get(i))
        if ex.done:
            break
    result = Exploration(ex.prompt_ids, ex.steps, ex.text())
    if plot:
        result.figure = plot_exploration(result)
    return result


# --- pictures ---------------------------------------------------------------------------------

KEPT, CUT, MODEL = "#1f77b4", "#c7c7c7", "#ff7f0e"


def plot_step(view: View, ax: Axes | None = None, chosen: int | None = None) -> Axes:
    """Bar chart of the top candidates: after temperature (light) and what is drawn from (dark),
    cut tokens grey; ``chosen`` (a token id) is outlined."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    rows = view.rows[::-1]  # most likely at the top
    y = range(len(rows))
    labels = [repr(r.token) for r in rows]
    ax.barh(y, [r.tempered for r in rows], color=["#aec7e8" if r.kept else CUT for r in rows])
    ax.barh(y, [r.final for r in rows], height=0.45, color=KEPT)
    ax.scatter([r.prob for r in rows], y, marker="|", s=200, color=MODEL)
    for yi, r in zip(y, rows, strict=True):
        mark = "  (cut)" if not r.kept else ""
        ax.text(max(r.tempered, r.final, r.prob) + 0.01, yi, f"{r.final:.0%}{mark}", va="center")
        if chosen is not None and r.token_id == chosen:
            ax.axhspan(yi - 0.45, yi + 0.45, fill=False, edgecolor="black", linewidth=1.5)
    from matplotlib.patches import Patch

    ax.set_yticks(list(y), labels, fontfamily="monospace")
    top = max(max(r.tempered, r.final, r.prob) for r in rows) if rows else 1.0
    ax.set_xlim(0, min(1.15, max(0.25, 1.15 * top + 0.1)))  # room for the labels
    ax.set_xlabel("probability")
    s = view.settings

    def off(v: Any) -> str:
        return "off" if v is None else f"{v:g}"

    ax.set_title(
        f"T={s.temperature:g}  top-k={off(s.top_k)}  top-p={off(s.top_p)}  min-p={off(s.min_p)}"
        f"  ·  tokens kept: {view.n_kept}  ·  entropy {abs(view.entropy):.2f} → "
        f"{abs(view.entropy_final):.2f} bits",
        fontsize=9,
    )
    handles = [
        Patch(color="#aec7e8", label="after temperature"),
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
    top.bar(xs, [s.prob for s in ex.steps], color=[_colour(s.prob) for s in ex.steps])
    top.set_xticks(list(xs), [repr(s.token) for s in ex.steps], rotation=45, ha="right")
    top.set_ylabel("p(chosen token)")
    top.set_ylim(0, 1)
    ent = top.twinx()
    ent.plot(xs, [s.entropy for s in ex.steps], "k.-", label="entropy (bits)")
    ent.set_ylabel("entropy (bits)")
    ent.legend(loc="upper right", fontsize=8)
    forced = [i for i, s in enumerate(ex.steps) if s.forced]
    for i in forced:
        top.annotate("forced", (i, 0.02), ha="center", fontsize=7, rotation=90)
    top.set_title("each step: the chosen token's probability and the model's uncertainty")
    i = 0 if step is None else step
    if ex.steps:
        plot_step(ex.steps[i].view, bottom, chosen=ex.steps[i].token_id)
        bottom.set_title(f"step {i} — " + bottom.get_title(), fontsize=9)
    return fig


# --- GLTR-style text --------------------------------------------------------------------------

# (lower bound of probability, colour, label): the more surprising, the warmer.
BANDS = [
    (0.5, "#b7e4b0", "p ≥ 50%"),
    (0.1, "#fff2a8", "10–50%"),
    (0.01, "#ffc58f", "1–10%"),
    (0.0, "#f4a3a3", "< 1%"),
]


def _colour(prob: float) -> str:
    return next(colour for low, colour, _ in BANDS if prob >= low)


def gltr_html(
    steps: Sequence[Any], prompt: str = "", legend: bool = True, mark_forced: bool = True
) -> str:
    """Generated text as HTML, each token's background coloured by its probability; hover shows
    probability, rank and entropy; a forced token is underlined. Accepts ``ExploreStep``s or
    ``llmlab.generation.Step``s. Self-contained: inline styles only, no scripts, no links."""
    spans = []
    for n, s in enumerate(steps):
        rank = getattr(s, "rank", None)
        if rank is None:  # a generation.Step: find the token among its candidates
            ids = [c.token_id for c in getattr(s, "candidates", [])]
            rank = ids.index(s.token_id) + 1 if s.token_id in ids else None
        rank_text = f"rank {rank}" if rank is not None else f"rank > {len(s.candidates)}"
        forced = mark_forced and getattr(s, "forced", False)
        title = (
            f"step {n}: {s.token!r} · p = {s.prob:.1%} · {rank_text} · "
            f"entropy {s.entropy:.2f} bits" + (" · forced" if forced else "")
        )
        text = html.escape(s.token).replace("\n", "↵<br>")
        style = f"background:{_colour(s.prob)};border-radius:3px;padding:0 1px"
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
        body += f'<div style="font-size:small;margin-top:4px">probability: {keys} · hover a token for details</div>'
    return body


# --- the widget app ---------------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


class ExplorerApp:
    """The interactive explorer. ``ExplorerApp(lm).widget`` is the thing to display.

    Everything a click does is also a method (``step``, ``force``, ``undo``, ``restart``), so the
    app can be driven -- and tested -- from code.
    """

    def __init__(
        self,
        lm: LM,
        prompt: str = "The capital of France is",
        n_candidates: int = 10,
        seed: int = 0,
    ) -> None:
        import ipywidgets as w

        self.lm = lm
        self.n_candidates = n_candidates
        self.seed = seed
        self.prompt_box = w.Textarea(
            value=prompt, description="Prompt", layout=w.Layout(width="98%", height="60px")
        )
        self.chat_box = w.Checkbox(value=False, description="chat template")
        slider = {"continuous_update": False, "style": {"description_width": "90px"}}
        self.temperature = w.FloatSlider(
            value=1.0, min=0.0, max=2.0, step=0.05, description="temperature", **slider
        )
        self.top_k = w.IntSlider(value=0, min=0, max=50, description="top-k (0=off)", **slider)
        self.top_p = w.FloatSlider(
            value=1.0, min=0.05, max=1.0, step=0.05, description="top-p (1=off)", **slider
        )
        self.min_p = w.FloatSlider(
            value=0.0, min=0.0, max=0.5, step=0.01, description="min-p (0=off)", **slider
        )
        self.restart_button = w.Button(description="Start / restart", button_style="info")
        self.step_button = w.Button(description="Step (draw)", button_style="primary")
        self.step5_button = w.Button(description="5 steps")
        self.undo_button = w.Button(description="Undo")
        self.status = w.HTML()
        self.chart = w.Image(format="png", layout=w.Layout(max_width="720px"))
        self.candidates = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.text = w.HTML()

        self.restart_button.on_click(lambda _: self.restart())
        self.step_button.on_click(lambda _: self.step())
        self.step5_button.on_click(lambda _: self.step(5))
        self.undo_button.on_click(lambda _: self.undo())
        for s in (self.temperature, self.top_k, self.top_p, self.min_p):
            s.observe(lambda _: self.refresh(), names="value")
        self.chat_box.observe(lambda _: self.restart(), names="value")
        self.explorer: Explorer | None = None

        self.widget = w.VBox(
            [
                self.prompt_box,
                w.HBox([self.chat_box, self.restart_button]),
                w.HBox([w.VBox([self.temperature, self.top_k]), w.VBox([self.top_p, self.min_p])]),
                w.HBox([self.step_button, self.step5_button, self.undo_button]),
                self.status,
                self.chart,
                w.HTML("<b>Click a candidate to force it</b> (branch the continuation):"),
                self.candidates,
                self.text,
            ]
        )
        self.restart()

    def settings(self) -> Settings:
        """The sliders as ``Settings`` (0 / 1.0 / 0 switch top-k / top-p / min-p off)."""
        return Settings(
            temperature=self.temperature.value,
            top_k=self.top_k.value or None,
            top_p=self.top_p.value if self.top_p.value < 1.0 else None,
            min_p=self.min_p.value or None,
        )

    def restart(self) -> None:
        """Start over from the prompt box."""
        try:
            self.explorer = Explorer(
                self.lm,
                self.prompt_box.value,
                self.settings(),
                seed=self.seed,
                chat=self.chat_box.value,
                n_candidates=self.n_candidates,
            )
        except ValueError as exc:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
            return
        self.refresh()

    def step(self, n: int = 1) -> None:
        """Draw ``n`` tokens with the current settings."""
        if self.explorer is None:
            return
        for _ in range(n):
            if self.explorer.done:
                break
            self.explorer.step()
        self.refresh()

    def force(self, token_id: int) -> None:
        """Take ``token_id`` as the next token (what clicking a candidate does)."""
        if self.explorer is not None and not self.explorer.done:
            self.explorer.step(token_id)
        self.refresh()

    def undo(self) -> None:
        """Remove the last token."""
        if self.explorer is not None:
            self.explorer.undo()
        self.refresh()

    def refresh(self) -> None:
        """Redraw the chart, candidate buttons and text for the current state and sliders."""
        import ipywidgets as w
        import matplotlib.pyplot as plt

        ex = self.explorer
        if ex is None:  # the first prompt was invalid; the status line says why
            return
        ex.settings = self.settings()
        view = ex.view()
        fig, ax = plt.subplots(figsize=(8, 3.4), layout="constrained")
        plot_step(view, ax)
        self.chart.value = _png(fig)
        plt.close(fig)
        buttons = []
        for r in view.rows:
            b = w.Button(
                description=f"{r.token!r} {r.prob:.0%}",
                tooltip=f"model {r.prob:.1%} · drawn from {r.final:.1%}",
                button_style="" if r.kept else "warning",
                layout=w.Layout(width="auto"),
            )
            b.on_click(lambda _, tid=r.token_id: self.force(tid))
            buttons.append(b)
        self.candidates.children = buttons
        self.text.value = gltr_html(ex.steps, prompt=self.lm.tokenizer.decode(ex.prompt_ids))
        state = "the model ended the text" if ex.done else f"step {len(ex.steps)}"
        self.status.value = (
            f"{state} · next-token entropy {view.entropy:.2f} bits · "
            f"{view.n_kept} of {len(ex.logits())} tokens can be drawn"
        )
