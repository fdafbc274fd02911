"""llmlab.runtime.quantization on a tiny random Llama (milliseconds): bytes counted exactly,
int8 weights within half a step of the originals, the kept and tied layers left in float32,
the original model untouched, every bad argument a clear error.

The real model's numbers (memory, speed, accuracy) are measured in
phase-6-deep-dives/open-vs-closed.ipynb and benchmarks/bench_quantization.py.
"""

from __future__ import annotations

import pytest
import torch

from llmlab.decoding.context_window import decode_seconds
from llmlab.runtime.models import LM
from llmlab.runtime.quantization import (
    activation_range,
    cpu_features,
    has_fast_bf16,
    model_bytes,
    quantize,
    weight_dtype,
)

IDS = torch.tensor([[5, 17, 3, 99, 42, 7], [1, 2, 3, 4, 5, 6]])  # (B=2, T=6)
VOCAB = 1024  # the Phase 2 decode timer feeds token 1000
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TinyTokenizer:
    """Just enough of a tokenizer for ``activation_range``: text -> ids by character codes."""

    vocab_size = VOCAB

    def __call__(self, text: str, return_tensors: str = "pt") -> dict:
        return {"input_ids": torch.tensor([[ord(c) % VOCAB for c in text]])}  # (1, T)


def tiny_lm(tied: bool = True) -> LM:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
    )
    return LM(model=LlamaForCausalLM(config).eval(), tokenizer=TinyTokenizer(), name="tiny")


@pytest.fixture(scope="module")
def lm() -> LM:  # shadows the session's real model: these tests need only a tiny one
    return tiny_lm()


def logits(lm: LM) -> torch.Tensor:
    with torch.inference_mode():
        return lm.model(IDS).logits.float()  # (B, T, V)


def test_float32_bytes_count_every_number_once_tied_embeddings_included(lm):
    numbers = sum(p.numel() for p in lm.model.parameters())  # parameters() lists a tied one once
    buffers = sum(b.numel() * b.element_size() for b in lm.model.buffers())
    assert model_bytes(lm) == 4 * numbers + buffers
    untied = tiny_lm(tied=False)
    assert model_bytes(untied) == model_bytes(lm) + 4 * VOCAB * 64  # the second (V, C) copy


def test_bfloat16_halves_every_byte_and_keeps_the_predictions(lm):
    half = quantize(lm, "bfloat16")
    assert model_bytes(half) * 2 == model_bytes(lm)
    assert weight_dtype(half) == "bfloat16"
    assert all(p.dtype == torch.bfloat16 for p in half.model.parameters())
    torch.testing.assert_close(logits(half), logits(lm), atol=0.05, rtol=0.05)


def test_int8_bytes_are_one_per_weight_plus_a_scale_and_zero_point_per_row(lm):
    q = quantize(lm, "int8")
    linears = [m for n, m in lm.model.named_modules() if n.rsplit(".", 1)[-1] in LINEAR_NAMES]
    weights = sum(m.weight.numel() for m in linears)
    rows = sum(m.weight.shape[0] for m in linears)
    # float32 (4 bytes) -> int8 (1 byte) per weight; + float64 scale and int64 zero point per row
    expected = model_bytes(lm) - 3 * weights + 16 * rows
    assert model_bytes(q) == expected
    assert weight_dtype(q) == "float32 + int8"  # lm_head (tied to the embedding) stays float32


def test_int8_weights_are_within_half_a_step_of_the_originals(lm):
    q = quantize(lm, "int8")
    original = dict(lm.model.named_modules())
    checked = 0
    for name, mod in q.model.named_modules():
        packed = getattr(mod, "_packed_params", None)
        if packed is None or not hasattr(packed, "_weight_bias"):
            continue
        w = packed._weight_bias()[0]  # (out, in) qint8, one scale per row
        step = w.q_per_channel_scales().float()[:, None]  # (out, 1)
        error = (w.dequantize() - original[name].weight).abs()  # (out, in)
        assert (error <= step / 2 + 1e-6).all()
        checked += 1
    assert checked == 2 * len(LINEAR_NAMES)  # every block's linear layers, lm_head excluded
    torch.testing.assert_close(logits(q), logits(lm), atol=0.1, rtol=0.1)
    assert not torch.equal(logits(q), logits(lm))  # something really was rounded


def test_keep_leaves_the_named_layers_in_float32_and_the_original_untouched(lm):
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    q = quantize(lm, "int8", keep=("down_proj",))
    for name, mod in q.model.named_modules():
        kind = name.rsplit(".", 1)[-1]
        if kind == "down_proj":
            assert isinstance(mod, torch.nn.Linear) and mod.weight.dtype == torch.float32
        elif kind in LINEAR_NAMES:
            assert hasattr(mod, "_packed_params")
    assert "down_proj kept float32" in q.name and q.tokenizer is lm.tokenizer
    after = lm.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert weight_dtype(lm) == "float32"


def test_quantized_models_run_the_phase_2_decode_timer(lm):
    for kind in ("bfloat16", "int8"):  # the timer's random cache follows the model's dtype
        (seconds,) = decode_seconds(quantize(lm, kind), [4], rounds=1)
        assert seconds > 0


def test_activation_range_reports_the_largest_and_median_input(lm):
    seen = []
    handle = lm.model.model.layers[1].mlp.down_proj.register_forward_hook(
        lambda m, inp, out: seen.append(inp[0].abs())
    )
    try:
        largest, median = activation_range(lm, "hello world", layer="down_proj")
    finally:
        handle.remove()
    assert 0 <= median <= largest
    assert largest >= float(seen[0].max())  # the max covers layer 1's inputs too
    with pytest.raises(ValueError, match="No linear layer named"):
        activation_range(lm, "hi", layer="nope")


def test_bad_arguments_say_what_to_do(lm):
    with pytest.raises(ValueError, match="kind must be one of float32, bfloat16, int8"):
        quantize(lm, "int4")
    with pytest.raises(TypeError, match=r"\('down_proj',\)"):
        quantize(lm, "int8", keep="down_proj")
    with pytest.raises(ValueError, match="Its linear layers are called"):
        quantize(lm, "int8", keep=("mlp",))
    with pytest.raises(ValueError, match="keep only applies to kind='int8'"):
        quantize(lm, "bfloat16", keep=("down_proj",))


def test_cpu_features_are_booleans_and_agree_with_has_fast_bf16():
    flags = cpu_features()
    assert all(isinstance(v, bool) for v in flags.values())
    bf16 = flags.get("avx512_bf16") or flags.get("amx_bf16") or flags.get("bf16")
    assert has_fast_bf16() == bool(bf16)
