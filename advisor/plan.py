"""Expand a TaskSpec into Trials: one per strategy setting, each with a content hash of its inputs."""

from __future__ import annotations

import hashlib
import json

from advisor import __version__
from advisor.data import Splits
from advisor.results import Trial
from advisor.yaml_errors import Problem, SpecError


def content_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def make_plan(spec, splits: Splits) -> list[Trial]:
    """Trials in the order they should run (cheapest family first). Raises SpecError on bad settings."""
    from baselines import strategies
    from baselines.models import fingerprint

    shared = {
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
        for name, settings in expanded:
            digest = content_hash({**shared, "strategy": family, "settings": settings})
            trials.append(Trial(name, family, settings, digest, cls.cost_rank))
    names = [t.name for t in trials]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(str(spec.source), None, "strategies", f"two trials are both named '{dup}'"))
    if not trials and not problems:
        problems.append(Problem(str(spec.source), None, "strategies", "no strategy enabled: add e.g. 'prompting: {}'"))
    if problems:
        raise SpecError(problems)
    return sorted(trials, key=lambda t: t.cost_rank)
