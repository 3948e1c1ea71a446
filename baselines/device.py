"""Where a trial runs and in what precision: pure functions of the device's capabilities, plus one probe.

Why pure functions: the choices made here (dtype, mixed precision, optimizer, gradient checkpointing,
answering batch size) must be testable on a machine without a GPU, and the plan must be able to hash
them for a GPU it cannot see (`advisor compare --dry-run --device cuda`). Only `probe`, `free_bytes`
and `library_versions` look at the machine.

Rules (the simplest standard choice for each):
- bf16 only where the GPU computes it natively (compute capability 8.0+, Ampere and later);
  torch.cuda.is_bf16_supported also says yes where bf16 is emulated (T4, V100), which is slow.
  Older GPUs get fp16 with autocast and a GradScaler; the CPU keeps fp32 (its half precision is slow).
- Devices are compared by `torch.device(x).type`, never as strings, and the index is kept: "cuda:1"
  is a GPU, and it is the one used.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass

NATIVE_BF16 = (8, 0)
"""First compute capability with bf16 tensor cores (Ampere); a GPU planned without one is assumed to have it."""
CPU_ANSWER_BATCH = 8
"""Prompts per answering batch on the CPU (what every trial used before batches were sized to the GPU)."""
MOST_ANSWER_BATCH = 64
GPU_MEMORY_SHARE = 0.5
"""Share of the GPU's free memory an answering batch may plan to use (the rest: allocator slack, spikes)."""
ADAMW = "torch AdamW"
PAGED_ADAMW_8BIT = "bitsandbytes PagedAdamW8bit"
LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "sentence-transformers", "lm_eval")


class DeviceError(RuntimeError):
    """A device was asked for that this machine does not have."""


def device_type(device) -> str:
    """'cpu', 'cuda', ... for a device string or torch.device ('cuda:1' -> 'cuda'). Plain 'cpu' and 'cuda[:N]'
    are read without importing torch (so `advisor validate` stays fast); anything else is torch's to parse."""
    if isinstance(device, str) and re.fullmatch(r"(cpu|cuda)(:\d+)?", device):
        return device.split(":")[0]
    import torch

    return torch.device(device).type


@dataclass(frozen=True)
class DeviceInfo:
    """The device a run uses: as named (index kept), and the GPU's name, compute capability and memory."""

    device: str
    name: str | None = None
    capability: tuple[int, int] | None = None
    memory_gb: float | None = None

    @property
    def type(self) -> str:
        return device_type(self.device)

    @property
    def precision(self) -> str:
        return precision(self.type, self.capability)

    def as_plan(self) -> dict:
        """What the trial hash depends on: the kind of device, not its index (cuda:0 and cuda:1 share results)."""
        cap = ".".join(map(str, self.capability)) if self.capability else None
        return {"device": self.type, "gpu": self.name, "capability": cap, "precision": self.precision,
                "optimizers": {"quantized": optimizer_name(True, self.type), "other": optimizer_name(False, self.type)}}

    def as_resources(self) -> dict:
        """The record's hardware fields: device type, and on a GPU its name and memory (they price the trial)."""
        out = {"device": self.type, "precision": self.precision}
        if self.name:
            out.update(gpu=self.name, gpu_memory_gb=self.memory_gb)
        return out


def precision(kind: str, capability: tuple[int, int] | None) -> str:
    """'bf16' on GPUs with native bf16, 'fp16' on older GPUs, 'fp32' on the CPU."""
    if kind != "cuda":
        return "fp32"
    return "bf16" if tuple(capability or NATIVE_BF16) >= NATIVE_BF16 else "fp16"


def torch_dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def optimizer_name(quantized: bool, kind: str) -> str:
    """bitsandbytes' paged 8-bit AdamW for a 4-bit model on CUDA (spills to host instead of OOM); torch AdamW otherwise."""
    return PAGED_ADAMW_8BIT if quantized and kind == "cuda" else ADAMW


def gradient_checkpointing(setting: bool | None, adapters: bool, kind: str) -> bool:
    """The setting when given; by default on for adapter methods (LoRA, QLoRA) on CUDA, where activations
    dominate memory (QLoRA on an 8B model at 8 x 256 tokens: ~27.5 GiB without it), off elsewhere."""
    return setting if setting is not None else adapters and kind == "cuda"


def resolve_device(choice: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; any other device name is kept as given."""
    if choice != "auto":
        device_type(choice)  # a name torch does not know fails here, with torch's own message
        return choice
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def probe(device: str) -> DeviceInfo:
    """The device's name, compute capability and total memory (GiB); a GPU torch cannot see is an error."""
    if device_type(device) != "cuda":
        return DeviceInfo(device)
    import torch

    if not torch.cuda.is_available():
        raise DeviceError(f"device '{device}' was asked for, but torch sees no CUDA GPU "
                           f"(torch {torch.__version__}; a CPU-only build has '+cpu' in its version)")
    props = torch.cuda.get_device_properties(torch.device(device))
    return DeviceInfo(device, props.name, (props.major, props.minor), round(props.total_memory / 2**30, 2))


def planned(device: str) -> DeviceInfo:
    """The device as the plan sees it: probed when it is here; a GPU this machine lacks is planned as a
    modern one (native bf16) whose name is unknown, so `--dry-run --device cuda` works anywhere."""
    import torch

    if device_type(device) == "cuda" and not torch.cuda.is_available():
        return DeviceInfo(device)
    return probe(device)


def free_bytes(device) -> int | None:
    """Free memory on a GPU (torch.cuda.mem_get_info); None on the CPU."""
    import torch

    if device_type(device) != "cuda":
        return None
    return torch.cuda.mem_get_info(torch.device(device))[0]


def sequence_bytes(config, tokens: int, copies: int, dtype_bytes: int) -> int:
    """Memory one prompt needs while answering: its key/value cache (`copies` times: label scoring repeats
    it once per label), one layer's transient activations, and the fp32 next-token logits."""
    hidden = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    ffn = getattr(config, "intermediate_size", None) or 4 * hidden
    kv = 2 * config.num_hidden_layers * kv_heads * head_dim * tokens * dtype_bytes * copies
    return kv + tokens * (4 * hidden + 3 * ffn) * dtype_bytes + 2 * 4 * config.vocab_size


def answer_batch_size(kind: str, free: int | None, per_sequence: int) -> int:
    """CPU: 8 prompts; GPU: as many as fit in half the free memory, between 1 and 64."""
    if kind != "cuda" or free is None:
        return CPU_ANSWER_BATCH
    return max(1, min(MOST_ANSWER_BATCH, int(free * GPU_MEMORY_SHARE) // max(per_sequence, 1)))


def library_versions() -> dict[str, str | None]:
    """Versions of the libraries whose numerics or kernels a result depends on (read without importing them)."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out
