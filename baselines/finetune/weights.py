"""Counting a model's parameters and the bytes its weights hold, 4-bit layers included.

Why not `numel() * element_size()` alone: a bitsandbytes 4-bit weight is stored as packed uint8
(two values per byte) plus its quantization constants, so `numel()` is half the logical parameter
count and the constants would be missed. These helpers count both honestly, which is what makes
QLoRA's `weights_mb` comparable with LoRA's.
"""

from __future__ import annotations

import math
from pathlib import Path


def _quant_state(p):
    return getattr(p, "quant_state", None) if type(p).__name__ == "Params4bit" else None


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) logical parameters; a 4-bit weight counts as its unquantized shape."""
    trainable = total = 0
    for p in model.parameters():
        qs = _quant_state(p)
        n = math.prod(qs.shape) if qs is not None else p.numel()
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total


def weights_mb(model) -> float:
    """Memory held by parameters and buffers as loaded, in MiB (4-bit: packed bytes + constants)."""
    import torch

    size = 0
    for p in model.parameters():
        size += p.numel() * p.element_size()
        if (qs := _quant_state(p)) is not None:
            size += sum(t.numel() * t.element_size() for t in qs.as_dict(packed=True).values() if torch.is_tensor(t))
    size += sum(b.numel() * b.element_size() for b in model.buffers())
    return size / 2**20


def dominant_precision(model) -> str:
    """'bf16', 'fp16' or 'fp32': the floating-point dtype holding most of the parameters (4-bit weights,
    stored as integers, are left out), i.e. the precision the model mostly computes in."""
    import torch

    names = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
    counts: dict[str, int] = {}
    for p in model.parameters():
        if p.dtype in names:
            counts[names[p.dtype]] = counts.get(names[p.dtype], 0) + p.numel()
    return max(counts, key=counts.get)


def dir_mb(folder: Path, pattern: str = "*") -> float:
    """Size on disk of the files matching `pattern` in `folder`, in MiB (0 when absent)."""
    return sum(f.stat().st_size for f in Path(folder).glob(pattern) if f.is_file()) / 2**20
