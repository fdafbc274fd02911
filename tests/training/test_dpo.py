"""llmlab.training.dpo and llmlab.training.frozen_blocks: the loss against the paper and trl,
the frozen pass against the full model, the loop and its cache. A 4-block random Llama with the real tokenizer keeps it fast."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from llmlab.runtime.models import LM
from llmlab.training.dpo import (
    REPORT_FILE,
    DPOSettings,
    PreferenceSet,
    dpo_loss,
    encode_pair,
    heldout_scores,
    train_dpo,
)
from llmlab.training.frozen_blocks import frozen_pass, rows_logprobs, sequence_logprobs
from llmlab.training.lora import add_lora, lora_layers, lora_parameters, remove_lora, using_adapter
from llmlab.training.preferences import PreferencePair
from tests.doubles import tiny_llama

PAIRS = [
    PreferencePair(prompt="Name a colour.", chosen="Blue, thank you.", rejected="Blue, idiot."),
    PreferencePair(prompt="Add 2 and 2.", chosen="It is 4.", rejected="Obviously 4, duh."),
    PreferencePair(prompt="Capital of France?", chosen="Paris.", rejected="Paris, stupid."),
    PreferencePair(prompt="Say hi.", chosen="Hello there!", rejected="Go away."),
    PreferencePair(
        prompt="Paris is", chosen=" the capital of France.", rejected=" a fish.", chat=False
    ),
    PreferencePair(prompt="Ice is", chosen=" frozen water.", rejected=" hot lava.", chat=False),
]


@pytest.fixture(scope="module")
def tiny(lm):
    """A 4-block random Llama (hidden 64) with the real SmolLM2 tokenizer and chat template."""
    return LM(model=tiny_llama(lm.tokenizer, blocks=4), tokenizer=lm.tokenizer, name="tiny-llama")


def padded(sequences):
    width = max(len(s) for s in sequences)
    ids = torch.tensor([s.ids + [0] * (width - len(s)) for s in sequences])
    counted = torch.tensor([s.counted + [False] * (width - len(s)) for s in sequences])
    attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
    return ids, counted, attention


def trl_logps(logits, input_ids, completion_mask):
    """trl's per-sequence log-probs, transcribed from huggingface/trl@f2cd577
    (trl/trainer/dpo_trainer.py, DPOTrainer._compute_loss; selective_log_softmax in
    trl/trainer/utils.py is gather(log_softmax)). trl is not installed: it would add datasets,
    pyarrow and pandas for this one formula."""
    shift_logits = logits[..., :-1, :]
    shift_labels = input_ids[..., 1:]
    shift_completion_mask = completion_mask[..., 1:]
    per_token_logps = torch.gather(shift_logits.log_softmax(-1), -1, shift_labels[..., None])[
        ..., 0
    ]
    per_token_logps[shift_completion_mask == 0] = 0.0
    return per_token_logps.sum(dim=1)


def trl_sigmoid_loss(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    """trl's DPO loss for loss_type="sigmoid", f_divergence_type="reverse_kl" (same source),
    and its logged rewards."""
    chosen_logratios = chosen_logps - ref_chosen_logps
    rejected_logratios = rejected_logps - ref_rejected_logps
    delta_score = chosen_logratios - rejected_logratios
    per_sequence_loss = -F.logsigmoid(beta * delta_score)
    return per_sequence_loss.mean(), beta * chosen_logratios, beta * rejected_logratios


def test_dpo_loss_is_the_papers_formula_and_trls():
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(16, generator=g) * 5 - 20 for _ in range(4))
    for beta in (0.1, 0.5):
        losses, r_c, r_r = dpo_loss(pc, pr, rc, rr, beta)
        # Rafailov et al. 2023, eq. 7: -log sigma(beta log pi(yw)/ref(yw) - beta log pi(yl)/ref(yl))
        z = beta * ((pc - rc) - (pr - rr)).double().numpy()
        paper = -np.log(1 / (1 + np.exp(-z)))
        np.testing.assert_allclose(losses.double().numpy(), paper, rtol=1e-5)
        loss_trl, c_trl, r_trl = trl_sigmoid_loss(pc, pr, rc, rr, beta)
        assert losses.mean().item() == pytest.approx(loss_trl.item(), rel=1e-6)
        torch.testing.assert_close(r_c, c_trl)
        torch.testing.assert_close(r_r, r_trl)
    same = dpo_loss(pc, pr, pc, pr, 0.1)[0]
    assert torch.allclose(same, torch.full_like(same, math.log(2)))  # policy = reference
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(pc, pr, rc, rr, 0.0)


def test_encode_pair_counts_the_answer_only(tiny):
    tok = tiny.tokenizer
    chosen, rejected = encode_pair(tiny, PAIRS[0])
    assert tok.decode([i for i, c in zip(chosen.ids, chosen.counted, strict=True) if c]) == (
        "Blue, thank you.<|im_end|>"
    )
    assert tok.decode([i for i, c in zip(rejected.ids, rejected.counted, strict=True) if c]) == (
        "Blue, idiot.<|im_end|>"
    )
    plain, _ = encode_pair(tiny, PAIRS[4])
    assert (
        plain.ids == tok("Paris is the capital of France.", add_special_tokens=False)["input_ids"]
    )
    assert tok.decode([i for i, c in zip(plain.ids, plain.counted, strict=True) if c]) == (
        " the capital of France."
    )


def test_frozen_pass_logps_are_trls_on_the_full_model(tiny):
    data = PreferenceSet(tiny, PAIRS)
    frozen = frozen_pass(tiny.model, data.sequences, first_block=2, batch_size=4, progress=False)
    ids, counted, attention = padded(data.sequences)
    with torch.no_grad():
        logits = tiny.model(ids, attention_mask=attention).logits  # (N, T, V)
    reference = trl_logps(logits, ids, counted)
    torch.testing.assert_close(frozen.logps, reference, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(sequence_logprobs(logits, ids, counted), reference)
    # sorted by length, 4 per batch: the plain rows, then chat rows sharing their system prompt,
    # which is read once per batch, not once per row
    assert frozen.tokens < sum(len(s) for s in data.sequences)
    alone = frozen_pass(tiny.model, data.sequences, first_block=2, batch_size=1, progress=False)
    assert alone.tokens == sum(len(s) for s in data.sequences)
    torch.testing.assert_close(alone.logps, frozen.logps, atol=1e-4, rtol=1e-5)
    for a, b in zip(alone.hidden, frozen.hidden, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_top_blocks_on_the_frozen_pass_equal_the_full_model(tiny):
    """Training only the top blocks on stored hidden states gives the full model's log-probs and
    the full model's gradients (the blocks below are frozen), with the adapter on or off."""
    data = PreferenceSet(tiny, PAIRS)
    frozen = data.frozen(2)
    ids, counted, attention = padded(data.sequences)
    rows = list(range(len(data.sequences)))
    torch.manual_seed(1)
    add_lora(tiny.model, r=4, alpha=8, layers=[2, 3])
    try:
        for p in lora_parameters(tiny.model):
            torch.nn.init.normal_(p, std=0.1)  # B != 0: the adapter changes the outputs
        top = rows_logprobs(tiny.model, frozen, rows)
        top.sum().backward()
        grads_top = [p.grad.clone() for p in lora_parameters(tiny.model)]
        tiny.model.zero_grad()
        full = trl_logps(tiny.model(ids, attention_mask=attention).logits, ids, counted)
        full.sum().backward()
        grads_full = [p.grad.clone() for p in lora_parameters(tiny.model)]
        torch.testing.assert_close(top.detach(), full.detach(), atol=1e-4, rtol=1e-5)
        for a, b in zip(grads_top, grads_full, strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
        assert (top.detach() - frozen.logps).abs().max() > 1e-2  # the adapter did change them
    finally:
        remove_lora(tiny.model)


def test_train_dpo_learns_then_reads_the_cache(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    train, heldout = PreferenceSet(tiny, PAIRS[:4]), PreferenceSet(tiny, PAIRS[4:])
    settings = DPOSettings(
        beta=0.5, lr=2e-2, epochs=6, batch_size=2, r=4, alpha=8, top_blocks=2, eval_every=3
    )
    first = train_dpo(tiny, train, heldout, settings, progress=False)
    assert not first.from_cache and not lora_layers(tiny.model)  # the model is left as it was
    assert (first.folder / REPORT_FILE).is_file() and first.folder.parent.parent == tmp_path
    losses = [h["loss"] for h in first.history]
    assert len(losses) == 6 * 2
    assert losses[0] == pytest.approx(math.log(2), abs=1e-4)  # step 1: policy = reference
    assert first.heldout[0] == {"step": 0, "accuracy": 0.5, "margin": pytest.approx(0.0, abs=1e-4)}
    assert np.mean(losses[-2:]) < 0.5 * math.log(2)  # it learned the training pairs
    assert first.history[-1]["margin"] > 0
    assert [e["step"] for e in first.heldout] == [0, 3, 6, 9, 12]

    logps = {k: torch.tensor(v) for k, v in first.report["heldout_logps"].items()}
    assert all(len(v) == len(heldout) for v in logps.values())
    margin = settings.beta * (
        (logps["policy_chosen"] - logps["reference_chosen"])
        - (logps["policy_rejected"] - logps["reference_rejected"])
    )
    assert float(margin.mean()) == pytest.approx(first.heldout[-1]["margin"], abs=1e-5)

    with using_adapter(tiny.model, first.folder):  # the saved adapter is the trained one
        now = heldout_scores(tiny.model, heldout, first.first_block, settings.beta)
    assert now["accuracy"] == first.heldout[-1]["accuracy"]
    assert now["margin"] == pytest.approx(first.heldout[-1]["margin"], abs=1e-4)

    again = train_dpo(tiny, train, heldout, settings, progress=False)
    assert again.from_cache and again.folder == first.folder and again.history == first.history
    other = train_dpo(
        tiny, train, heldout, DPOSettings(**{**settings.__dict__, "beta": 0.1}), progress=False
    )
    assert not other.from_cache and other.folder != first.folder  # beta is part of the key


def test_train_dpo_refuses_a_model_that_has_an_adapter(tiny):
    data = PreferenceSet(tiny, PAIRS[:2])
    add_lora(tiny.model, r=2, layers=[3])
    try:
        with pytest.raises(ValueError, match="already carries a LoRA adapter"):
            train_dpo(tiny, data, data, cache=False, progress=False)
    finally:
        remove_lora(tiny.model)
    with pytest.raises(ValueError, match="top_blocks"):
        train_dpo(tiny, data, data, DPOSettings(top_blocks=9), cache=False, progress=False)
