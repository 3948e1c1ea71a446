"""The Metric record and the `metrics` registry. A metric is a pure function over aligned lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from advisor.registry import Registry


@dataclass(frozen=True)
class Metric:
    name: str
    display_name: str
    fn: Callable[[list[str], list[str]], float]
    """(predictions, references) -> score in [0, 1]."""
    tasks: tuple[str, ...]
    higher_is_better: bool = True
    unit: str = "%"


class MetricRegistry(Registry[Metric]):
    def add(self, name: str, display_name: str, tasks: tuple[str, ...]):
        """Decorator: register a scoring function as a Metric under `name`."""

        def wrap(fn):
            self.register(name)(Metric(name, display_name, fn, tasks))
            return fn

        return wrap

    def for_task(self, task_type: str) -> list[str]:
        return [name for name, m in self.items() if task_type in m.tasks]


metrics = MetricRegistry("metric")
