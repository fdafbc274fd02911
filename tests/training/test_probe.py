"""llmlab.training.probe: mean-pooled hidden states against a plain forward pass; the probe fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmlab.runtime.models import LM
from llmlab.training.probe import fit_probe, lm_features


@pytest.fixture(scope="module")
def tiny(lm):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(lm.tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LM(model=LlamaForCausalLM(config).eval(), tokenizer=lm.tokenizer, name="tiny-llama")


def test_features_are_the_mean_hidden_state_of_each_text_alone(tiny):
    texts = ["A short one.", "A much longer text, so the batch needs padding on the right."]
    feats = lm_features(tiny, texts, batch_size=2)  # batched and padded
    assert feats.shape == (2, 32)
    for text, row in zip(texts, feats, strict=True):
        ids = tiny.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            alone = tiny.model(ids, output_hidden_states=True).hidden_states[-1][0].mean(0)
        assert np.allclose(row, alone.numpy(), atol=1e-5)  # padding changes nothing
    with pytest.raises(ValueError, match="non-empty list"):
        lm_features(tiny, "one string")


def test_probe_separates_separable_features():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(3, 1, (20, 5))])
    y = ["a"] * 20 + ["b"] * 20
    assert (fit_probe(x, y).predict(x) == np.array(y)).mean() > 0.95
    with pytest.raises(ValueError, match="features must be"):
        fit_probe(x[:5], y)
