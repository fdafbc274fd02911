"""The Token Probability Explorer as an ipywidgets app: ``ExplorerApp(lm).widget`` is what to display.

A prompt box, sliders for temperature / top-k / top-p / min-p, step / 5 steps / undo buttons,
the candidates chart (``llmlab.views.explorer_plots.plot_step``), one button per candidate to
force it (labelled like the chart: the chance it is drawn now, "(cut ...)" if a filter cut it)
and the text so far coloured by probability (``llmlab.views.gltr``).

Everything a click does is also a method (``restart``, ``step``, ``force``, ``undo``), so the
app can be driven -- and tested -- from code, without a browser. Bad input (an empty prompt, a
text that fills the context window) shows one red line in the status and never raises; an
invalid prompt also clears the previous chart, buttons and text, so nothing stale is shown.

Leaves out: the logic (``llmlab.decoding.explorer``); saving explorations.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import TYPE_CHECKING

from llmlab.decoding.explorer import Explorer, Settings
from llmlab.views.explorer_plots import plot_step
from llmlab.views.gltr import gltr_html

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from llmlab.runtime.models import LM

CANDIDATES_LEGEND = (
    "<b>Click a candidate to force it</b> (branch the continuation). Each button shows the "
    "chance the token is drawn now, as on the chart; <span style='background:#f0ad4e;"
    "padding:0 4px;border-radius:3px'>orange</span> = cut by a filter: the dice can no longer "
    "pick it, but you still can."
)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


class ExplorerApp:
    """The interactive explorer. ``ExplorerApp(lm).widget`` is the thing to display."""

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
                w.HTML(CANDIDATES_LEGEND),
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

    def _error(self, exc: Exception) -> None:
        self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"

    def _clear(self) -> None:
        """Nothing stale on screen: no chart, no buttons, no text."""
        self.chart.value = b""
        self.candidates.children = ()
        self.text.value = ""

    def _guarded(self, action: Callable[[Explorer], object]) -> None:
        """Run ``action`` on the explorer, then redraw; a ValueError becomes a red status line."""
        if self.explorer is None:  # the prompt is invalid; the status line says why
            return
        try:
            action(self.explorer)
        except ValueError as exc:  # e.g. the context window is full
            self.refresh()
            self._error(exc)
            return
        self.refresh()

    def restart(self) -> None:
        """Start over from the prompt box; an invalid prompt clears everything and says why."""
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
            self.explorer = None
            self._clear()
            self._error(exc)
            return
        self.refresh()

    def step(self, n: int = 1) -> None:
        """Draw ``n`` tokens with the current settings."""

        def draw(ex: Explorer) -> None:
            for _ in range(n):
                if ex.done:
                    break
                ex.step()

        self._guarded(draw)

    def force(self, token_id: int) -> None:
        """Take ``token_id`` as the next token (what clicking a candidate does)."""
        self._guarded(lambda ex: None if ex.done else ex.step(token_id))

    def undo(self) -> None:
        """Remove the last token."""
        self._guarded(lambda ex: ex.undo())

    def refresh(self) -> None:
        """Redraw the chart, candidate buttons and text for the current state and sliders."""
        import ipywidgets as w
        import matplotlib.pyplot as plt

        ex = self.explorer
        if ex is None:  # the prompt is invalid; the status line says why
            return
        ex.settings = self.settings()
        self.text.value = gltr_html(ex.steps, prompt=self.lm.tokenizer.decode(ex.prompt_ids))
        try:
            view = ex.view()
        except ValueError as exc:  # the text so far fills the context window: no next token
            self.chart.value, self.candidates.children = b"", ()
            self._error(exc)
            return
        fig, ax = plt.subplots(figsize=(8, 3.4), layout="constrained")
        plot_step(view, ax)
        self.chart.value = _png(fig)
        plt.close(fig)
        buttons = []
        for r in view.rows:
            b = w.Button(
                description=f"{r.token!r} {r.label}",
                tooltip=f"model {r.prob:.1%} · after temperature {r.tempered:.1%} · "
                f"drawn from {r.final:.1%}",
                button_style="" if r.kept else "warning",
                layout=w.Layout(width="auto"),
            )
            b.on_click(lambda _, tid=r.token_id: self.force(tid))
            buttons.append(b)
        self.candidates.children = buttons
        state = "the model ended the text" if ex.done else f"step {len(ex.steps)}"
        self.status.value = (
            f"{state} · next-token entropy {view.entropy:.2f} bits · "
            f"{view.n_kept} of {view.n_vocab} tokens can be drawn"
        )
