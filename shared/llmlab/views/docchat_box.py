"""The chat-with-your-docs box (ipywidgets): a question in, the answer streamed, each source expandable.

The pipeline it shows lives in ``llmlab.rag.docchat``; this view only draws what ``DocChat.ask`` returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmlab.rag.docchat import DocChat


def chat_box(bot: DocChat) -> Any:
    """An ipywidgets chat box: a question in, the answer streamed, each source expandable."""
    import html

    import ipywidgets as w

    question, button = w.Text(placeholder="Ask about your documents"), w.Button(description="Ask")
    answer, sources = w.HTML(), w.Accordion()

    def on_ask(_: Any) -> None:
        answer.value, sources.children, shown = "", (), []

        def stream(piece: str) -> None:
            shown.append(piece)
            answer.value = f"<p>{html.escape(''.join(shown))}</p>"

        a = bot.ask(question.value, on_token=stream)
        flags = "".join(
            f"<br><i>not supported by its source: {html.escape(s)}</i>" for s in a.unsupported
        )
        answer.value = f"<p>{html.escape(a.answer)}{flags}</p>"
        sources.children = [w.HTML(f"<pre>{html.escape(c.text)}</pre>") for c in a.citations]
        for i, c in enumerate(a.citations):
            sources.set_title(i, f"[{c.n}] {c.source}:{c.start_line}-{c.end_line}")

    button.on_click(on_ask)
    return w.VBox([w.HBox([question, button]), answer, sources])
