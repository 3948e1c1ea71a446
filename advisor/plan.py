"""Expand a TaskSpec into Trials: one per strategy setting, each with a content hash of its inputs."""

from __future__ import annotations

from advisor.version import __version__
from contracts.records import Splits
from contracts.io import content_hash
from contracts.records import Trial
from advisor.yaml_errors import Problem, SpecError


def _shared_inputs(spec, splits: Splits) -> dict:
    """What every trial's result depends on besides its own family and settings."""
    from baselines.models import fingerprint

    return {
        "advisor": __version__,
        "model": fingerprint(spec.model),
        "data": splits.fingerprints,
        "fields": [spec.data.input, spec.data.target, spec.data.id],
        "test_limit": spec.data.test_limit,
        "task": spec.task.model_dump(),
        "labels": splits.labels,
        "metric": spec.headline_metric,
        "seed": spec.seed,
    }


def make_trial(spec, splits: Splits, family: str, name: str, settings: dict) -> Trial:
    """The Trial that `make_plan` makes for these settings (used to find another trial's folder)."""
    from baselines import strategies

    return _trial(_shared_inputs(spec, splits), family, name, settings, strategies.get(family).simplicity_rank)


def _trial(shared: dict, family: str, name: str, settings: dict, simplicity_rank: int) -> Trial:
    return Trial(name, family, settings, content_hash({**shared, "strategy": family, "settings": settings}), simplicity_rank)


def make_plan(spec, splits: Splits) -> list[Trial]:
    """Trials in the order they should run (cheapest family first). Raises SpecError on bad settings."""
    from baselines import strategies

    shared = _shared_inputs(spec, splits)
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
        trials += [_trial(shared, family, name, settings, cls.simplicity_rank) for name, settings in expanded]
    names = [t.name for t in trials]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(str(spec.source), None, "strategies", f"two trials are both named '{dup}'"))
    if not trials and not problems:
        problems.append(Problem(str(spec.source), None, "strategies", "no strategy enabled: add e.g. 'prompting: {}'"))
    if problems:
        raise SpecError(problems)
    return sorted(trials, key=lambda t: t.simplicity_rank)
