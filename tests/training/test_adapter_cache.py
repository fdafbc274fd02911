"""Tests for llmlab.training.adapter_cache: the keys see the weights, a run is cached once."""

from __future__ import annotations

import pytest
import torch

from llmlab.runtime.models import LM
from llmlab.training.adapter_cache import cached_adapter, fingerprint, model_identity
from llmlab.training.lora import add_lora, lora_layers, merge_lora
from tests.doubles import tiny_llama


@pytest.fixture(scope="module")
def tiny(lm):
    return LM(model=tiny_llama(lm.tokenizer), tokenizer=lm.tokenizer, name="tiny-llama")


def test_fingerprint_is_stable_and_sees_every_part():
    assert fingerprint("a", {"x": 1, "y": 2}) == fingerprint("a", {"y": 2, "x": 1})
    assert fingerprint("a", 1) != fingerprint("a", 2) and len(fingerprint("a")) == 16


def test_model_identity_sees_merged_weights_not_the_wrapper(tiny):
    before = model_identity(tiny.model)
    from transformers import LlamaForCausalLM

    copy = LlamaForCausalLM(tiny.model.config)
    copy.load_state_dict(tiny.model.state_dict())
    add_lora(copy)
    assert model_identity(copy) == before  # a wrapper with B = 0 is the same model
    with torch.no_grad():
        for m in lora_layers(copy).values():
            m.lora_B.weight.fill_(0.01)
    merge_lora(copy)
    assert model_identity(copy) != before


def test_cached_adapter_runs_once_and_checks_the_required_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path))
    calls = []

    def run(folder):
        calls.append(folder)
        (folder / "blocks.safetensors").write_bytes(b"weights")

    first = cached_adapter("k1", run, required="blocks.safetensors")
    again = cached_adapter("k1", run, required="blocks.safetensors")
    assert first == again and len(calls) == 1  # the second call reads the cache
    assert (first / "blocks.safetensors").read_bytes() == b"weights"
    with pytest.raises(RuntimeError, match="wrote no adapter_config.json"):
        cached_adapter("k2", run)  # the default proof of a finished run is an adapter config
    assert not (tmp_path / "adapters" / "k2").exists()  # nothing half-written left behind
