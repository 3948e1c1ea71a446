"""Feasibility estimator: memory, GPUs, speed and cost of full fine-tuning, LoRA, QLoRA and inference.

Usage::

    from advisor.estimate import Setup, estimate
    est = estimate("65B", "a6000-48gb", Setup(method="qlora", rank=16))
    est.fits, est.gpus_needed, est.memory_gb          # True, 1, {"weights": 32.1, ...}

Pure arithmetic (no torch): a model's layer sizes (`advisor.shapes`) and a GPU's figures
(`contracts.gpus`) in, GiB and hours out. Each term below names its source; the README section
"How `advisor estimate` computes" repeats them. N is the parameter count, A the LoRA parameter count,
s the sequence length, b the micro-batch, h the hidden size, L the layers, V the vocabulary.

Memory terms (bytes; GiB = 2**30 bytes in the output)
- weights: 2 bytes/param in bf16 (4 in fp32). QLoRA: the layers' linear weights in 4-bit NF4 with
  double quantization, 4 + 8/64 + 32/(64*256) = 4.127 bits/param (Dettmers et al. 2023, "QLoRA", §3
  Double Quantization); embeddings, output head and norms are not quantized (bitsandbytes quantizes
  nn.Linear layers only, and transformers keeps the output head unquantized), and peft's
  prepare_model_for_kbit_training casts them to fp32, 4 bytes (`kbit_fp32`; False: the weights' dtype).
- adapters: A = L * sum over adapted matrices of r * (d_in + d_out) (Hu et al. 2021, "LoRA", §4.1),
  every linear layer by default (peft's "all-linear"); kept in fp32, 4 bytes (peft casts adapters to
  fp32: `autocast_adapter_dtype=True`).
- gradients: full: one gradient per weight in the weights' dtype; LoRA/QLoRA: adapters only (4 bytes).
- optimizer: Adam's m and v, 8 bytes/param in fp32 ("adamw"), 4 in 16 bit, 2 for 8-bit Adam
  (Dettmers et al. 2022, "8-bit Optimizers via Block-wise Quantization"); full fine-tuning in mixed
  precision adds the fp32 master weights, 4 bytes: 2 + 2 + 12 = 16 bytes/param in all (Rajbhandari
  et al. 2020, "ZeRO", §3.1). Training fp32 weights under autocast (torch AMP, what advisor does) is
  the same 16 bytes, held as 4 (weights) + 4 (gradients) + 8 (Adam), with 16-bit activations. A paged optimizer (QLoRA) moves the same states, so it is not a saving
  here: it only lets spikes spill to host memory instead of failing.
- activations (training): Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
  Transformer Models", Eq. 1) store s*b*h*(34 + 5*a*s/h) bytes per layer at 16 bit. We drop the
  5*a*s^2*b attention-score part because transformers uses memory-efficient attention (SDPA / Flash),
  which never stores the s x s matrix (eager attention would add it). A SwiGLU MLP with ffn ~ 8h/3
  stores about as much as the paper's 4h GeLU MLP. With gradient checkpointing only each layer's
  input (2*s*b*h) is kept, plus one layer's full activations while it is recomputed (Chen et al. 2016,
  "Training Deep Nets with Sublinear Memory Cost"). The loss adds 12*s*b*V: fp32 logits, the saved
  log-softmax and the logits' gradient (transformers upcasts logits to fp32 for the loss). LoRA with
  dropout > 0 adds s*b*sum(d_in)*(bytes + 1) per layer: peft drops out each adapted matrix's input
  separately and autograd keeps every copy and its mask (benchmarks/activation_memory.py counts
  saved tensors on SmolLM2-135M, 8 x 109 tokens, fp32: dropout 0.05 adds 722 MB, this term 622 MB).
- activations (inference): one layer's transient during prefill, s*b*(4h + 3*ffn) values, plus the
  last position's fp32 logits.
- kv_cache (inference): 2 * L * kv_heads * head_dim * s * b * bytes (keys and values, every layer).
- overhead: 1 GiB per GPU for the CUDA context, cuBLAS workspaces and allocator fragmentation (an
  assumption; the CUDA context alone is 0.3-0.5 GiB on recent GPUs).

GPUs needed: weights, adapters, gradients, optimizer states and the KV cache are assumed sharded
evenly over n GPUs (ZeRO-3 / FSDP for training, tensor parallelism for inference); activations and
the overhead are per GPU. n = ceil(sharded / (gpu memory - per-GPU terms)). The gather buffers of
ZeRO-3 (about two layers' weights) and communication buckets are not counted.

Speed: training costs 6*N FLOPs per token (2N forward + 4N backward, Kaplan et al. 2020, "Scaling
Laws", §2.1); LoRA and QLoRA 4*N, since the frozen weights need the input gradients (2N) but no
weight gradients (2N); gradient checkpointing adds one forward, +2N. N counts the parameters that
multiply (all but the input embedding); attention's s^2 FLOPs are ignored (small while s << 6h). At a
model FLOPs utilisation (MFU) of 0.4: PaLM trained at 46% (Chowdhery et al. 2022, Table 3), and
fine-tuning stacks usually reach 30-50%; QLoRA's dequantisation makes it slower than that. Inference
decodes one token per sequence per step, reading every weight and the KV cache once per step, so
tokens/s = min(compute bound MFU * peak / 2N, b * bandwidth / bytes read) (Pope et al. 2022,
"Efficiently Scaling Transformer Inference"). Throughput scales linearly with n (an upper bound).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from contracts.gpus import Gpu, find_gpu
from advisor.shapes import ModelShape, model_shape

GIB = 2**30
NF4_DQ_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # 4.127: QLoRA §3, NF4 + double-quantized constants
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
ADAM_STATE_BYTES = {"adamw": 8, "adamw-16bit": 4, "adamw-8bit": 2}
ADAPTER_BYTES = 4  # peft keeps LoRA weights in fp32
FLOPS_PER_PARAM = {"full": 6, "lora": 4, "qlora": 4, "inference": 2}
Method = Literal["full", "lora", "qlora", "inference"]
METHODS: tuple[str, ...] = ("full", "lora", "qlora", "inference")


@dataclass(frozen=True)
class Setup:
    """How the model is trained or served. Defaults: the QLoRA paper's memory setting (b=1, s=512)."""

    method: Method = "lora"
    seq_len: int = 512
    batch: int = 1
    rank: int = 16
    lora_targets: tuple[str, ...] | None = None
    """Adapted matrices, e.g. ("q_proj", "v_proj"); None: every linear layer."""
    lora_dropout: float = 0.05
    """peft applies it to each adapted matrix's input separately, and autograd keeps each copy."""
    gradient_checkpointing: bool = True
    optimizer: Literal["adamw", "adamw-16bit", "adamw-8bit"] = "adamw"
    master_weights: bool = True
    """Full fine-tuning in 16 bit keeps an fp32 copy of the weights (mixed precision)."""
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    autocast: Literal["bf16", "fp16"] | None = None
    """Activations' dtype when fp32 weights train under autocast (torch AMP); None: the weights' dtype."""
    kbit_fp32: bool = True
    """QLoRA: the weights left unquantized are cast to fp32 (peft's prepare_model_for_kbit_training)."""
    tokens: int | None = None
    """Tokens to process: training tokens per epoch, or tokens to generate for inference."""
    mfu: float = 0.4
    overhead_gb: float = 1.0
    usd_per_hour: float | None = None
    """Price of one GPU hour; None: the GPU table's typical price."""

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not '{self.method}'")
        if min(self.seq_len, self.batch, self.rank) < 1 or not 0 < self.mfu <= 1:
            raise ValueError("seq_len, batch and rank must be >= 1 and mfu in (0, 1]")

    @property
    def training(self) -> bool:
        return self.method != "inference"


