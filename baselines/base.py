"""The Strategy contract every baseline implements, and the Context the runner hands it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from advisor.results import Example, Prediction

if TYPE_CHECKING:
    from advisor.data import Splits
    from advisor.spec import TaskSpecBase
    from baselines.engine import LanguageModel


def _no_progress(done: int, total: int, what: str) -> None:
    pass


@dataclass
class Context:
    """What a strategy may use: the task, its data, a place for its files, and the shared model."""

    spec: TaskSpecBase
    splits: Splits
    trial_dir: Path
    """The trial's own folder (checkpoints, indexes); it survives a crash for resuming."""
    progress: Callable[[int, int, str], None] = field(default=_no_progress)
    """Call as progress(done, total, what) during long work; the runner draws the bar."""

    @cached_property
    def lm(self) -> LanguageModel:
        """The task's model, loaded on first use (so strategies that never answer never load it)."""
        from baselines.engine import LanguageModel

        return LanguageModel.load(self.spec.model)


class Strategy(ABC):
    """A way to adapt the model to the task (prompting, retrieval, fine-tuning).

    Implementation requirements:
    - `Options`: a pydantic model (extra="forbid") of the family's settings in task.yaml; may hold
      lists to sweep, which `expand` turns into one trial per combination.
    - `expand(options, spec)`: [(trial name, settings dict)], settings JSON-serialisable; they become
      part of the trial's content hash, so two trials with equal settings share results.
    - `__init__` only stores; heavy work (loading, indexing, training) belongs in `prepare`.
    - `predict(examples)` returns one Prediction per example, same order, answering through
      `baselines.answer` so every family is scored by the same code.
    - `details()` returns extra JSON for the trial record (template ranges, loss curves, ...);
      `resources()` and `extra_metrics()` add family-specific figures to the record's sections.
    """

    Options: ClassVar[type[BaseModel]]
    cost_rank: ClassVar[int] = 0
    """Relative cost, so the runner runs cheap families first."""
    on_by_default: ClassVar[bool] = False
    """Present in every spec unless set to null (a family whose trials follow from other families)."""

    def __init__(self, settings: dict[str, Any], ctx: Context):
        self.settings = settings
        self.ctx = ctx

    @classmethod
    @abstractmethod
    def expand(cls, options: BaseModel, spec: TaskSpecBase) -> list[tuple[str, dict[str, Any]]]: ...

    def prepare(self) -> None:
        """Index, train or select; called once before predict."""

    @abstractmethod
    def predict(self, examples: list[Example]) -> list[Prediction]: ...

    def details(self) -> dict[str, Any]:
        """Extra JSON for the record; a `compare_with: {role: trial name}` key adds paired comparisons."""
        return {}

    def extra_metrics(self, examples: list[Example], predictions: list[Prediction]) -> dict[str, Any]:
        """Family-specific quality figures merged into the trial's metrics (e.g. retrieval recall@k)."""
        return {}

    def adapted_model(self) -> tuple[Any, Any] | None:
        """(model, tokenizer) when this strategy changed the weights, for the forgetting benchmarks."""
        return None

    def forgetting_measured(self) -> dict | None:
        """A forgetting record another trial already measured on these very weights, to reuse."""
        return None

    def resources(self) -> dict[str, Any]:
        """Strategy-specific resource figures (e.g. trainable parameters, index size)."""
        return {}
