"""Expand a TaskSpec into Trials: one per strategy setting, each with a content hash of its inputs.

The hash includes the device the plan is for (its type, the GPU's name, the precision and optimizers
it implies) and the versions of the numerical libraries, so a GPU run never reuses CPU trials (their
speeds and prices) and an upgrade of torch or transformers measures again. The device index is left
out: cuda:0 and cuda:1 of one machine share results.

It also includes a fingerprint of the code that measures a trial (`code_fingerprint`), not only
advisor's version: a run after any change to that code (an upgrade, a local edit) measures again
instead of reusing results the old code produced.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from advisor.matrix import per_model
from advisor.version import __version__
from contracts.records import Splits
from contracts.io import content_hash
from contracts.records import Trial
from advisor.yaml_errors import Problem, SpecError

if TYPE_CHECKING:
    from baselines.device import DeviceInfo


def _shared_inputs(spec, splits: Splits, device: DeviceInfo) -> dict:
    """What every trial's result depends on besides its own family and settings."""
    from baselines.device import library_versions
    from baselines.models import fingerprint

    return {
        "advisor": __version__,
        "code": code_fingerprint(),
        "model": fingerprint(spec.model),
        "data": splits.fingerprints,
        "fields": [spec.data.input, spec.data.target, spec.data.id],
        "test_limit": spec.data.test_limit,
        "task": spec.task.model_dump(),
        "labels": splits.labels,
        "metric": spec.headline_metric,
        "seed": spec.seed,
        "runtime": {**device.as_plan(), "versions": library_versions()},
    }


MEASURING_CODE = ("contracts", "evaluators", "baselines", "advisor.execute")
"""The packages (and the module) whose code produces a trial's record."""
CODE_ROOT = Path(__file__).resolve().parents[1]
"""The folder that holds advisor/ and the packages beside it. Not found through the import system: `contracts` is a
namespace package, which also gathers any other `contracts` folder on sys.path (tests/contracts under pytest), so
the fingerprint would hash other files and differ from the one a worker process computes."""


@functools.cache
def code_fingerprint() -> str:
    """sha256 over the source files (.py, and the prompt templates) of MEASURING_CODE, once per process."""
    digest = hashlib.sha256()
    for name in MEASURING_CODE:
        root = CODE_ROOT.joinpath(*name.split("."))
        root = root if root.is_dir() else root.with_suffix(".py")
        files = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".txt")) if root.is_dir() else [root]
        for path in files:
            digest.update(f"{path.relative_to(root.parent)}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _device(device: DeviceInfo | None) -> DeviceInfo:
    """None: the device a run would use here ('auto')."""
    from baselines.device import planned, resolve_device

    return device or planned(resolve_device("auto"))


def make_trial(spec, splits: Splits, family: str, name: str, settings: dict, device: DeviceInfo | None = None) -> Trial:
    """The Trial that `make_plan` makes for these settings (used to find another trial's folder)."""
    from baselines import strategies

    device = _device(device)
    return _trial(_shared_inputs(spec, splits, device), strategies.get(family), family, name, settings, device)


def _trial(shared: dict, cls, family: str, name: str, settings: dict, device: DeviceInfo) -> Trial:
    settings = cls.for_device(settings, device.type)  # e.g. gradient checkpointing on a GPU
    return Trial(name, family, settings, content_hash({**shared, "strategy": family, "settings": settings}), cls.simplicity_rank)


def make_plan(spec, splits: Splits, device: DeviceInfo | None = None) -> list[Trial]:
    """Trials in the order they should run (cheapest family first) on `device` (None: the one a run would
    use here). Raises SpecError on bad settings."""
    from baselines import strategies

    device = _device(device)
    shared = _shared_inputs(spec, splits, device)
    trials, problems = [], []
    for family, cls in strategies.items():
        options = getattr(spec.strategies, family)
        if options is None:
            continue
        try:
            expanded = cls.expand(options, spec)
        except ValueError as exc:
            problems.append(Problem(str(spec.source), None, f"strategies.{family}", str(exc)))
            continue
        expanded += curve_points(expanded, cls, spec.data.train_sizes, len(splits.train))
        trials += [_trial(shared, cls, family, name, settings, device) for name, settings in per_model(spec, cls, expanded)]
    names = [t.name for t in trials]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(str(spec.source), None, "strategies", f"two trials are both named '{dup}'"))
    if not trials and not problems:
        problems.append(Problem(str(spec.source), None, "strategies", "no strategy enabled: add e.g. 'prompting: {}'"))
    if problems:
        raise SpecError(problems)
    return sorted(trials, key=lambda t: t.simplicity_rank)


TRAIN_SIZE, AT_SIZE = "train_size", "@n="
"""A learning-curve point's setting (the size of its nested train subset) and its name's mark: lora-r16@n=50."""


def learns_from_train(cls, settings: dict) -> bool:
    """Trials whose quality depends on how many train examples there are: trained weights, or k-shot examples
    drawn from train. Retrieval trials are left out: their curve would be the curve of what they combine."""
    return not cls.retrieves and (cls.changes_weights or settings.get("shots", 0) > 0)


def resolve_sizes(sizes: list | None, n_train: int) -> list[int]:
    """data.train_sizes as example counts below the full train split (the full split is the trial itself)."""
    counts = {n_train if size == "all" else round(size * n_train) if isinstance(size, float) else size for size in sizes or ()}
    return sorted(n for n in counts if 0 < n < n_train)


def curve_points(expanded: list[tuple[str, dict]], cls, sizes: list | None, n_train: int) -> list[tuple[str, dict]]:
    """One extra trial per smaller train size for each trial that learns from train; the size is in its
    settings, so in its content hash."""
    return [(f"{name}{AT_SIZE}{n}", {**settings, TRAIN_SIZE: n}) for name, settings in expanded if learns_from_train(cls, settings)
            for n in resolve_sizes(sizes, n_train)]
