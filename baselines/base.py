"""The Strategy contract every baseline implements, and the Context the runner hands it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from contracts.records import Example, Prediction, Splits
from contracts.spec import TaskSpecBase

if TYPE_CHECKING:
    from baselines.engine import LanguageModel


def _no_progress(done: int, total: int, what: str) -> None:
    pass


def _any_device() -> str:
    from baselines.device import resolve_device

    return resolve_device("auto")


@dataclass(frozen=True)
class TrialRef:
    """Another trial of the same run, as the run store knows it: its folder and its stored record."""

    id: str
    hash: str
    dir: Path
    record: dict[str, Any] | None
    """The stored record when that trial finished with this very hash, else None."""


def _no_store(family: str, name: str, settings: dict[str, Any]) -> TrialRef:
    raise RuntimeError("this context has no run store to look up other trials")


@dataclass
class Context:
    """What a strategy may use: the task, its data, a place for its files, and the shared model."""

    spec: TaskSpecBase
    splits: Splits
    trial_dir: Path
    """The trial's own folder (checkpoints, indexes); it survives a crash for resuming."""
    progress: Callable[[int, int, str], None] = field(default=_no_progress)
    """Call as progress(done, total, what) during long work; the runner draws the bar."""
    find_trial: Callable[[str, str, dict[str, Any]], TrialRef] = field(default=_no_store)
    """find_trial(family, name, settings): the run store's handle on another trial of this plan."""
    model: LanguageModel | None = None
    """The model to answer with; None loads the task's model on first use of `lm`."""
    device: str = field(default_factory=_any_device)
    """Where models, embedders and training run: 'cpu', 'cuda' or 'cuda:N' (the index is kept)."""
    budget: dict[str, Any] = field(default_factory=dict)
    """The generation budget chosen for this trial (`max_new_tokens`), for its record; the copies that
    `answering_with` makes share it."""

    @property
    def lm(self) -> LanguageModel:
        """The task's model (or `model`), loaded on first use, so strategies that never answer never load it."""
        if self.model is None:
            from baselines.engine import LanguageModel

            self.model = LanguageModel.load(self.spec.model, device=self.device)
        return self.model

    def max_new_tokens(self, requested: int | None, lm: LanguageModel) -> int:
        """The generation budget: `requested` when task.yaml sets it, else one that follows the train answers
        (`baselines.budget`), counted with `lm`'s tokenizer. Classification generates nothing: no budget is kept."""
        from baselines.budget import FLOOR, generation_budget

        if self.spec.task.type == "classification":
            return requested or FLOOR
        if not self.budget:
            self.budget.update(generation_budget(requested, [e.target for e in self.splits.train], lm.count_tokens).as_dict())
        return self.budget["max_new_tokens"]

    def answering_with(self, lm: LanguageModel) -> Context:
        """This context with another model in the answering slot (e.g. fine-tuned weights under RAG)."""
        return replace(self, model=lm)


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
    simplicity_rank: ClassVar[int] = 0
    """Simpler and cheaper families rank lower: the runner runs them first, and among trials shown equivalent
    the recommendation prefers the lowest."""
    retrieves: ClassVar[bool] = False
    """Answers with retrieved context (updated by re-indexing when knowledge changes)."""
    changes_weights: ClassVar[bool] = False
    """Trains the model's weights: forgetting applies, and it must be retrained when knowledge changes."""
    on_by_default: ClassVar[bool] = False
    """Present in every spec unless set to null (a family whose trials follow from other families)."""

    def __init__(self, settings: dict[str, Any], ctx: Context):
        self.settings = settings
        self.ctx = ctx

    @classmethod
    def is_baseline(cls, settings: dict[str, Any]) -> bool:
        """Whether this trial is the run's reference point (zero-shot prompting) that every trial is compared with."""
        return False

    @classmethod
    def needs(cls, settings: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """Other trials of the plan, as (family, name, settings), that this one builds on: an executor that runs
        trials at once starts it after them."""
        return []

    @classmethod
    @abstractmethod
    def expand(cls, options: BaseModel, spec: TaskSpecBase) -> list[tuple[str, dict[str, Any]]]: ...

    @classmethod
    def for_device(cls, settings: dict[str, Any], kind: str) -> dict[str, Any]:
        """The settings with defaults that depend on the device type ('cpu', 'cuda') filled in; the plan
        hashes and records these, so a trial's settings say how it ran."""
        return settings

    def prepare(self) -> None:
        """Index, train or select; called once before predict."""

    @abstractmethod
    def predict(self, examples: list[Example]) -> list[Prediction]: ...

    def answer_one(self, example: Example) -> Prediction:
        """One query answered alone, the way it would be served (batch 1, retrieval included), after `predict`:
        per-query latency is timed on it. It must leave the trial's own figures as `predict` left them."""
        return self.predict([example])[0]

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
