"""Model checks. `check_model` (every validation): the model named in task.yaml can be loaded, found
without loading weights. The data checks that need a model, run by `compare` (and `validate --deep`):
near-duplicate leakage by embedding similarity, and inputs longer than the generator's context."""

from __future__ import annotations

import os
from pathlib import Path

from advisor.yaml_errors import Problem
from contracts.records import Splits
from contracts.registry import did_you_mean
from contracts.spec import EMBEDDED_MODEL


def check_model(name: str, file: str, line: int | None) -> list[Problem]:
    """The embedded model's package, a local folder with a config.json, or a hub id in the local Hugging
    Face cache; an uncached hub id is an error offline and a warning naming the download size online."""
    from baselines.models import embedded_gguf

    def problem(message: str, severity: str = "error") -> list[Problem]:
        return [Problem(file, line, "model", message, severity)]

    if name == EMBEDDED_MODEL:
        try:
            embedded_gguf()
        except (RuntimeError, StopIteration) as exc:
            return problem(str(exc) or "the embedded model's package holds no .gguf file; reinstall it")
        return []
    path = Path(name).expanduser()
    if path.is_dir():
        return [] if (path / "config.json").is_file() else problem(f"{path} holds no config.json: not a transformers model folder")
    if name.startswith((".", "/", "~")) or path.is_file() or name.count("/") > 1:
        return problem(f"model folder not found: {path.absolute()} (a local model is found from the current directory)")
    return _check_hub_id(name, problem)


def _offline() -> bool:
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _check_hub_id(name: str, problem) -> list[Problem]:
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    hint = did_you_mean(name, [EMBEDDED_MODEL])
    try:
        cached = try_to_load_from_cache(name, "config.json")
    except HFValidationError:
        return problem(f"'{name}' is not the embedded model ({EMBEDDED_MODEL}), an existing folder, or a hub id.{hint}")
    if isinstance(cached, str):
        return []
    if _offline():
        return problem(f"'{name}' is not in the local Hugging Face cache and the hub is off (HF_HUB_OFFLINE): download it "
                       f"first (huggingface-cli download {name}) or name a local folder.{hint}")
    try:
        info = HfApi().model_info(name, files_metadata=True, timeout=10)
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        return problem(f"'{name}' is not in the local cache and the hub refuses it ({type(exc).__name__}).{hint}")
    except Exception as exc:  # noqa: BLE001 - no network, proxy, DNS: all mean the run could not download it either
        return problem(f"'{name}' is not in the local Hugging Face cache and the hub cannot be reached "
                       f"({type(exc).__name__}).{hint}")
    files = info.siblings or []
    weights = [f.size or 0 for f in files if f.rfilename.endswith(".safetensors")] or \
        [f.size or 0 for f in files if f.rfilename.endswith(".bin")]
    return problem(f"'{name}' is not in the local Hugging Face cache: the run downloads it first "
                   f"({sum(weights) / 1e9:.1f} GB of weights)", "warning")


def near_duplicates(spec, splits: Splits) -> list[Problem]:
    """Test inputs whose embedding is within the threshold of a train input (paraphrase-level leakage)."""
    threshold = spec.data.near_duplicate_threshold
    if threshold is None or not splits.train or not splits.test:
        return []
    from contracts.spec import EMBEDDED_EMBEDDER
    from baselines.embedding import Embedder

    embedder = Embedder(EMBEDDED_EMBEDDER)
    similarity = embedder.embed([e.input for e in splits.test]) @ embedder.embed([e.input for e in splits.train]).T
    best = similarity.argmax(axis=1)
    hits = [(ex, splits.train[j], float(similarity[i, j])) for i, (ex, j) in enumerate(zip(splits.test, best))
            if similarity[i, j] >= threshold]
    if not hits:
        return []
    shown = "; ".join(f"test line {t.line} ~ train line {r.line} ({s:.2f})" for t, r, s in hits[:5])
    return [Problem(str(spec.resolve(spec.data.test)), None, spec.data.input,
                    f"{len(hits)} test input(s) are near-duplicates of train inputs (cosine >= {threshold}): {shown}"
                    + (" ..." if len(hits) > 5 else ""), "warning")]


def too_long(spec, splits: Splits, model_path: str) -> list[Problem]:
    """Inputs that alone exceed the model's context; the engine keeps their end (where the question is)."""
    import json
    from pathlib import Path

    from transformers import AutoTokenizer

    config = Path(model_path) / "config.json"
    context = json.loads(config.read_text()).get("max_position_embeddings") if config.exists() else None
    if not context:
        return []
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    problems = []
    for split in ("train", "test"):
        long = [ex for ex in getattr(splits, split) if len(tokenizer(ex.input, add_special_tokens=False).input_ids) > context]
        if long:
            problems.append(Problem(str(spec.resolve(getattr(spec.data, split))), None, spec.data.input,
                                    f"{len(long)} input(s) longer than the model's context of {context} tokens "
                                    f"(lines {', '.join(str(e.line) for e in long[:5])}); their start is cut to fit", "warning"))
    return problems


def model_checks(spec, splits: Splits, model_path: str) -> list[Problem]:
    """Leakage by embedding and over-long inputs; a failing check is a warning, never a stop."""
    found = []
    for check in (lambda: near_duplicates(spec, splits), lambda: too_long(spec, splits, model_path)):
        try:
            found += check()
        except Exception as exc:  # noqa: BLE001
            found.append(Problem(str(spec.source), None, "data", f"check skipped: {type(exc).__name__}: {exc}", "warning"))
    return found
