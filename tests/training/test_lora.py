"""llmlab.training.lora against peft on a tiny random Llama: outputs, gradients, merge, files."""

from __future__ import annotations

import json

import pytest
import torch

from llmlab.training.lora import (
    ALL_LINEAR,
    CONFIG_FILE,
    LoRALinear,
    add_lora,
    load_adapter,
    lora_disabled,
    lora_layers,
    lora_parameters,
    merge_lora,
    read_adapter_config,
    remove_lora,
    save_adapter,
)

peft = pytest.importorskip("peft")


def tiny_llama(seed: int = 0):
    """A 2-block Llama with random weights (hidden 64): milliseconds per step."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


IDS = torch.tensor([[5, 17, 3, 99, 42, 7], [1, 2, 3, 4, 5, 6]])  # (B=2, T=6)


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits  # (B, T, V)


def randomize(model, seed: int = 1) -> None:
    """Give B non-zero values (at init B = 0, so the adapter would change nothing)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lora_parameters(model):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def peft_twin(model_seed: int, r: int, alpha: float, layers=None):
    """The same tiny model wrapped by peft with the same settings."""
    config = peft.LoraConfig(
        r=r, lora_alpha=alpha, target_modules=list(ALL_LINEAR), layers_to_transform=layers
    )
    return peft.get_peft_model(tiny_llama(model_seed), config)


def copy_into_peft(ours, theirs) -> None:
    """Copy our A and B into the peft model, matched by module name."""
    with torch.no_grad():
        for name, m in lora_layers(ours).items():
            target = theirs.base_model.model.get_submodule(name)
            target.lora_A["default"].weight.copy_(m.lora_A.weight)
            target.lora_B["default"].weight.copy_(m.lora_B.weight)


def test_starts_as_the_base_model_and_trains_only_the_adapter():
    model = tiny_llama()
    before = logits(model)
    wrapped = add_lora(model, r=4, alpha=8)
    assert len(wrapped) == 7 * 2
    assert torch.equal(logits(model), before)  # B = 0 at init: identical outputs
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in lora_parameters(model)}
    ours = sum(p.numel() for p in trainable)
    theirs = peft_twin(0, r=4, alpha=8).get_nb_trainable_parameters()[0]
    assert ours == theirs  # the same count peft reports


def test_outputs_and_gradients_match_peft():
    ours = tiny_llama()
    add_lora(ours, r=4, alpha=8)
    randomize(ours)
    theirs = peft_twin(0, r=4, alpha=8)
    copy_into_peft(ours, theirs)
    assert torch.allclose(logits(ours), logits(theirs), atol=1e-5)

    for model in (ours, theirs):
        model.zero_grad()
        out = model(IDS, labels=IDS)
        out.loss.backward()
    for name, m in lora_layers(ours).items():
        target = theirs.base_model.model.get_submodule(name)
        for part in ("lora_A", "lora_B"):
            g_ours = getattr(m, part).weight.grad
            g_theirs = getattr(target, part)["default"].weight.grad
            assert torch.allclose(g_ours, g_theirs, atol=1e-6), (name, part)


def test_top_blocks_only():
    model = tiny_llama()
    wrapped = add_lora(model, r=2, alpha=4, targets=("q_proj", "v_proj"), layers=[1])
    assert sorted(lora_layers(model)) == [
        "model.layers.1.self_attn.q_proj",
        "model.layers.1.self_attn.v_proj",
    ]
    assert len(wrapped) == 2
    with pytest.raises(ValueError, match="No linear layer"):
        add_lora(tiny_llama(), targets=("qkv",))
    with pytest.raises(ValueError, match="already has LoRA"):
        add_lora(model)


def test_merged_equals_unmerged_and_remove_restores_the_base():
    model = tiny_llama()
    base_weights = {k: v.clone() for k, v in model.state_dict().items()}
    base = logits(model)
    add_lora(model, r=4, alpha=8)
    randomize(model)
    adapted = logits(model)
    assert not torch.allclose(adapted, base, atol=1e-3)  # the adapter changes the model
    with lora_disabled(model):
        assert torch.equal(logits(model), base)  # switched off: exactly the base model
    assert torch.equal(logits(model), adapted)  # and back on after the block

    merged = merge_lora(tiny_llama())  # no adapter: merge is a no-op
    assert torch.equal(logits(merged), base)
    copy = tiny_llama()
    add_lora(copy, r=4, alpha=8)
    randomize(copy)
    merge_lora(copy)
    assert not lora_layers(copy)
    assert torch.allclose(logits(copy), adapted, atol=1e-5)  # merged == unmerged

    remove_lora(model)
    assert not lora_layers(model)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in base_weights.items())


def test_saved_adapter_loads_in_peft_and_back(tmp_path):
    ours = tiny_llama()
    add_lora(ours, r=4, alpha=8, layers=[1])
    randomize(ours)
    expected = logits(ours)
    folder = save_adapter(ours, tmp_path / "adapter", base_model_name="tiny-llama")
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["peft_type"] == "LORA" and config["layers_to_transform"] == [1]

    theirs = peft.PeftModel.from_pretrained(tiny_llama(), folder)  # peft reads our files
    assert torch.allclose(logits(theirs), expected, atol=1e-5)

    peft_folder = tmp_path / "from-peft"
    theirs.save_pretrained(peft_folder)  # and we read peft's
    again = tiny_llama()
    load_adapter(again, peft_folder)
    assert torch.allclose(logits(again), expected, atol=1e-5)
    assert all(isinstance(m, LoRALinear) for m in lora_layers(again).values())


def test_load_adapter_refuses_what_does_not_fit(tmp_path):
    with pytest.raises(ValueError, match="not an adapter folder"):
        read_adapter_config(tmp_path)
    model = tiny_llama()
    add_lora(model, r=4, alpha=8)
    folder = save_adapter(model, tmp_path / "a", base_model_name="tiny-llama")
    from transformers import LlamaConfig, LlamaForCausalLM

    wider = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=128,
            hidden_size=32,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
    )
    with pytest.raises(ValueError, match="does not fit"):
        load_adapter(wider, folder)
    assert not lora_layers(wider)  # nothing left half-wrapped
    config = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(ValueError, match="peft.PeftModel"):
        load_adapter(tiny_llama(), folder)


def test_remove_and_merge_give_back_each_weights_requires_grad(tmp_path):
    # add_lora freezes the whole model; a weight left frozen afterwards (lm_head above all)
    # sends later decoding down a slow matmul path, so unwrapping restores every flag.
    model = tiny_llama()
    model.model.embed_tokens.requires_grad_(False)  # a choice of the caller, kept as it was
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    assert model.lm_head.weight.requires_grad and not all(flags.values())
    add_lora(model, r=2, alpha=4)
    assert not model.lm_head.weight.requires_grad  # frozen while the adapter trains
    with lora_disabled(model):
        pass
    remove_lora(model)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags

    add_lora(model, r=2, alpha=4)
    randomize(model)
    folder = save_adapter(model, tmp_path / "a", base_model_name="tiny-llama")
    merge_lora(model)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    load_adapter(model, folder)  # what using_adapter does, then remove_lora
    remove_lora(model)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
