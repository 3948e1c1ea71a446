"""The layer sizes of a decoder-only transformer, from a parameter count ("8B") or a config.json.

Usage::

    shape = model_shape("65B")                  # LLaMA-65B's published sizes
    shape = model_shape("path/to/config.json")  # exact sizes of that model
    shape.params, shape.linears                 # parameter count; {name: (d_in, d_out)} of one layer

Every count the estimator needs (total parameters, 4-bit-quantizable parameters, LoRA parameters)
is derived from `linears`, the shapes of one layer's weight matrices, so they cannot disagree.

Known sizes use published architectures: SmolLM2-135M, Llama-3.2 1B/3B, LLaMA-1 7B/13B/33B/65B
(Touvron et al. 2023, Table 2), Llama-3 8B and Llama-2 70B (grouped-query attention, 8 KV heads),
GPT-3 175B (Brown et al. 2020, Table 2.1: 96 layers, d_model 12288, 96 heads, 4x MLP). Any other size
follows the fallback rule of `_fallback_shape`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


@dataclass(frozen=True)
class ModelShape:
    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    tied_embeddings: bool = False
    gated_mlp: bool = True
    """SwiGLU-style MLP (gate, up, down) as in Llama; False: GPT-style up/down."""

    @property
    def linears(self) -> dict[str, tuple[int, int]]:
        """(d_in, d_out) of each weight matrix of one layer, named as in transformers' Llama."""
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        mats = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h)}
        if self.gated_mlp:
            mats["gate_proj"] = (h, self.ffn)
        return {**mats, "up_proj": (h, self.ffn), "down_proj": (self.ffn, h)}

    @property
    def linear_params(self) -> int:
        """Parameters in the layers' linear weights: what QLoRA quantizes to 4 bits."""
        return self.layers * sum(d_in * d_out for d_in, d_out in self.linears.values())

    @property
    def embedding_params(self) -> int:
        """Input embedding plus the output head when it is not tied to it."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    @property
    def params(self) -> int:
        """All parameters: linears, embeddings and the norms (2 per layer + 1 final, biases ignored)."""
        return self.linear_params + self.embedding_params + (2 * self.layers + 1) * self.hidden

    @property
    def compute_params(self) -> int:
        """Parameters that cost matmul FLOPs per token: all but the input embedding (a table lookup)."""
        return self.linear_params + self.vocab * self.hidden

    def lora_params(self, rank: int, targets: tuple[str, ...] | None = None) -> int:
        """LoRA adds A (r x d_in) and B (d_out x r) to each adapted matrix: r * (d_in + d_out) parameters
        (Hu et al. 2021, §4.1). `targets=None` adapts every linear layer (peft's "all-linear", which
        leaves the output head alone); otherwise names such as ("q_proj", "v_proj") or ("q", "v")."""
        names = self._targets(targets)
        return self.layers * sum(rank * sum(self.linears[n]) for n in names)

    def lora_input_width(self, targets: tuple[str, ...] | None = None) -> int:
        """Sum of d_in over one layer's adapted matrices: the width of the inputs LoRA's dropout copies."""
        return sum(self.linears[n][0] for n in self._targets(targets))

    def _targets(self, targets: tuple[str, ...] | None) -> list[str]:
        if targets is None:
            return list(self.linears)
        names = [t if t in self.linears else f"{t}_proj" for t in targets]
        unknown = [t for t, n in zip(targets, names) if n not in self.linears]
        if unknown:
            raise ValueError(f"unknown LoRA target(s) {unknown}; this model has {', '.join(self.linears)}")
        return names


def _llama(name: str, hidden: int, layers: int, heads: int, ffn: int, vocab: int = 32000, kv_heads: int | None = None,
           tied: bool = False) -> ModelShape:
    return ModelShape(name, hidden, layers, heads, kv_heads or heads, hidden // heads, ffn, vocab, tied)


KNOWN_SHAPES: dict[str, ModelShape] = {
    "135M": _llama("SmolLM2-135M", 576, 30, 9, 1536, 49152, kv_heads=3, tied=True),
    "1B": _llama("Llama-3.2-1B", 2048, 16, 32, 8192, 128256, kv_heads=8, tied=True),
    "3B": _llama("Llama-3.2-3B", 3072, 28, 24, 8192, 128256, kv_heads=8, tied=True),
    "7B": _llama("LLaMA-7B", 4096, 32, 32, 11008),
    "8B": _llama("Llama-3-8B", 4096, 32, 32, 14336, 128256, kv_heads=8),
    "13B": _llama("LLaMA-13B", 5120, 40, 40, 13824),
    "33B": _llama("LLaMA-33B", 6656, 60, 52, 17920),
    "65B": _llama("LLaMA-65B", 8192, 80, 64, 22016),
    "70B": _llama("Llama-2-70B", 8192, 80, 64, 28672, kv_heads=8),
    "175B": ModelShape("GPT-3-175B", 12288, 96, 96, 96, 128, 4 * 12288, 50257, tied_embeddings=True, gated_mlp=False),
}
KNOWN_SHAPES["30B"] = KNOWN_SHAPES["33B"]  # LLaMA's "30B" is the 32.5B model


def parse_size(text: str) -> float:
    """'8B' -> 8e9, '135M' -> 1.35e8, '1.5b' -> 1.5e9; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMBT])\s*", text.upper())
    if not m:
        raise ValueError(f"'{text}' is neither a size like '8B' / '135M' nor an existing config.json")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _fallback_shape(params: float) -> ModelShape:
    """A Llama-like shape for a size without published sizes.

    Rule: per layer 12*h^2 parameters (attention 4h^2 + SwiGLU MLP with ffn = 8h/3, i.e. 8h^2), a
    32,000-token untied vocabulary and LLaMA's aspect ratio h ~ 128 * layers (7B: 4096 / 32). Layers =
    round((N / (12 * 128^2))^(1/3)); h solves 12 * L * h^2 + 2 * V * h = N, rounded to a multiple of 64;
    heads of 64 (h < 1024) or 128 dimensions; ffn = 8h/3 rounded up to a multiple of 256. The result
    is within ~5% of N; the estimate uses the shape's own count (`ModelShape.params`).
    """
    vocab = 32000
    layers = max(2, round((params / (12 * 128**2)) ** (1 / 3)))
    h = (-2 * vocab + math.sqrt(4 * vocab**2 + 48 * layers * params)) / (24 * layers)
    hidden = max(64, round(h / 64) * 64)
    head_dim = 64 if hidden < 1024 else 128
    hidden = max(head_dim, round(hidden / head_dim) * head_dim)
    ffn = math.ceil(8 * hidden / 3 / 256) * 256
    label = f"~{params / 1e9:g}B (Llama-like)" if params >= 1e9 else f"~{params / 1e6:g}M (Llama-like)"
    return _llama(label, hidden, layers, hidden // head_dim, ffn, vocab)


_NOT_GATED = {"gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "gpt_bigcode", "phi"}


def shape_from_config(path: Path) -> ModelShape:
    """Exact sizes from a transformers config.json (Llama-style keys, GPT-2 style keys as a fallback)."""
    cfg = json.loads(Path(path).read_text())
    cfg = {**cfg.get("text_config", {}), **cfg} if "hidden_size" not in cfg and "text_config" in cfg else cfg

    def key(*names: str, default=None):
        for n in names:
            if cfg.get(n) is not None:
                return cfg[n]
        if default is None:
            raise ValueError(f"{path}: none of {names} in the config; cannot tell the model's layer sizes")
        return default

    hidden = key("hidden_size", "n_embd", "d_model")
    heads = key("num_attention_heads", "n_head")
    model_type = cfg.get("model_type", "")
    return ModelShape(
        name=cfg.get("_name_or_path") or Path(path).parent.name,
        hidden=hidden, layers=key("num_hidden_layers", "n_layer"), heads=heads,
        kv_heads=key("num_key_value_heads", default=heads), head_dim=key("head_dim", default=hidden // heads),
        ffn=key("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden), vocab=key("vocab_size"),
        tied_embeddings=bool(cfg.get("tie_word_embeddings", model_type in ("gpt2", "opt"))),
        gated_mlp=model_type not in _NOT_GATED,
    )


def model_shape(size_or_config: str | Path) -> ModelShape:
    """A config.json path (or a folder holding one) gives exact sizes; a size such as '8B' a known or fallback shape."""
    path = Path(size_or_config)
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return shape_from_config(path)
    label = str(size_or_config).strip().upper()
    if label in KNOWN_SHAPES:
        return KNOWN_SHAPES[label]
    return _fallback_shape(parse_size(str(size_or_config)))
