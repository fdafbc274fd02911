"""Tests for what the learner sees of attention: the offline page, the matplotlib views and
``llmlab attend`` (answers, the page's path, one-line errors with exit code 2)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from llmlab.cli import attend
from llmlab.internals.attention import attention_weights, token_ids
from llmlab.internals.heads import head_scores, head_worth_seeing
from llmlab.views import attention_page, attention_plots

matplotlib.use("Agg")

TEXT = "Ada met Bob. Then Ada met"


@pytest.fixture(scope="module")
def text_weights(lm):
    ids = token_ids(lm, TEXT)
    tokens, weights = attention_weights(lm, ids)
    return ids, tokens, weights


# --- the page ---------------------------------------------------------------------------------


def test_page_is_self_contained_and_opens_on_the_head_worth_seeing(text_weights):
    ids, tokens, w = text_weights
    scores = head_scores(w, ids)
    pick = head_worth_seeing(w, ids)
    page = attention_page.render_html(
        tokens, w, scores=scores, start=(pick.layer, pick.head), why=pick.why, title="t <x>"
    )
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page)
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert "t &lt;x&gt;" in page  # titles and tokens are escaped
    assert page.count('<td style="background') == len(ids) * (len(ids) + 1) // 2
    assert f"layer {pick.layer}, head {pick.head}</b>: the strongest induction head" in page
    assert f'value="{pick.layer}"' in page and f'value="{pick.head}"' in page
    assert scores.label(pick.layer, pick.head) in page  # the label shown first is that head's
    assert "__UID__" not in page and "frameElement" in page  # the JS is inlined and fits its frame


def test_page_fragment_one_head_and_iframe(text_weights):
    ids, tokens, w = text_weights
    page = attention_page.render_html(tokens, w)
    frag = attention_page.render_html(tokens, w, 17, 4, full_page=False)
    assert not frag.startswith("<!DOCTYPE") and "L17 H4" in frag

    def n_weights(html):  # the base64 payload: 2 bytes per weight
        return len(base64.b64decode(re.search(r'"w": "([^"]*)"', html).group(1))) // 2

    assert n_weights(frag) == len(ids) ** 2 and n_weights(page) == 270 * len(ids) ** 2
    box = attention_page.iframe(page)
    assert '<iframe srcdoc="&lt;!DOCTYPE html&gt;' in box
    height = int(re.search(r"width: 100%; height: (\d+)px", box).group(1))
    assert height == attention_page.estimated_height(len(ids)) > 16 * 2 * len(ids)


def test_page_bad_input_gives_clear_errors(text_weights):
    _, tokens, w = text_weights
    with pytest.raises(ValueError, match=r"layer 30 is out of range.*0\.\.29"):
        attention_page.render_html(tokens, w, layer=30)
    with pytest.raises(ValueError, match=r"head 9 is out of range.*0\.\.8"):
        attention_page.render_html(tokens, w, layer=0, head=9)
    with pytest.raises(ValueError, match="not among"):
        attention_page.render_html(tokens, w, layer=3, start=(4, 0))
    with pytest.raises(ValueError, match="pass layer="):
        big = np.broadcast_to(np.float32(0), (30, 9, 400, 400))  # no memory used
        attention_page.render_html(["x"] * 400, big)


# --- matplotlib views -------------------------------------------------------------------------


def test_plots_draw_what_they_are_given(text_weights):
    import matplotlib.pyplot as plt

    ids, tokens, w = text_weights
    T = len(ids)
    m = attention_plots.mosaic(w)
    assert m.shape == (30 * (T + 1), 9 * (T + 1)) and np.isnan(m[T, 0])
    np.testing.assert_array_equal(
        m[17 * (T + 1) : 17 * (T + 1) + T, 4 * (T + 1) : 4 * (T + 1) + T], w[17, 4]
    )
    assert attention_plots.show_token("a\n\t") == "a↵⇥" and attention_plots.show_token("") == "∅"
    fig, (a1, a2, a3) = plt.subplots(1, 3)
    im = attention_plots.heatmap(a1, tokens, w[0, 0])
    assert im.get_array().mask[0, 1] and not im.get_array().mask[1, 0]  # the future is masked
    attention_plots.line_view(a2, tokens, w[0, 0], hide_first=True)
    assert all(line.get_xdata()[0] == 0 for line in a2.lines)
    attention_plots.head_grid(a3, w, head_scores(w, ids))
    assert {t.get_text() for t in a3.texts} == {"P", "S", "I"}
    plt.close(fig)


# --- llmlab attend ----------------------------------------------------------------------------


@pytest.fixture
def same_lm(lm, monkeypatch):
    """Let the CLI reuse the session's model instead of loading another copy."""
    monkeypatch.setattr("llmlab.runtime.models.load_lm", lambda name=None: lm)


def test_attend_answers_what_each_token_looks_at(capsys, same_lm):
    assert attend.cli(["The capital of France is Paris. The capital of France is"]) == 0
    out = capsys.readouterr().out
    assert "the strongest induction head" in out and "previous-token head" in out
    assert re.search(r"' Paris' -> '[^']+' \(0\.\d\d\)", out), out
    assert "--layer L --head H" in out and "--html" in out  # the hint names the flags
    assert "wrote" not in out  # no page unless asked


def test_attend_one_head_and_page_in_a_folder(tmp_path, capsys, same_lm):
    assert attend.cli([TEXT, "--layer", "17", "--head", "4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    page = tmp_path / "attention.html"
    assert "L17 H4" in out and f"wrote {page.resolve()}" in out
    assert '<table class="heat">' in page.read_text(encoding="utf-8")
    assert attend.cli([TEXT, "--out", str(tmp_path / "new" / "a.html")]) == 0
    assert (tmp_path / "new" / "a.html").is_file()


def test_attend_html_prints_the_full_temp_path(capsys, same_lm):
    assert attend.cli([TEXT, "--html"]) == 0
    path = re.search(r"wrote (\S+attention\.html)", capsys.readouterr().out).group(1)
    assert path.startswith("/") or re.match(r"[A-Za-z]:\\", path)
    page = open(path, encoding="utf-8").read()  # noqa: SIM115
    assert "the strongest induction head" in page


def test_attend_short_text(capsys, same_lm):
    assert attend.cli(["Hi", "--layer", "0", "--head", "0"]) == 0
    assert "at least 3 tokens" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["hello there friend", "--layer", "30"], "--layer 30 is out of range"),
        (["hello there friend", "--layer", "0", "--head", "9"], "--head 9 is out of range"),
        (["hello there", "--head", "2"], "--head needs --layer"),
        (["   \n "], "text is empty"),
        ([], "required: text"),
        (["hello", "--layer", "x"], "invalid int value"),
        (["hello there friend", "--max-tokens", "2"], "--max-tokens=2"),
    ],
)
def test_attend_bad_input_is_one_line_exit_2(capsys, same_lm, argv, message):
    assert attend.cli(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err and captured.err.startswith("llmlab attend: ")


def test_attend_unwritable_out_is_one_line_exit_2(tmp_path, capsys, same_lm):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert attend.cli([TEXT, "--out", str(blocker / "sub" / "page.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmlab attend: ") and err.count("\n") == 1


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to parse JavaScript")
def test_page_script_is_valid_javascript(tmp_path):
    script = tmp_path / "page.js"
    source = (
        Path(attention_page.__file__).with_name("attention_page.js").read_text(encoding="utf-8")
    )
    script.write_text(source.replace("__UID__", "x"), encoding="utf-8")
    out = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