def memory_terms(shape: ModelShape, setup: Setup) -> dict[str, float]:
    """Bytes per term (see the module docstring for each formula and its source)."""
    w = DTYPE_BYTES[setup.dtype]
    n = shape.params
    adapters = shape.lora_params(setup.rank, setup.lora_targets) if setup.method in ("lora", "qlora") else 0
    full = setup.method == "full"
    if setup.method == "qlora":
        weights = shape.linear_params * NF4_DQ_BITS / 8 + (n - shape.linear_params) * (4 if setup.kbit_fp32 else w)
    else:
        weights = n * w
    trainable = n if full else adapters
    master = 4 * n if full and setup.master_weights and w < 4 else 0
    s, b, h = setup.seq_len, setup.batch, shape.hidden
    a = DTYPE_BYTES[setup.autocast or setup.dtype]  # bytes per activation value
    if setup.training:
        per_layer = s * b * 34 * h * a / 2
        if adapters and setup.lora_dropout > 0:  # each adapted matrix's dropped-out input and its 1-byte mask
            per_layer += s * b * shape.lora_input_width(setup.lora_targets) * (a + 1)
        stored = shape.layers * 2 * s * b * h * a / 2 + per_layer if setup.gradient_checkpointing else shape.layers * per_layer
        activations = stored + 12 * s * b * shape.vocab
        kv_cache = 0
    else:
        activations = s * b * (4 * h + 3 * shape.ffn) * a + 4 * b * shape.vocab
        kv_cache = 2 * shape.layers * shape.kv_heads * shape.head_dim * s * b * a
    return {
        "weights": weights,
        "adapters": adapters * ADAPTER_BYTES,
        "gradients": n * w if full else adapters * ADAPTER_BYTES,
        "optimizer": trainable * ADAM_STATE_BYTES[setup.optimizer] + master if setup.training else 0,
        "activations": activations,
        "kv_cache": kv_cache,
    }


