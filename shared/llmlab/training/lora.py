"""LoRA (low-rank adaptation) by hand: train two thin matrices beside each frozen weight.

A linear layer computes ``y = x W^T``. LoRA freezes ``W`` (out x in) and learns a low-rank
change ``ΔW = B A`` with ``A`` (r x in) and ``B`` (out x r), r = 8 say, so each layer trains
``r * (in + out)`` numbers instead of ``in * out``::

    y = x W^T + (alpha / r) * (x A^T) B^T          # B starts at zero: y is unchanged at first

Covers:
- ``LoRALinear``: a frozen ``nn.Linear`` plus ``lora_A`` / ``lora_B`` (peft's names and shapes).
- ``add_lora(model, r, alpha, targets, layers)``: wrap the chosen linear layers in place;
  ``lora_parameters``, ``lora_layers``, ``remove_lora`` (base restored exactly),
  ``lora_disabled`` (a context: the model as it was, e.g. DPO's reference model),
  ``merge_lora`` (fold ``B A`` into ``W`` and unwrap: a plain model again, no extra cost per token).
- ``save_adapter`` / ``load_adapter`` / ``using_adapter`` (a context) / ``apply_adapter``
  (load and merge, for good): peft's on-disk format (``adapter_config.json`` +
  ``adapter_model.safetensors``), so ``peft.PeftModel.from_pretrained`` loads what we save and
  we load what peft saves.

Leaves out: LoRA dropout, bias training, DoRA / rsLoRA / per-module ranks, embeddings and the
output head (peft has all of them; ``load_adapter`` refuses such adapters with a clear message).
``tests/training/test_lora.py`` checks this module against peft: same outputs at init, same
gradients, merged == unmerged, adapters loaded both ways.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

# Every linear layer of a Llama block (attention: q, k, v, o; MLP: gate, up, down).
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CONFIG_FILE = "adapter_config.json"  # peft's file names
WEIGHTS_FILE = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."  # peft's names for the wrapped model's modules
_SAVED_FLAGS = "_lora_saved_requires_grad"  # add_lora's record of the flags, on the model
BLOCK = re.compile(r"(?:^|\.)layers\.(\d+)\.")  # "model.layers.12.mlp.up_proj" -> block 12


class LoRALinear(nn.Module):
    """``base(x) + scaling * lora_B(lora_A(x))`` with ``base`` frozen; starts equal to ``base``."""

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16) -> None:
        super().__init__()
        if r < 1:
            raise ValueError(f"LoRA rank r must be >= 1, got {r}.")
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_A = nn.Linear(base.in_features, r, bias=False)  # weight (r, in)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)  # weight (out, r)
        self.lora_A.to(base.weight.dtype)
        self.lora_B.to(base.weight.dtype)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))  # as peft (and nn.Linear)
        nn.init.zeros_(self.lora_B.weight)  # B = 0: the wrapped model starts unchanged
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., in)
        y = self.base(x)  # (..., out)
        if self.enabled:
            y = y + self.lora_B(self.lora_A(x)) * self.scaling  # (..., r) -> (..., out)
        return y

    def delta_weight(self) -> torch.Tensor:
        """``scaling * B A``: what LoRA adds to the frozen weight, (out, in)."""
        return self.scaling * (self.lora_B.weight @ self.lora_A.weight)

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}"


def _block(name: str) -> int | None:
    found = BLOCK.search(name)
    return int(found.group(1)) if found else None


def add_lora(
    model: nn.Module,
    r: int = 8,
    alpha: float = 16,
    targets: Sequence[str] = ALL_LINEAR,
    layers: Iterable[int] | None = None,
) -> list[LoRALinear]:
    """Wrap every ``nn.Linear`` named in ``targets`` (in blocks ``layers``, None = all) in place.

    Every other parameter of the model is frozen, so an optimizer over
    ``lora_parameters(model)`` trains the adapter only. ``add_lora(lm.model, r=8)`` on
    SmolLM2-135M wraps 7 x 30 = 210 layers: 2,442,240 trainable numbers, 1.8% of the model.
    """
    if lora_layers(model):
        raise ValueError("This model already has LoRA layers: call remove_lora(model) first.")
    wanted = None if layers is None else {int(i) for i in layers}
    chosen = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and name.rsplit(".", 1)[-1] in targets
        and (wanted is None or _block(name) in wanted)
    ]
    if not chosen:
        raise ValueError(
            f"No linear layer matches targets={list(targets)} and layers={layers}: "
            f"the model's linear layers end in {sorted(_linear_suffixes(model))}."
        )
    # Remember each weight's flag so remove_lora can give it back: a frozen lm_head sends torch
    # down a slow matmul path later (logits_to_keep=1 decoding 4x slower in fp32, ~180x in bf16).
    model.__dict__[_SAVED_FLAGS] = {n: p.requires_grad for n, p in model.named_parameters()}
    model.requires_grad_(False)
    wrapped = []
    for name, module in chosen:
        parent_name, _, child = name.rpartition(".")
        lora = LoRALinear(module, r=r, alpha=alpha)
        setattr(model.get_submodule(parent_name), child, lora)
        wrapped.append(lora)
    return wrapped


def _linear_suffixes(model: nn.Module) -> set[str]:
    return {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """``{"model.layers.0.self_attn.q_proj": LoRALinear, ...}``: the wrapped layers by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The adapter's trainable tensors (every ``lora_A`` and ``lora_B`` weight), in model order."""
    return [p for m in lora_layers(model).values() for p in (m.lora_A.weight, m.lora_B.weight)]


