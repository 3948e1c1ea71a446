"""The Metric record and the `metrics` registry. A metric is a pure function over aligned lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contracts.registry import Registry


@dataclass(frozen=True)
class Metric:
    name: str
    display_name: str
    fn: Callable[[list[str], list[str]], float]
    """(predictions, references) -> score in [0, 1]."""
    tasks: tuple[str, ...]
    higher_is_better: bool = True
    unit: str = "%"
    per_item: Callable[[str, str], float] | None = None
    """Score of one (prediction, reference) pair, for metrics that are the mean of it: the bootstrap then
    resamples item scores (vectorised) instead of recomputing `fn` a thousand times."""


class MetricRegistry(Registry[Metric]):
    def add(self, name: str, display_name: str, tasks: tuple[str, ...]):
        """Decorator: register a scoring function as a Metric under `name`."""

        def wrap(fn):
            self.register(name)(Metric(name, display_name, fn, tasks))
            return fn

        return wrap

    def add_mean(self, name: str, display_name: str, tasks: tuple[str, ...]):
        """Decorator: register a per-item scoring function (prediction, reference) -> float as the Metric
        `name`, whose value is the mean over items."""

        def wrap(per_item):
            def fn(preds: list[str], refs: list[str]) -> float:
                return sum(per_item(p, r) for p, r in zip(preds, refs)) / len(refs) if refs else 0.0

            self.register(name)(Metric(name, display_name, fn, tasks, per_item=per_item))
            return per_item

        return wrap

    def for_task(self, task_type: str) -> list[str]:
        return [name for name, m in self.items() if task_type in m.tasks]


metrics = MetricRegistry("metric")
