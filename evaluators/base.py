"""The Metric record and the `metrics` registry. A metric is a pure function over aligned lists.

Each metric declares what its readers need, so nothing elsewhere lists metrics by name: which way is
better (ranking, verdicts, the recommendation), its unit, and its paired test ("mcnemar" for a mean of
0/1 item scores, "bootstrap" otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from contracts.records import MetricFacts
from contracts.registry import Registry

PairedTest = Literal["mcnemar", "bootstrap"]


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
    paired_test: PairedTest = "bootstrap"
    """"mcnemar": every item scores 0 or 1 (a proportion: McNemar, Wilson intervals; needs `per_item`);
    "bootstrap" otherwise."""

    def signed(self, value: float) -> float:
        """`value` oriented so that larger is always better: the key to rank trials by."""
        return value if self.higher_is_better else -value

    def facts(self) -> MetricFacts:
        return MetricFacts(display_name=self.display_name, higher_is_better=self.higher_is_better, unit=self.unit,
                           paired_test=self.paired_test)


class MetricRegistry(Registry[Metric]):
    def add(self, name: str, display_name: str, tasks: tuple[str, ...], *, higher_is_better: bool = True, unit: str = "%"):
        """Decorator: register a scoring function as a Metric under `name` (paired test: bootstrap)."""

        def wrap(fn):
            self.register(name)(Metric(name, display_name, fn, tasks, higher_is_better, unit))
            return fn

        return wrap

    def add_mean(self, name: str, display_name: str, tasks: tuple[str, ...], *, higher_is_better: bool = True, unit: str = "%",
                 paired_test: PairedTest = "bootstrap"):
        """Decorator: register a per-item scoring function (prediction, reference) -> float as the Metric
        `name`, whose value is the mean over items; paired_test="mcnemar" when every item scores 0 or 1."""

        def wrap(per_item):
            def fn(preds: list[str], refs: list[str]) -> float:
                return sum(per_item(p, r) for p, r in zip(preds, refs)) / len(refs) if refs else 0.0

            self.register(name)(Metric(name, display_name, fn, tasks, higher_is_better, unit, per_item, paired_test))
            return per_item

        return wrap

    def for_task(self, task_type: str) -> list[str]:
        return [name for name, m in self.items() if task_type in m.tasks]

    def facts(self) -> dict[str, MetricFacts]:
        """What every registered metric declares, as results.json carries it for the reports."""
        return {name: m.facts() for name, m in self.items()}


metrics = MetricRegistry("metric")
