"""A saved notebook tells the learner to run a widget's cell again, instead of showing an error.

A widget (the chat box, the explorer, the search box) lives in the running kernel. JupyterLab
saves its output as a pointer to that live object, so a notebook reopened later, with a fresh
kernel, shows "Error displaying widget: model not found" where the widget was. JupyterLab runs
``hint_for_dead_widgets`` on every notebook it saves (``make lab`` configures it as the
server's ``pre_save_hook``): each saved widget output gets a plain-text note instead, and the
live widget on screen is left as it is. The note is what a reopened notebook shows until the
cell runs again.

Leaves out: saving the widget's last state (ipywidgets' ``saveState`` renders a copy that looks
alive but answers nothing) and notebooks saved outside JupyterLab.
"""

from __future__ import annotations

from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
HINT = "▶ This widget lives in the running notebook: run this cell again (Shift+Enter) to use it."


def hint_for_dead_widgets(model: dict, **kwargs: Any) -> None:
    """Replace each widget output of a notebook about to be saved by ``HINT`` (in place).

    >>> m = {"type": "notebook", "content": {"cells": [{"cell_type": "code", "outputs": [
    ...     {"output_type": "display_data", "data": {WIDGET_VIEW: {}, "text/plain": "Box()"}}]}]}}
    >>> hint_for_dead_widgets(m); m["content"]["cells"][0]["outputs"][0]["data"]["text/plain"][:21]
    '▶ This widget lives i'
    """
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    for cell in model["content"].get("cells", []):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                out["data"] = {"text/plain": HINT}
