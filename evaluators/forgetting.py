"""Catastrophic forgetting: general benchmarks through lm-eval, on the base model and on adapted ones.

The harness itself does the scoring (`HFLM(pretrained=<in-memory model>)` + `simple_evaluate`), so the
numbers equal what its CLI gives for the same model, task config and limit. Per-item correctness is
kept (log_samples) so base and adapted models are compared on the same items: a paired bootstrap CI
of the difference and McNemar's exact test.

Strategies that do not change weights (prompting, RAG) have no forgetting by construction; their
record says so instead of spending time measuring it.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from contextlib import contextmanager, redirect_stderr
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.io import content_hash, read_json, write_json
from evaluators.general_benchmarks import benchmarks, data_dir, lm_eval_name, task_dir
from evaluators.statistics import mcnemar_p, paired_bootstrap_ci

NOT_APPLICABLE = {"applies": False, "reason": "weights unchanged: forgetting is zero by construction"}


_BAR = re.compile(r"\r|\d+/\d+ \[[^\]]*(it/s|s/it)\]")


@contextmanager
def _without_progress_bars():
    """lm-eval draws tqdm bars with an explicit disable=False (TQDM_DISABLE cannot turn them off), which
    would garble advisor's own progress display: its stderr is held back and passed on without them."""
    held = io.StringIO()
    try:
        with redirect_stderr(held):
            yield
    finally:
        kept = [line for line in held.getvalue().splitlines() if line.strip() and not _BAR.search(line)]
        if kept:
            print("\n".join(kept), file=sys.stderr)


def lm_eval_scores(model, tokenizer, names: list[str], limit: int, include: Path | None, batch_size: int = 8) -> dict:
    """{benchmark: {"acc": float, "acc_norm": float, "items": [0/1 per item in doc order]}} via lm-eval."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    local_only = all(n in benchmarks for n in names)
    manager = TaskManager(include_path=str(include) if include else None, include_defaults=not local_only)
    tasks = {lm_eval_name(n): n for n in names}
    with _without_progress_bars():
        out = simple_evaluate(model=HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size), tasks=list(tasks),
                              limit=limit, task_manager=manager, log_samples=True, bootstrap_iters=0, random_seed=0,
                              numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0)
    scores = {}
    for task, name in tasks.items():
        metrics = out["results"][task]
        samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
        scores[name] = {"acc": metrics["acc,none"], "acc_norm": metrics.get("acc_norm,none"),
                        "items": [int(s["acc"]) for s in samples], "n": len(samples)}
    return scores


def _prepare(spec, cache: Path) -> tuple[list[str], Path | None]:
    names = spec.forgetting.benchmarks
    local = [n for n in names if n in benchmarks]
    source = data_dir(spec.resolve(spec.forgetting.data_dir) if spec.forgetting.data_dir else None)
    if local and source is None:
        raise FileNotFoundError("forgetting benchmarks need their data: set forgetting.data_dir or ADVISOR_BENCHMARK_DATA")
    return names, (task_dir(local, source, cache) if local else None)


@dataclass(frozen=True)
class BaseModelRef:
    """The unadapted model, as the caller knows it: a fingerprint for the cache key and a loader."""

    fingerprint: str
    load: Callable[[], tuple[Any, Any]]
    """() -> (model, tokenizer); called only when the base scores are not stored yet."""


def base_scores(spec, run_root: Path, cache: Path, base: BaseModelRef) -> dict:
    """The base model's scores, computed once per run (get-or-compute keyed by a content hash)."""
    names, include = _prepare(spec, cache)
    key = content_hash({"model": base.fingerprint, "benchmarks": names, "limit": spec.forgetting.limit,
                        "tasks": str(include)})
    path = run_root / "forgetting" / f"base-{key[:12]}.json"
    if (stored := read_json(path)) is not None:
        return stored
    model, tokenizer = base.load()
    scores = lm_eval_scores(model, tokenizer, names, spec.forgetting.limit, include)
    write_json(path, {"model": spec.model, "task_dir": str(include), "limit": spec.forgetting.limit, "scores": scores})
    return read_json(path)


def covers(forgetting: dict | None, spec) -> bool:
    """Whether a stored forgetting record was measured on the benchmarks and limit the spec asks for."""
    done = forgetting or {}
    return set(done.get("benchmarks") or ()) == set(spec.forgetting.benchmarks) and done.get("limit") == spec.forgetting.limit


def forgetting_record(spec, adapted, run_root: Path, cache: Path, base: BaseModelRef) -> dict:
    """Per benchmark: base score, adapted score, delta (points) with a paired 95% CI and McNemar p."""
    if adapted is None:
        return NOT_APPLICABLE
    base = base_scores(spec, run_root, cache, base)
    names, include = _prepare(spec, cache)
    model, tokenizer = adapted
    model.eval()
    scores = lm_eval_scores(model, tokenizer, names, spec.forgetting.limit, include)
    per_benchmark = {}
    for name in names:
        b, a = base["scores"][name]["items"], scores[name]["items"]
        lo, hi = paired_bootstrap_ci(a, b, seed=spec.seed)
        per_benchmark[name] = {
            "base": base["scores"][name]["acc"], "adapted": scores[name]["acc"],
            "delta": scores[name]["acc"] - base["scores"][name]["acc"], "delta_ci95": [lo, hi],
            "mcnemar_p": mcnemar_p(a, b), "n": len(a),
        }
    return {"applies": True, "limit": spec.forgetting.limit, "task_dir": str(include), "benchmarks": per_benchmark,
            "mean_delta": sum(v["delta"] for v in per_benchmark.values()) / len(per_benchmark) if per_benchmark else 0.0}
