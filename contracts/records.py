"""The records that cross layers: examples in, predictions out, and the stored trial record.

`TrialRecord` is the contract between every layer: the runner writes it (trials/<id>.json), the
aggregation adds cost and comparisons, the recommendation and the reports read it. results.json is
versioned by SCHEMA_VERSION; bump it when a field changes meaning. `advisor schema --results` prints
the JSON Schema of `RunResults`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

MAX_EXTRAPOLATION = 10
"""How far past the largest measured train size a learning curve's examples-to-bar figure is still quoted
as a number or drawn (the decision and the chart both read it)."""


@dataclass(frozen=True)
class Example:
    id: str
    input: str
    target: str
    line: int = 0
    """1-based line (jsonl) or row (csv) in the source file, for error messages."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Other fields of the record (e.g. the gold document id for retrieval metrics)."""


@dataclass(frozen=True)
class Prediction:
    id: str
    output: str
    prompt_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    """Wall time of the batch that answered this example, divided by the batch size."""
    scores: dict[str, float] | None = None
    """Log-likelihood per label, for classification."""
    sources: list[str] | None = None
    """Ids of the retrieved chunks the answer saw (RAG)."""
    batch_size: int | None = None
    """Size of the batch that answered it (`latency_ms` is its share); None for an endpoint, which times each request."""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Trial:
    """One strategy with fixed settings: the unit the runner executes and stores."""

    name: str
    family: str
    settings: dict[str, Any]
    hash: str
    """Content hash of everything that determines the result (data, model, settings, seed, version)."""
    simplicity_rank: int = 0
    """Its family's rank (simpler and cheaper first): the runner runs low ranks first."""

    @property
    def id(self) -> str:
        """A file-name-safe, stable id: the name plus a short hash."""
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.name)
        return f"{safe}-{self.hash[:8]}"


@dataclass
class Splits:
    train: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)
    validation: list[Example] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    fingerprints: dict[str, str] = field(default_factory=dict)
    """sha256 of each data file, by split name: part of every trial's content hash."""


class _Record(BaseModel):
    """Typed where every trial has the field; family-specific figures ride along as extra keys."""

    model_config = ConfigDict(extra="allow")


class Latency(_Record):
    p50_ms: float | None = None
    p95_ms: float | None = None
    measured: str = Field("", description="How the latency was measured.")


class Resources(_Record):
    wall_s: float = 0.0
    prepare_s: float = 0.0
    predict_s: float = 0.0
    examples_per_s: float | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    prompt_tokens_per_query: float = 0.0
    n_predictions: int = 0
    device: str = "cpu"
    peak_rss_mb: float | None = None
    peak_rss_delta_mb: float | None = None
    memory_measured: str = ""
    forgetting_s: float | None = None
    reused_setup_s: float = Field(0.0, description="Original time of setup work this trial reused instead of doing (another "
                                  "trial's training, corpus embeddings read from the cache): charged in its one-time cost.")


class StoppedEarly(_Record):
    """Why a budgeted run (`advisor compare --budget`) stopped this trial before the full test set: on what
    items, against which leader, by which paired test. A stopped trial is never a candidate."""

    why: Literal["worse", "budget"] = Field(description="worse: the paired test showed it behind the leader (p < 0.05); "
                                            "budget: the time budget had no room for the rest of the test set.")
    n: int = Field(description="Test items it was scored on (a nested, stratified subset).")
    of: int = Field(description="Test items in the full test set.")
    leader: str
    delta: float = Field(description="This trial minus the leader on those items, in the metric's units.")
    delta_ci95: list[float]
    p: float
    p_holm: float
    test: str
    budget_s: float | None = None
    left_s: float | None = None
    needed_s: float | None = None


class Forgetting(_Record):
    """General-benchmark drop of adapted weights. `applies` False: weights unchanged (zero by construction);
    `error` set: the measurement failed and forgetting is unknown."""

    applies: bool
    reason: str | None = None
    error: str | None = None
    limit: int | None = None
    benchmarks: dict[str, Any] = Field(default_factory=dict)
    mean_delta: float | None = None
    same_weights_as: str | None = None

    @property
    def measured(self) -> bool:
        return self.applies and self.error is None and self.mean_delta is not None


class Forecast(_Record):
    """What the run forecast for this trial before running it (advisor.forecast), to set against `resources.wall_s`
    plus `resources.forgetting_s`."""

    seconds: float = Field(description="The whole trial: model load, answering, latency pass, training and forgetting_s.")
    forward_positions: int
    train_positions: int = 0
    forgetting_s: float | None = Field(None, description="Of `seconds`, the forgetting benchmarks (resources.forgetting_s); "
                                       "None: not forecast (an older forecast), `seconds` is then set against wall_s alone.")
    load_s: float = Field(0.0, description="Of `seconds`, loading the model (timed where the forecast loaded it).")
    forward_per_s: float = Field(description="Positions per second of a forward pass, as measured at the run's start.")
    train_per_s: float = Field(description="Positions per second of a training step, as measured at the run's start.")
    measured: str = Field("", description="How the throughput was measured.")


class TrialRecord(_Record):
    schema_version: int = SCHEMA_VERSION
    id: str
    name: str
    strategy: str
    settings: dict[str, Any] = Field(default_factory=dict)
    hash: str
    status: Literal["ok", "failed", "oom", "pending"]
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    n_test: int | None = None
    stopped_early: StoppedEarly | None = None
    """Set when a budgeted run stopped it on a subset of the test set (`n_test` items)."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    """Headline and other metrics, each `<name>` with `<name>_ci95`; family figures (recall_at_k) too."""
    resources: Resources | None = None
    latency: Latency | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    forgetting: Forgetting | None = None
    reused_from: str | None = None
    forecast: Forecast | None = None
    """Set by the driver when the run forecast this trial; a reused trial keeps the forecast of the run that measured it."""
    # derived when results.json is written (advisor.aggregate), never stored in trials/<id>.json
    cost: dict[str, Any] | None = None
    comparisons: dict[str, Any] = Field(default_factory=dict)
    memory_estimate: dict[str, Any] | None = None

    @classmethod
    def pending(cls, trial: Trial) -> "TrialRecord":
        return cls(schema_version=SCHEMA_VERSION, id=trial.id, name=trial.name, strategy=trial.family, settings=trial.settings,
                   hash=trial.hash, status="pending")

    def stored(self) -> dict[str, Any]:
        """The JSON of trials/<id>.json: the fields this trial set, without the derived sections."""
        return self.model_dump(mode="json", exclude_unset=True, exclude={"cost", "comparisons", "memory_estimate"})


class FamilyFacts(BaseModel):
    """What the registry declares about a strategy family, copied into results.json for its readers."""

    simplicity_rank: int
    retrieves: bool
    changes_weights: bool


class MetricFacts(BaseModel):
    display_name: str
    higher_is_better: bool
    unit: str
    paired_test: Literal["mcnemar", "bootstrap"]


class RunResults(BaseModel):
    """results.json."""

    schema_version: int = SCHEMA_VERSION
    complete: bool
    task: dict[str, Any]
    warnings: list[str] = Field(default_factory=list)
    environment: dict[str, Any] = Field(default_factory=dict)
    families: dict[str, FamilyFacts] = Field(default_factory=dict)
    metrics: dict[str, MetricFacts] = Field(default_factory=dict)
    statistics: dict[str, Any] = Field(default_factory=dict)
    target_scale: dict[str, Any] | None = None
    trials: list[TrialRecord]
    recommendation: dict[str, Any] | None = None