SHARDED = ("weights", "adapters", "gradients", "optimizer", "kv_cache")


@dataclass(frozen=True)
class Estimate:
    model: str
    params: int
    trainable_params: int
    gpu: str
    gpu_memory_gb: float
    setup: Setup
    memory_gb: dict[str, float]
    """Whole job, per term, in GiB; `overhead` is per GPU."""
    total_gb: float
    """Everything on one GPU (what must fit for `fits`)."""
    gpus_needed: int | None
    """GPUs with the sharded terms spread evenly; None: the per-GPU terms alone exceed one GPU."""
    per_gpu_gb: float | None
    tokens_per_s: float | None
    hours: float | None
    cost_usd: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.gpus_needed == 1

    def to_dict(self) -> dict:
        out = asdict(self)
        out["fits"] = self.fits
        return out


def estimate(model: str | Path | ModelShape, gpu_name: str, setup: Setup = Setup(), extra_gpus: dict[str, Gpu] | None = None) -> Estimate:
    """Memory per term, whether it fits one `gpu_name`, how many it needs, tokens/s, hours and cost."""
    shape = model if isinstance(model, ModelShape) else model_shape(model)
    gpu = find_gpu(gpu_name, extra_gpus)
    terms = memory_terms(shape, setup)
    sharded = sum(terms[k] for k in SHARDED) / GIB
    per_gpu = terms["activations"] / GIB + setup.overhead_gb
    room = gpu.memory_gb - per_gpu
    gpus = max(1, math.ceil(sharded / room - 1e-9)) if room > 0 else None
    memory_gb = {k: round(v / GIB, 2) for k, v in terms.items()} | {"overhead": setup.overhead_gb}
    tokens_per_s = _tokens_per_s(shape, setup, gpu, gpus, terms) if gpus else None
    hours = setup.tokens / tokens_per_s / 3600 if setup.tokens and tokens_per_s else None
    price = gpu.usd_per_hour if setup.usd_per_hour is None else setup.usd_per_hour
    notes = []
    if gpus is None:
        notes.append(f"activations at batch {setup.batch} x {setup.seq_len} tokens alone exceed one GPU: "
                     "lower the batch or sequence length, or turn on gradient checkpointing")
    elif gpus > 1:
        notes.append("assumes the model is sharded over the GPUs (ZeRO-3 / FSDP for training, tensor "
                     "parallelism for inference); sharding buffers are not counted")
    return Estimate(
        model=shape.name, params=shape.params,
        trainable_params=shape.params if setup.method == "full" else terms["adapters"] // ADAPTER_BYTES,
        gpu=gpu_name, gpu_memory_gb=gpu.memory_gb, setup=setup, memory_gb=memory_gb,
        total_gb=round(sharded + per_gpu, 2), gpus_needed=gpus,
        per_gpu_gb=round(sharded / gpus + per_gpu, 2) if gpus else None,
        tokens_per_s=round(tokens_per_s, 1) if tokens_per_s else None,
        hours=round(hours, 3) if hours else None,
        cost_usd=round(hours * gpus * price, 2) if hours else None, notes=notes,
    )


