"""Quantisation: the same model stored and run with smaller numbers, and what that costs.

The bundled SmolLM2-135M ships as 4-bit GGUF (Q4_1: blocks of 32 weights share a scale and a
minimum) and LLM Lab dequantises it once to float32 (``llmlab.runtime.models``). This module
goes the other way, from that float32 copy:

- ``quantize(lm, "bfloat16")``: every weight as bfloat16 (float32's 8-bit exponent, 7-bit
  mantissa): half the bytes. Fast only on CPUs with bf16 instructions (``cpu_features()``:
  ``avx512_bf16`` or ``amx_bf16`` on x86, ``bf16`` on recent Arm); elsewhere the CPU converts.
- ``quantize(lm, "int8")``: PyTorch's *dynamic* int8 quantisation of the linear layers. Each
  weight row is stored as int8 with its own float scale (``w ~ scale * q``, ``q`` in -127..127);
  at run time each layer's **input** is rounded to 8 bits too, with ONE scale for the whole
  input tensor, and the product is computed in integers. The embedding and ``lm_head`` (tied to
  it: quantising it would add a second copy) stay float32. ``keep=("down_proj",)`` leaves the
  named layers in float32, e.g. the MLP's down projection, whose inputs carry a few huge
  activations (thousands, where the typical one is ~0.1): one scale for all of them rounds
  the typical ones to zero (``activation_range`` measures it).
- ``model_bytes(lm)``: bytes held by the weights (parameters, buffers and packed int8 weights,
  each shared tensor once): what quantising saves.
- ``cpu_features()``: which of the relevant instruction sets this CPU reports.

PyTorch 2.13 marks ``torch.ao.quantization`` deprecated (its successor is the separate
``torchao`` package); it still works. Its warnings are silenced at the call, as they say
nothing about this model. If a future torch removes it, ``quantize(lm, "int8")`` fails with
a message saying so.

Leaves out: 4-bit formats and weight-only int8 kernels (llama.cpp's Q8_0 / Q4_K keep a scale
per block of 32 numbers, activations included, which is why they keep the accuracy that
per-tensor int8 loses), static quantisation with calibration data, SmoothQuant/LLM.int8()
outlier handling beyond ``keep``, GPUs.
"""

from __future__ import annotations

import copy
import platform
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from llmlab.runtime.models import LM

KINDS = ("float32", "bfloat16", "int8")
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
ARM_FLAGS = ("asimddp", "i8mm", "bf16", "sve")  # Arm: int8 dot product, int8 matmul, bf16


def _model(lm_or_model: Any) -> Any:
    return getattr(lm_or_model, "model", lm_or_model)


def _lm_class() -> type:
    from llmlab.runtime.models import LM

    return LM


@contextmanager
def _quiet_quantization_warnings() -> Iterator[None]:
    # torch 2.13 warns on every use of torch.ao.quantization (deprecated in favour of torchao)
    # and on creating int8 tensors; neither says anything about this model, so a learner
    # should not see them in red. Only those two messages are silenced.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions")
        yield


def quantize(lm: LM, kind: str, keep: Sequence[str] = ()) -> LM:
    """A new ``LM`` with the same tokenizer and the weights in ``kind``; ``lm`` is not changed.

    ``kind``: "float32" (a plain copy), "bfloat16" or "int8" (see the module docstring).
    ``keep``: for "int8", names of linear layers left in float32, matched on the last part of
    the module name (``("down_proj",)`` keeps all 30 of them).

    >>> small = quantize(lm, "int8")
    >>> model_bytes(small) < model_bytes(lm)
    True
    """
    import torch

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    if isinstance(keep, str):
        raise TypeError(f"keep must be a list of layer names, e.g. ({keep!r},), not a string.")
    model = _model(lm)
    linear_names = {name.rsplit(".", 1)[-1] for name, m in _linears(model)}
    unknown = sorted(set(keep) - linear_names)
    if unknown:
        raise ValueError(
            f"keep names no linear layer of this model: {unknown}. "
            f"Its linear layers are called: {', '.join(sorted(linear_names))}."
        )
    if keep and kind != "int8":
        raise ValueError("keep only applies to kind='int8' (the other kinds change every layer).")
    if kind == "float32":
        new = copy.deepcopy(model)
    elif kind == "bfloat16":
        new = copy.deepcopy(model).to(torch.bfloat16)
    else:
        new = _dynamic_int8(model, set(keep))
    suffix = kind if not keep else f"{kind}, {'/'.join(keep)} kept float32"
    return _lm_class()(model=new.eval(), tokenizer=lm.tokenizer, name=f"{lm.name} ({suffix})")


