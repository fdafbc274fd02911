"""llmlab.internals.transformer against the real model: the hand-built pieces must reproduce transformers'."""

from __future__ import annotations

import pytest
import torch

from llmlab.internals import transformer
from llmlab.runtime.architecture import config_of
from llmlab.runtime.models import eager_attention
from llmlab.runtime.threads import use_threads

TEXT = "The capital of France is Paris. The capital of Germany is"


def _run_with_hooks(lm, ids, **kwargs):
    """Run the real model once; capture each decoder layer's input and output via hooks."""
    captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(i):
        def fn(module, args, kw, out):
            inp = kw["hidden_states"] if "hidden_states" in kw else args[0]
            captured[i] = (
                inp.detach().clone(),
                (out[0] if isinstance(out, tuple) else out).detach(),
            )

        return fn

    handles = [
        layer.register_forward_hook(hook(i), with_kwargs=True)
        for i, layer in enumerate(lm.model.model.layers)
    ]
    try:
        with torch.no_grad(), use_threads(ids.numel()), eager_attention(lm):  # weights: eager
            out = lm.model(ids, output_hidden_states=True, output_attentions=True, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return out, captured


@pytest.fixture(scope="module")
def ids(lm):
    return lm.tokenizer(TEXT, return_tensors="pt").input_ids  # (1, T)


@pytest.fixture(scope="module")
def reference(lm, ids):
    return _run_with_hooks(lm, ids)


def test_config_facts_are_read_from_the_model(lm):
    cfg = config_of(lm)
    c = lm.model.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_kv_head, cfg.n_embd) == (
        c.num_hidden_layers,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.hidden_size,
    )
    # SmolLM2-135M: the numbers the notebooks talk about
    assert (cfg.n_layer, cfg.n_head, cfg.n_kv_head, cfg.n_embd, cfg.head_dim) == (30, 9, 3, 576, 64)
    assert cfg.tie_word_embeddings
    assert lm.model.lm_head.weight.data_ptr() == lm.model.model.embed_tokens.weight.data_ptr()


@pytest.mark.parametrize("layer", [0, 14, 29])
def test_block_forward_equals_model_layer(lm, reference, layer):
    _, captured = reference
    inp, expected = captured[layer]
    with torch.no_grad():
        mine = transformer.block_forward(lm, layer, inp)
    assert mine.shape == expected.shape
    assert (mine - expected).abs().max().item() < 1e-4


def test_block_forward_honours_position_ids_and_batches(lm):
    a = lm.tokenizer("Bonjour tout le monde, comment", return_tensors="pt").input_ids
    b = lm.tokenizer("One two three four five six", return_tensors="pt").input_ids
    T = min(a.shape[1], b.shape[1])
    ids = torch.cat([a[:, :T], b[:, :T]])  # (2, T)
    spread = torch.arange(T)[None].expand(2, T) * 5  # positions 0, 5, 10, ...: gaps between tokens
    _, captured = _run_with_hooks(lm, ids, position_ids=spread)
    inp, expected = captured[3]
    with torch.no_grad():
        mine = transformer.block_forward(lm, 3, inp, position_ids=spread)
        default_pos = transformer.block_forward(lm, 3, inp)  # 0, 1, 2, ...
        shifted = transformer.block_forward(
            lm, 3, inp, position_ids=torch.arange(T)[None].expand(2, T) + 100
        )
    assert (mine - expected).abs().max().item() < 1e-4
    assert (default_pos - expected).abs().max().item() > 1e-2  # distances between tokens matter...
    assert (
        shifted - default_pos
    ).abs().max().item() < 1e-3  # ...a shift of all positions does not (RoPE)


def test_stacked_blocks_reproduce_hidden_states_and_logits(lm, ids, reference):
    out, _ = reference
    stream = transformer.residual_stream(lm, ids)  # (L+1, 1, T, C)
    assert stream.shape == (31, 1, ids.shape[1], 576)
    # transformers' hidden_states: [embeddings, block 0 out, ..., block 28 out, norm(block 29 out)]
    for i in range(30):
        assert (stream[i] - out.hidden_states[i]).abs().max().item() < 1e-4, i
    logits = transformer.final_logits(lm, ids)
    assert (logits - out.logits).abs().max().item() < 1e-4