def _tokens_per_s(shape: ModelShape, setup: Setup, gpu: Gpu, gpus: int, terms: dict[str, float]) -> float:
    """Training: MFU * peak / (k*N) per GPU; inference: the lower of that and the bandwidth bound."""
    k = FLOPS_PER_PARAM[setup.method] + (2 if setup.training and setup.gradient_checkpointing else 0)
    compute_bound = setup.mfu * gpu.tflops * 1e12 / (k * shape.compute_params) * gpus
    if setup.training:
        return compute_bound
    bytes_per_step = terms["weights"] + terms["kv_cache"]
    return min(compute_bound, setup.batch * gpu.bandwidth_gbs * 1e9 * gpus / bytes_per_step)


def estimate_for_trial(model_config_path: str | Path, method: str, seq_len: int, batch: int, rank: int, *,
                       device_type: str = "cpu", precision: str = "bf16", gradient_checkpointing: bool = False,
                       lora_targets: tuple[str, ...] | None = None, lora_dropout: float = 0.05) -> dict:
    """The estimate for one trial as advisor runs it, to set against its measured training memory.

    Mirrors baselines/finetune: fp32 on the CPU; on CUDA weights in `precision` (bf16, or fp16 on GPUs
    without native bf16), except full fine-tuning (fp32 weights under autocast) and QLoRA (4-bit
    linears, the rest fp32); torch AdamW, but bitsandbytes' paged 8-bit AdamW for QLoRA on CUDA. The
    runtime overhead is left out (0). Like is compared with like (`comparable_mb`, `compare_with`): on
    CUDA the training peak of allocated memory, which includes the weights, against the whole estimate;
    on the CPU the RSS growth during training, which does not (the weights were loaded before the meter
    started, with the Python + torch runtime), against the estimate less its weights term.
    Returns MB (2**20 bytes) per term and in total.
    """
    cuda = device_type == "cuda"
    full = method == "full"
    setup = Setup(method=method, seq_len=seq_len, batch=batch, rank=rank, lora_targets=lora_targets, lora_dropout=lora_dropout,
                  gradient_checkpointing=gradient_checkpointing, dtype="fp32" if full or not cuda else precision,
                  autocast=precision if full and cuda else None, master_weights=False,
                  optimizer="adamw-8bit" if cuda and method == "qlora" else "adamw", overhead_gb=0.0)
    shape = model_shape(model_config_path)
    terms = {k: round(v / 2**20, 1) for k, v in memory_terms(shape, setup).items()}
    total = round(sum(terms.values()), 1)
    return {"model": shape.name, "method": method, "device": device_type, "dtype": setup.dtype, "autocast": setup.autocast,
            "optimizer": setup.optimizer, "estimated_mb": terms, "estimated_total_mb": total,
            "comparable_mb": total if cuda else round(total - terms["weights"], 1),
            "compare_with": "train_peak_cuda_mb" if cuda else "train_rss_delta_mb"}


def estimate_for_settings(model_config_path: str | Path, family: str, settings: dict, seq_len: int, device_type: str,
                          precision: str) -> dict:
    """`estimate_for_trial` for a trial's own settings (its family's option names); ValueError for a family the
    estimator does not model (only full, lora and qlora) or target modules the shape does not know."""
    return estimate_for_trial(model_config_path, family, max(seq_len, 1), settings.get("batch_size", 8), settings.get("r", 16),
                              device_type=device_type, precision=precision,
                              gradient_checkpointing=bool(settings.get("gradient_checkpointing")),
                              lora_targets=tuple(settings["target_modules"]) if settings.get("target_modules") else None,
                              lora_dropout=settings.get("dropout", 0.0))


def estimate_methods(model: str | Path, gpu_name: str, setup: Setup = Setup(),
                     extra_gpus: dict[str, Gpu] | None = None) -> dict[str, Estimate]:
    """The same setup for every method: the rows of the report's "at your target scale" section."""
    shape = model_shape(model)
    return {m: estimate(shape, gpu_name, replace(setup, method=m), extra_gpus) for m in METHODS}