def _linears(model: Any) -> list[tuple[str, Any]]:
    import torch

    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def _dynamic_int8(model: Any, keep: set[str]) -> Any:
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # removed in some future torch
        raise RuntimeError(
            "This torch has no torch.ao.quantization.quantize_dynamic (it was deprecated in "
            "favour of the torchao package). Use kind='bfloat16', or torch 2.13 as pinned."
        ) from exc
    tied = _tied_output_name(model)
    spec = {
        name: per_channel_dynamic_qconfig  # one scale per weight row (output channel)
        for name, _ in _linears(model)
        if name != tied and name.rsplit(".", 1)[-1] not in keep
    }
    with _quiet_quantization_warnings():
        return quantize_dynamic(model, spec, inplace=False)  # a quantised deep copy


def _tied_output_name(model: Any) -> str | None:
    """The output layer's module name when its weight is the embedding's (tied), else None."""
    get_out = getattr(model, "get_output_embeddings", None)
    get_in = getattr(model, "get_input_embeddings", None)
    if get_out is None or get_in is None or get_out() is None:
        return None
    out, emb = get_out(), get_in()
    if out.weight.data_ptr() != emb.weight.data_ptr():
        return None
    return next(name for name, m in model.named_modules() if m is out)


def weight_dtype(lm: LM) -> str:
    """How the linear layers' weights are stored: "float32", "bfloat16", "int8", or a mix."""
    kinds = set()
    for mod in _model(lm).modules():
        if _packed_weight(mod) is not None:
            kinds.add("int8")
        elif type(mod).__name__ == "Linear":
            kinds.add(str(mod.weight.dtype).replace("torch.", ""))
    return " + ".join(sorted(kinds))


def _packed_weight(mod: Any) -> torch.Tensor | None:
    """The int8 weight of a dynamically quantised linear layer (None for any other module)."""
    packed = getattr(mod, "_packed_params", None)
    if packed is None or not hasattr(packed, "_weight_bias"):
        return None
    return packed._weight_bias()[0]


def model_bytes(lm: LM | Any) -> int:
    """Bytes of the model's weights: parameters + buffers + packed int8 weights (with their
    per-row scales and zero points), a tensor shared by two modules (tied embeddings) once.

    SmolLM2-135M in float32: ``model_bytes(lm) -> 538060288`` (134.5M numbers x 4 bytes).
    """
    import torch

    model = _model(lm)
    seen: set[int] = set()
    total = 0
    for t in [*model.parameters(), *model.buffers()]:
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    for mod in model.modules():
        w = _packed_weight(mod)
        if w is None:
            continue
        total += w.numel() * w.element_size()  # (out, in) int8: 1 byte each
        if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            scales, zeros = w.q_per_channel_scales(), w.q_per_channel_zero_points()  # (out,)
            total += scales.numel() * scales.element_size() + zeros.numel() * zeros.element_size()
        bias = mod._packed_params._weight_bias()[1]
        if bias is not None:
            total += bias.numel() * bias.element_size()
    return total


def activation_range(lm: LM, text: str, layer: str = "down_proj") -> tuple[float, float]:
    """(largest, median) absolute value of the inputs that linear layers named ``layer`` see
    while the model reads ``text``: how far one int8 scale must stretch.

    With 8 bits and one scale per tensor, a step is at least ``largest / 127`` (PyTorch's x86
    kernels use 7 bits for inputs: twice that); inputs smaller than half a step become 0. SmolLM2's ``down_proj`` inputs: largest in the thousands, median ~0.06.
    """
    import torch

    model = _model(lm)
    targets = [m for name, m in _linears(model) if name.rsplit(".", 1)[-1] == layer]
    if not targets:
        raise ValueError(f"No linear layer named {layer!r} (try q_proj, up_proj, down_proj).")
    largest, medians = 0.0, []

    def hook(module: Any, inputs: tuple, output: Any) -> None:
        nonlocal largest
        x = inputs[0].detach().abs().float()  # (B, T, in_features)
        largest = max(largest, float(x.max()))
        medians.append(float(x.median()))

    handles = [m.register_forward_hook(hook) for m in targets]
    try:
        ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]  # (1, T)
        with torch.inference_mode():
            model(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    medians.sort()
    return largest, medians[len(medians) // 2]


def cpu_features() -> dict[str, bool]:
    """Which instruction sets that matter for int8/bf16 speed this CPU reports (Linux reads
    ``/proc/cpuinfo``; elsewhere an empty dict: unknown, not absent)."""
    info = Path("/proc/cpuinfo")
    if platform.system() != "Linux" or not info.is_file():
        return {}
    flags: set[str] = set()
    for line in info.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / Arm
            flags.update(value.split())
    names = ARM_FLAGS if platform.machine().lower() in ("aarch64", "arm64") else CPU_FLAGS
    return {name: name in flags for name in names}


def has_fast_bf16() -> bool:
    """True when the CPU reports bf16 arithmetic (x86 avx512_bf16 / amx_bf16, Arm bf16)."""
    f = cpu_features()
    return bool(f.get("avx512_bf16") or f.get("amx_bf16") or f.get("bf16"))
