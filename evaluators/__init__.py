"""Measurements: task metrics (the `metrics` registry), statistics and resource meters."""

from evaluators.base import Metric, metrics
from evaluators import task_metrics  # noqa: F401  (registers the built-in metrics)

__all__ = ["Metric", "metrics"]
