"""Tests for llmlab.explorer: the explorer's numbers, forcing, GLTR HTML and the widget app."""

from __future__ import annotations

import re

import pytest
import torch

from llmlab import explorer as E
from llmlab.generation import generate, next_token_probs, sampling_distribution

PROMPT = "The capital of France is"


def model_probs(lm, ids):
    with torch.inference_mode():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]
    return torch.softmax(logits.float(), -1)


def test_view_equals_next_token_probs_and_softmax(lm):
    ex = E.Explorer(lm, PROMPT, E.Settings(temperature=1.0), n_candidates=10)
    rows = ex.view().rows
    ref = next_token_probs(lm, PROMPT, k=10)
    assert [r.token_id for r in rows] == [c.token_id for c in ref]
    for r, c in zip(rows, ref, strict=True):
        assert r.prob == pytest.approx(c.prob, abs=1e-5)
        assert r.tempered == pytest.approx(r.prob, abs=1e-6)  # T = 1 changes nothing
        assert r.kept and r.final == pytest.approx(r.prob, abs=1e-5)  # no filter
    probs = model_probs(lm, ex.prompt_ids)
    assert rows[0].prob == pytest.approx(float(probs.max()), abs=1e-5)
    assert rows[0].token == " Paris"


@pytest.mark.parametrize(
    "settings",
    [
        E.Settings(temperature=0.7, top_k=3),
        E.Settings(temperature=1.3, top_p=0.6),
        E.Settings(temperature=1.0, min_p=0.1),
        E.Settings(temperature=0.0),
    ],
)
def test_filtered_distribution_matches_generation(lm, settings):
    ex = E.Explorer(lm, PROMPT, settings)
    _, _, final = ex.distributions()
    ref = sampling_distribution(
        ex.logits(), settings.temperature, settings.top_k, settings.top_p, settings.min_p
    )
    assert torch.allclose(final, ref, atol=1e-6)
    view = ex.view()
    assert view.n_kept == int((ref > 0).sum())
    assert sum(r.final for r in view.rows if r.kept) == pytest.approx(
        float(ref[[r.token_id for r in view.rows]].sum()), abs=1e-5
    )
    if settings.top_k:
        assert view.n_kept == settings.top_k
        assert [r.kept for r in view.rows] == [True] * 3 + [False] * 7


def test_greedy_explore_equals_generate(lm):
    ex = E.explore(lm, PROMPT, steps=6, temperature=0.0, plot=False)
    gen = generate(lm, PROMPT, max_new_tokens=6, temperature=0.0)
    assert [s.token_id for s in ex.steps] == gen.token_ids
    for s, g in zip(ex.steps, gen.steps, strict=True):
        assert s.prob == pytest.approx(g.prob, abs=1e-5)
        assert s.entropy == pytest.approx(g.entropy, abs=1e-3)
        assert s.rank == 1 and not s.forced


def test_forcing_a_token_branches_the_continuation(lm):
    ex = E.explore(lm, PROMPT, steps=4, temperature=0.0, forced={0: " Lyon"}, plot=False)
    first = ex.steps[0]
    assert first.token == " Lyon" and first.forced
    assert first.rank > 1 and first.final_prob == 0.0  # greedy would never pick it
    assert first.prob == pytest.approx(
        float(model_probs(lm, ex.prompt_ids)[first.token_id]), abs=1e-5
    )
    # after the forced token, greedy carries on from the new branch
    branch = generate(lm, ex.prompt_ids + [first.token_id], max_new_tokens=3, temperature=0.0)
    assert [s.token_id for s in ex.steps[1:]] == branch.token_ids
    assert ex.text.startswith(" Lyon")


def test_sampling_is_seeded_and_undo_works(lm):
    a = E.explore(lm, PROMPT, steps=5, temperature=1.2, seed=7, plot=False)
    b = E.explore(lm, PROMPT, steps=5, temperature=1.2, seed=7, plot=False)
    assert [s.token_id for s in a.steps] == [s.token_id for s in b.steps]
    ex = E.Explorer(lm, PROMPT, E.Settings(temperature=0.0))
    ex.step()
    ex.step()
    removed = ex.undo()
    assert len(ex.steps) == 1 and removed is not None
    assert ex.step().token_id == removed.token_id  # greedy: same branch again
    # after undo and a forced branch, the (KV-cached) distribution still equals a fresh forward pass
    ex.undo()
    ex.step(" Lyon")
    fresh = model_probs(lm, ex.ids)
    assert torch.allclose(ex.distributions()[0], fresh, atol=1e-5)


def test_bad_input_gives_clear_errors(lm):
    with pytest.raises(ValueError, match="temperature"):
        E.Explorer(lm, PROMPT, E.Settings(temperature=-1))
    with pytest.raises(ValueError, match="top_p"):
        E.Explorer(lm, PROMPT, E.Settings(top_p=1.5))
    with pytest.raises(ValueError, match="not one"):
        E.token_to_id(lm, " Saint-Tropez")
    with pytest.raises(ValueError, match=r"\[0, "):
        E.token_to_id(lm, 10**9)
    with pytest.raises(ValueError, match="forced"):
        E.explore(lm, PROMPT, steps=2, forced={5: " Paris"}, plot=False)
    with pytest.raises(ValueError, match="empty"):
        E.Explorer(lm, "   ")


def test_static_figure(lm):
    ex = E.explore(lm, PROMPT, steps=3, temperature=0.0, top_k=5)
    assert ex.figure is not None and len(ex.figure.axes) == 3  # steps, entropy twin, candidates
    bottom = ex.figure.axes[1]  # axes: steps, candidates, then the entropy twin
    labels = [t.get_text() for t in bottom.get_yticklabels()]
    assert repr(" Paris") in labels


def test_gltr_html_is_self_contained(lm):
    ex = E.explore(lm, "x < y & z", steps=5, temperature=0.0, forced={0: "\n"}, plot=False)
    page = E.gltr_html(ex.steps, prompt="x < y & z")
    assert "<script" not in page.lower()
    assert not re.search(r"https?://|src=|href=|@import|url\(", page)
    assert "x &lt; y &amp; z" in page  # escaped
    assert page.count("<span title=") == len(ex.steps)
    assert "rank 1" in page and "entropy" in page and "forced" in page
    # generation.Step works too (rank found among its candidates)
    gen = generate(lm, PROMPT, max_new_tokens=3)
    assert E.gltr_html(gen.steps).count("rank 1") == 3


def test_widget_app_builds_and_responds(lm):
    app = E.ExplorerApp(lm, prompt=PROMPT, n_candidates=5)
    assert app.chart.value[:4] == b"\x89PNG"
    assert len(app.candidates.children) == 5
    app.temperature.value = 0.0  # greedy
    app.step_button.click()
    assert app.explorer.steps[-1].token == " Paris"
    target = app.explorer.view().rows[2].token_id
    app.candidates.children[2].click()  # force the third candidate
    assert app.explorer.steps[-1].token_id == target and app.explorer.steps[-1].forced
    assert "forced" in app.text.value
    app.temperature.value = 1.0
    app.top_k.value = 2
    assert "2 of" in app.status.value
    app.undo_button.click()
    assert len(app.explorer.steps) == 1
    app.prompt_box.value = ""
    app.restart_button.click()
    assert "empty" in app.status.value  # a bad prompt is reported, not raised
    bad = E.ExplorerApp(lm, prompt="")  # an invalid first prompt: status says why, nothing breaks
    assert "empty" in bad.status.value
    bad.step_button.click()
    bad.temperature.value = 0.5
    assert bad.explorer is None