def remove_lora(model: nn.Module) -> nn.Module:
    """Unwrap every LoRA layer: the model is exactly the base model again (weights untouched),
    each weight's ``requires_grad`` back to what it was before ``add_lora`` froze it."""
    for name, lora in lora_layers(model).items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, lora.base)
    saved = model.__dict__.pop(_SAVED_FLAGS, None)
    if saved is not None:
        for name, param in model.named_parameters():
            if name in saved:
                param.requires_grad_(saved[name])
    return model


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold each adapter into its weight (``W += scaling * B A``) and unwrap: a plain model that
    computes what the LoRA model computed (to float rounding) at the base model's cost."""
    for lora in lora_layers(model).values():
        lora.base.weight += lora.delta_weight().to(lora.base.weight.dtype)
    return remove_lora(model)


@contextmanager
def lora_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block the model computes as the base model (the adapter switched off)."""
    layers = list(lora_layers(model).values())
    before = [m.enabled for m in layers]
    for m in layers:
        m.enabled = False
    try:
        yield model
    finally:
        for m, was in zip(layers, before, strict=True):
            m.enabled = was


def apply_adapter(model: nn.Module, folder: str | Path) -> dict:
    """Load the adapter in ``folder`` and merge it: from now on ``model`` computes as the
    fine-tuned model, at the base model's cost per token. Returns the adapter's config.

    The one place the ``--adapter DIR`` flag of the ``llmlab`` commands goes through.
    """
    config = read_adapter_config(folder)
    load_adapter(model, folder)
    merge_lora(model)
    return config


@contextmanager
def using_adapter(model: nn.Module, folder: str | Path) -> Iterator[nn.Module]:
    """Inside the block the model carries the adapter saved in ``folder``; after it, it is the
    base model again. ``with using_adapter(lm.model, folder): generate_batch(lm, prompts)``."""
    load_adapter(model, folder)
    try:
        yield model
    finally:
        remove_lora(model)


def _settings(model: nn.Module) -> dict:
    layers = lora_layers(model)
    if not layers:
        raise ValueError("This model has no LoRA layers: call add_lora(model) first.")
    ranks = {(m.r, m.alpha) for m in layers.values()}
    if len(ranks) != 1:
        raise ValueError(f"save_adapter needs one rank and alpha for every layer, got {ranks}.")
    (r, alpha), blocks = ranks.pop(), {_block(n) for n in layers}
    return {
        "r": r,
        "lora_alpha": alpha,
        "target_modules": sorted({n.rsplit(".", 1)[-1] for n in layers}),
        "layers_to_transform": None if None in blocks else sorted(blocks),
    }


def save_adapter(model: nn.Module, folder: str | Path, base_model_name: str) -> Path:
    """Write the adapter in peft's format: ``adapter_config.json`` + ``adapter_model.safetensors``.

    Written to a temporary folder and renamed when complete. Returns the folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    settings = _settings(model)
    n_blocks = len(getattr(getattr(model, "model", model), "layers", []))
    if (
        settings["layers_to_transform"] is not None
        and n_blocks
        and (settings["layers_to_transform"] == list(range(n_blocks)))
    ):
        settings["layers_to_transform"] = None  # every block: say "all", as peft does
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name,
        **settings,
        "layers_pattern": None,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "inference_mode": True,
    }
    tensors = {
        f"{PEFT_PREFIX}{name}.{part}.weight": getattr(m, part).weight.detach().contiguous()
        for name, m in lora_layers(model).items()
        for part in ("lora_A", "lora_B")
    }
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
    (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if folder.exists():
        for f in (CONFIG_FILE, WEIGHTS_FILE):
            os.replace(tmp / f, folder / f)
        tmp.rmdir()
    else:
        os.replace(tmp, folder)
    return folder


def read_adapter_config(folder: str | Path) -> dict:
    """The adapter's ``adapter_config.json``, or a ``ValueError`` saying what is wrong with it."""
    folder = Path(folder)
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise ValueError(
            f"{folder} is not an adapter folder: it needs {CONFIG_FILE} and {WEIGHTS_FILE} "
            "(what `llmlab tune ... --out DIR` and peft's save_pretrained write)."
        )
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    unsupported = [
        key
        for key, plain in (
            ("use_dora", False),
            ("use_rslora", False),
            ("fan_in_fan_out", False),
            ("bias", "none"),
            ("modules_to_save", None),
            ("rank_pattern", {}),
            ("alpha_pattern", {}),
        )
        if config.get(key) not in (plain, None)
    ]
    if config.get("peft_type") != "LORA" or unsupported:
        raise ValueError(
            f"{folder} holds a {config.get('peft_type')} adapter with {unsupported or 'settings'} "
            "that llmlab's LoRA does not implement: load it with peft.PeftModel.from_pretrained."
        )
    targets = config.get("target_modules")
    if isinstance(targets, str):
        raise ValueError(f"{folder}: target_modules as a regex ({targets!r}) is not supported.")
    return config


def load_adapter(model: nn.Module, folder: str | Path) -> list[LoRALinear]:
    """Wrap ``model`` with the adapter saved in ``folder`` (ours or peft's); returns its layers.

    The model must be the adapter's base model: a tensor of the wrong shape or a missing layer
    raises a ``ValueError`` that says so. ``merge_lora(model)`` afterwards makes it a plain model.
    """
    from safetensors.torch import load_file

    config = read_adapter_config(folder)
    tensors = load_file(str(Path(folder) / WEIGHTS_FILE))
    tensors = {k.removeprefix(PEFT_PREFIX).replace(".default.", "."): v for k, v in tensors.items()}
    layers = config.get("layers_to_transform")
    layers = [layers] if isinstance(layers, int) else layers
    wrapped = add_lora(
        model,
        r=int(config["r"]),
        alpha=config["lora_alpha"],
        targets=tuple(config["target_modules"]),
        layers=layers,
    )
    names = lora_layers(model)
    expected = {f"{n}.{p}.weight" for n in names for p in ("lora_A", "lora_B")}
    if set(tensors) != expected:
        remove_lora(model)
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ValueError(
            f"The adapter in {folder} does not fit this model (missing {missing[:2]}, "
            f"unexpected {extra[:2]}): was it trained on {config.get('base_model_name_or_path')}?"
        )
    with torch.no_grad():
        for name, m in names.items():
            for part in ("lora_A", "lora_B"):
                weight, saved = getattr(m, part).weight, tensors[f"{name}.{part}.weight"]
                if weight.shape != saved.shape:
                    remove_lora(model)
                    raise ValueError(
                        f"The adapter in {folder} does not fit this model: {name}.{part} is "
                        f"{tuple(saved.shape)}, the model needs {tuple(weight.shape)}."
                    )
                weight.copy_(saved)
    return wrapped