def test_attention_weights_equal_output_attentions(lm, reference):
    out, captured = reference
    layer = 5
    cfg = config_of(lm)
    inp, _ = captured[layer]
    T = inp.shape[1]
    cos, sin = transformer.rotary(torch.arange(T)[None], cfg.head_dim, cfg.rope_theta)
    h = transformer.rms_norm(
        inp, lm.model.model.layers[layer].input_layernorm.weight, cfg.rms_norm_eps
    )
    with torch.no_grad():
        _, weights = transformer.attention(lm, layer, h, cos, sin)
    assert weights.shape == (1, 9, T, T)
    assert (weights - out.attentions[layer]).abs().max().item() < 1e-5
    assert torch.allclose(weights.sum(-1), torch.ones(1, 9, T), atol=1e-5)
    assert weights.triu(1).abs().max().item() == 0.0  # causal: nothing from the future


def test_rms_norm_and_rotary_match_transformers(lm):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 576) * 30
    norm = lm.model.model.layers[0].input_layernorm
    cfg = config_of(lm)
    with torch.no_grad():
        assert torch.allclose(
            transformer.rms_norm(x, norm.weight, cfg.rms_norm_eps), norm(x), atol=1e-5
        )
        pos = torch.arange(5)[None].expand(2, 5)
        cos_ref, sin_ref = lm.model.model.rotary_emb(x, pos)
    cos, sin = transformer.rotary(pos, cfg.head_dim, cfg.rope_theta)
    assert torch.allclose(cos, cos_ref, atol=1e-6) and torch.allclose(sin, sin_ref, atol=1e-6)


def test_rope_scores_depend_only_on_relative_position():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 64), torch.randn(1, 1, 1, 64)
    scores = []
    for start in (0, 10, 1000):
        cos, sin = transformer.rotary(
            torch.tensor([[start, start + 3]]), 64, 100000.0
        )  # (1, 2, 64)
        qr = transformer.apply_rotary(q, cos[:, 1:], sin[:, 1:])  # query at start+3
        kr = transformer.apply_rotary(k, cos[:, :1], sin[:, :1])  # key at start
        scores.append((qr * kr).sum().item())
        assert torch.allclose(qr.norm(), q.norm(), atol=1e-5)  # rotation keeps length
    assert max(scores) - min(scores) < 1e-3
    assert torch.equal(transformer.rotate_half(transformer.rotate_half(q)), -q)


def test_parameter_breakdown_sums_to_model_total(lm):
    counts = transformer.parameter_breakdown(lm)
    total = sum(p.numel() for p in lm.model.parameters())
    assert sum(counts.values()) == total == 134_515_008
    cfg = config_of(lm)
    C, L, kv = cfg.n_embd, cfg.n_layer, cfg.n_kv_head * cfg.head_dim
    assert counts["embedding"] == cfg.vocab_size * C
    assert counts["attention"] == L * (2 * C * C + 2 * C * kv)
    assert counts["mlp"] == L * 3 * C * cfg.intermediate_size
    assert counts["norms"] == L * 2 * C and counts["final_norm"] == C
    assert counts["lm_head"] == 0  # tied: the embedding matrix is reused, counted once
    assert (
        sum(transformer.layer_parameters(lm, 0).values())
        == (counts["attention"] + counts["mlp"] + counts["norms"]) // L
    )


@pytest.mark.parametrize("bad", [-1, 30, 1.5, "3", True])
def test_bad_layer_index_is_a_clear_error(lm, bad):
    with pytest.raises(ValueError, match=r"0\.\.29"):
        transformer.block_forward(lm, bad, torch.zeros(1, 2, 576))


def test_bad_hidden_states_shape_is_a_clear_error(lm):
    with pytest.raises(ValueError, match=r"\(B, T, 576\)"):
        transformer.block_forward(lm, 0, torch.zeros(2, 576))


def test_logit_lens_final_layer_is_the_model_prediction(lm):
    text = "The capital of France is"
    lens = transformer.logit_lens(lm, text)
    ids = lm.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad(), use_threads(ids.numel()):
        ref = lm.model(ids).logits[0, -1].log_softmax(-1)  # (V,)
    assert lens.log_probs.shape == (31, 49152)
    assert (lens.log_probs[-1] - ref).abs().max().item() < 1e-4
    assert lens.log_probs[-1].argmax().item() == ref.argmax().item()
    assert lens.top(1)[-1][0][0] == " Paris"
    ranks = lens.rank(" Paris")
    assert ranks[-1] == 0 and ranks[0] > 100  # the answer forms on the way up
    with pytest.raises(ValueError, match="single token"):
        lens.rank(" Paris France")
    with pytest.raises(ValueError, match="position"):
        transformer.logit_lens(lm, text, position=99)
