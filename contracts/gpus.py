"""A table of common GPUs for `advisor estimate`: memory, dense bf16 throughput, bandwidth, $/hour.

Usage::

    gpu = find_gpu("a10g-24gb")                      # Gpu(memory_gb=22.49, tflops=70.0, ...)
    gpu = find_gpu("my-card", extra={"my-card": Gpu(memory_gb=32, tflops=100, bandwidth_gbs=900, usd_per_hour=1)})

Units. `memory_gb` is the total memory `nvidia-smi` reports, in GiB (2**30 bytes, the unit torch and
nvidia-smi use), so a "24 GB" A10G is 22.49 here: the marketing number is decimal or rounded.
`tflops` is the dense (no 2:4 sparsity) bf16 tensor-core peak from NVIDIA's data sheets (fp16 for the
T4, which has no bf16). `usd_per_hour` is a typical on-demand cloud price in 2024-25 rounded to
cents: prices vary by a factor of 2-3 between providers, so the task's `pricing.gpu_hour_usd` or the
CLI's price should replace it for a real budget. All figures are approximate and meant for
feasibility, not procurement.

Extending: task.yaml's `target.gpus` adds or overrides entries (see `advisor.spec.Target`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.registry import UnknownName, did_you_mean


class Gpu(BaseModel):
    """One accelerator model. Frozen: the table is shared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_gb: float = Field(gt=0, description="Memory per GPU in GiB (nvidia-smi total).")
    tflops: float = Field(gt=0, description="Dense bf16 (or fp16) tensor-core peak, TFLOP/s.")
    bandwidth_gbs: float = Field(gt=0, description="Memory bandwidth, GB/s (bounds decoding speed).")
    usd_per_hour: float = Field(ge=0, description="Typical on-demand price of one GPU for one hour.")


def _gpu(mib: float, tflops: float, bandwidth_gbs: float, usd_per_hour: float) -> Gpu:
    return Gpu(memory_gb=round(mib / 1024, 2), tflops=tflops, bandwidth_gbs=bandwidth_gbs, usd_per_hour=usd_per_hour)


GPUS: dict[str, Gpu] = {
    # name:          nvidia-smi MiB, dense bf16 TFLOP/s, GB/s, $/h
    "t4-16gb": _gpu(15360, 65, 320, 0.35),          # fp16 (Turing has no bf16)
    "l4-24gb": _gpu(23034, 121, 300, 0.80),
    "a10g-24gb": _gpu(23028, 70, 600, 1.01),        # AWS g5; the A10 data sheet's 125 is for the full A10
    "rtx4090-24gb": _gpu(24564, 165, 1008, 0.40),   # fp32 accumulate; community clouds
    "a6000-48gb": _gpu(49140, 155, 768, 0.80),      # RTX A6000 (Ampere)
    "l40s-48gb": _gpu(46068, 362, 864, 1.00),
    "a100-40gb": _gpu(40960, 312, 1555, 1.30),
    "a100-80gb": _gpu(81920, 312, 2039, 1.80),
    "h100-80gb": _gpu(81559, 989, 3350, 2.50),      # SXM
    "h200-141gb": _gpu(143771, 989, 4800, 3.50),
}


def gpu_table(extra: dict[str, Gpu] | None = None) -> dict[str, Gpu]:
    """The built-in table with `extra` entries added (an extra entry with a built-in name replaces it)."""
    return {**GPUS, **(extra or {})}


def find_gpu(name: str, extra: dict[str, Gpu] | None = None) -> Gpu:
    """The GPU called `name` (case-insensitive); UnknownName with a did-you-mean otherwise."""
    table = gpu_table(extra)
    key = name.strip().lower()
    matches = {k.lower(): v for k, v in table.items()}
    if key in matches:
        return matches[key]
    names = sorted(table)
    raise UnknownName(f"unknown GPU '{name}'.{did_you_mean(key, names)} Known: {', '.join(names)}")


def match_gpu(device_name: str | None, memory_gb: float | None, extra: dict[str, Gpu] | None = None) -> str | None:
    """The table's entry for a detected card (torch's device name, e.g. "NVIDIA A100-SXM4-80GB", and its
    memory in GiB), or None when it is not in the table. An entry matches when its model (the name before
    the size, "a100") appears in the device name with spaces and dashes removed and its memory is within
    10%; among several ("l4" is in "L40S"), the closest memory wins."""
    if not device_name or not memory_gb:
        return None
    squashed = device_name.lower().replace(" ", "").replace("-", "")
    found = [(abs(gpu.memory_gb - memory_gb), name) for name, gpu in gpu_table(extra).items()
             if name.lower().rsplit("-", 1)[0].replace("-", "") in squashed and abs(gpu.memory_gb - memory_gb) <= 0.1 * gpu.memory_gb]
    return min(found)[1] if found else None
