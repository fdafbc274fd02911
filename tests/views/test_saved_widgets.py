"""The save hook that leaves "run this cell again" where a widget was (llmlab.views.saved_widgets)."""

from __future__ import annotations

import re
from pathlib import Path

from traitlets.utils.importstring import import_item

from llmlab.views.saved_widgets import HINT, WIDGET_VIEW, hint_for_dead_widgets

ROOT = Path(__file__).resolve().parents[2]


def notebook(*outputs: dict) -> dict:
    cells = [{"cell_type": "code", "source": "box", "outputs": list(outputs)}]
    cells.append({"cell_type": "markdown", "source": "text"})
    return {"type": "notebook", "content": {"cells": cells}}


def test_widget_outputs_become_the_hint_and_the_rest_stays():
    widget = {
        "output_type": "display_data",
        "data": {WIDGET_VIEW: {"model_id": "x"}, "text/plain": "VBox()"},
    }
    printed = {"output_type": "stream", "name": "stdout", "text": "hello\n"}
    figure = {"output_type": "display_data", "data": {"image/png": "iVBOR"}}
    model = notebook(printed, widget, figure)
    hint_for_dead_widgets(model=model, path="a.ipynb", contents_manager=None)
    outputs = model["content"]["cells"][0]["outputs"]
    assert outputs[0] == printed and outputs[2] == figure
    assert outputs[1]["data"] == {"text/plain": HINT}


def test_other_files_are_left_alone():
    model = {"type": "file", "content": "text with application/vnd.jupyter.widget-view+json"}
    hint_for_dead_widgets(model=model, path="a.txt", contents_manager=None)
    assert model["content"] == "text with application/vnd.jupyter.widget-view+json"


def test_make_lab_configures_this_hook():
    makefile = (ROOT / "Makefile").read_text()
    (name,) = re.findall(r'"pre_save_hook": "([\w.]+)"', makefile)
    assert import_item(name) is hint_for_dead_widgets
