"""task.yaml as a pydantic model: the static sections (contracts.spec) plus what the registries add.

The `strategies` section is built from the strategy registry: each strategy family declares its own
`Options` model next to its code, so adding a strategy never touches this file. The metric is checked
against the metric registry.
"""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, Field, ValidationInfo, create_model, field_validator

from contracts.registry import did_you_mean
from contracts.spec import Strict, TaskSpecBase


@cache
def strategies_model() -> type[BaseModel]:
    """The `strategies:` section: one optional field per registered strategy family (null turns one off)."""
    from baselines import strategies

    def field(cls):
        described = {"description": (cls.__doc__ or "").strip().split("\n")[0]}
        return Field(default_factory=cls.Options, **described) if cls.on_by_default else Field(None, **described)

    fields = {name: (cls.Options | None, field(cls)) for name, cls in strategies.items()}
    return create_model("Strategies", __base__=Strict, **fields)


class CheckedTaskSpec(TaskSpecBase):
    """TaskSpecBase whose metric is known to the metric registry and fits the task type."""

    @field_validator("metric")
    @classmethod
    def _metric_fits_task(cls, metric: str | None, info: ValidationInfo) -> str | None:
        """A field validator (task is validated before metric), so an error points at the metric's line."""
        from evaluators import metrics

        task = info.data.get("task")
        if metric is None:
            return metric
        if metric not in metrics:
            raise ValueError(f"unknown metric '{metric}'.{did_you_mean(metric, metrics.names())} "
                             f"Metrics: {', '.join(metrics.names())}")
        if task is not None and task.type not in metrics.get(metric).tasks:
            raise ValueError(f"metric '{metric}' does not apply to {task.type} tasks; "
                             f"use one of {', '.join(metrics.for_task(task.type))}")
        return metric


@cache
def task_spec_model() -> type[TaskSpecBase]:
    return create_model(
        "TaskSpec",
        __base__=CheckedTaskSpec,
        strategies=(strategies_model(), Field(description="Strategy families to compare, with their settings.")),
    )
