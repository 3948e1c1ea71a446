"""The static part of task.yaml: every section's pydantic model, strict (unknown keys are errors).

The `strategies` section and the metric check need the registries above this layer: advisor.spec adds
them (`task_spec_model`). Lower layers type against `TaskSpecBase` and never import advisor.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, field_validator, model_validator

from contracts.gpus import Gpu, find_gpu

EMBEDDED_MODEL = "smollm2-135m-instruct"
EMBEDDED_EMBEDDER = "all-minilm-l6-v2"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskType(Strict):
    type: Literal["classification", "qa", "generation"] = Field(
        description="classification: pick one label; qa: short answer; generation: free text."
    )
    labels: list[str] | None = Field(
        None, description="Allowed labels (classification). Default: the labels seen in train."
    )


class DataSpec(Strict):
    train: Path = Field(description="Training examples (.jsonl or .csv), relative to task.yaml.")
    test: Path = Field(description="Held-out examples every strategy is scored on.")
    validation: Path | None = Field(None, description="Optional validation split.")
    input: str = Field("text", description="Field holding the model input.")
    target: str = Field("label", description="Field holding the expected output.")
    id: str | None = Field(None, description="Field holding a unique id (default: the line number).")
    test_limit: int | None = Field(
        None, ge=1, description="Score only the first N test examples (a quick look, not a result)."
    )
    max_train: int = Field(20000, ge=1, description="Larger train splits are sampled down (seeded) with a warning.")
    max_test: int = Field(2000, ge=1, description="Larger test splits are sampled down (seeded) with a warning.")
    near_duplicate_threshold: float | None = Field(
        0.95, gt=0, le=1, description="Cosine similarity above which a test input counts as leaked from train (None: off)."
    )
    train_sizes: list[int | float | Literal["all"]] | None = Field(
        None, description="Learning curve: train the weight-changing families and k-shot prompting again on nested, "
        "stratified subsets of train of these sizes (counts, fractions in (0, 1), or 'all'), one extra trial per size.",
    )

    @field_validator("train_sizes")
    @classmethod
    def _sizes(cls, sizes: list | None) -> list | None:
        for size in sizes or ():
            if isinstance(size, float) and not 0 < size <= 1:
                raise ValueError(f"fraction {size} must be in (0, 1]")
            if isinstance(size, int) and not isinstance(size, bool) and size < 1:
                raise ValueError(f"size {size} must be at least 1")
        return sizes

    @field_validator("train", "test", "validation")
    @classmethod
    def _known_format(cls, path: Path | None) -> Path | None:
        if path is not None and path.suffix.lower() not in (".jsonl", ".csv"):
            raise ValueError(f"'{path}' must be a .jsonl or .csv file")
        return path


class KnowledgeSpec(Strict):
    corpus: Path = Field(description="Folder of .md/.txt files, or a .jsonl of {id, text} documents.")


class ForgettingSpec(Strict):
    benchmarks: list[str] = Field(
        default_factory=list,
        description="General benchmarks: built-in local ones (arc_easy, hellaswag, ...) or any lm-eval task name.",
    )
    limit: int = Field(100, ge=1, description="Items per benchmark.")
    data_dir: Path | None = Field(
        None, description="Folder holding <benchmark>/test.jsonl (default: $ADVISOR_BENCHMARK_DATA)."
    )


class Constraints(Strict):
    budget_usd: float | None = Field(None, ge=0, description="One-time budget for training.")
    monthly_budget_usd: float | None = Field(None, ge=0, description="Monthly serving budget.")
    max_latency_ms: float | None = Field(None, gt=0, description="Latency limit per query (p95).")
    knowledge_changes: Literal["never", "yearly", "monthly", "weekly", "daily"] | None = None
    monthly_queries: int | None = Field(None, ge=0, description="Expected query volume per month.")
    max_forgetting: float | None = Field(None, ge=0, description="Largest tolerated benchmark drop (points).")
    min_quality: float | None = Field(
        None, ge=0, le=1, description="The bar: the headline metric's value a solution must reach (every metric is in [0, 1]: "
        "0.9 for 90% accuracy). "
        "The decision says first whether the pick surely, maybe or does not reach it.",
    )
    equivalence_points: float = Field(2.0, ge=0, description="A simpler trial replaces the best one only when the paired "
                                      "95% CI shows it at most this many points worse.")


class Pricing(Strict):
    gpu_hour_usd: float = Field(2.5, ge=0, description="Price of one GPU hour.")
    cpu_hour_usd: float = Field(0.1, ge=0, description="Price of one CPU machine hour.")
    input_usd_per_1k_tokens: float | None = Field(None, ge=0, description="API price per 1k prompt tokens.")
    output_usd_per_1k_tokens: float | None = Field(None, ge=0, description="API price per 1k output tokens.")


class Target(Strict):
    model: str = Field(description="Model size to project to, e.g. '8B', or a config.json path.")
    gpu: str = Field(description="GPU name from the estimator's table, e.g. 'a10g-24gb', or one of `gpus`.")
    gpus: dict[str, Gpu] = Field(default_factory=dict, description="GPUs to add to the estimator's table, by name.")

    @model_validator(mode="after")
    def _known_gpu(self):
        try:
            find_gpu(self.gpu, self.gpus)
        except KeyError as exc:  # UnknownName: pydantic only turns ValueErrors into validation errors
            raise ValueError(str(exc)) from None
        return self


# task.yaml `models:` entries: a local model (weights we load) or an OpenAI-compatible endpoint. Only the
# families that leave the weights alone (prompting, rag) apply to an endpoint; its key is read from the
# environment variable it names, never from task.yaml, and never stored.

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def short_name(model: str) -> str:
    """A label for the report: the last part of a path or hub id ('HuggingFaceTB/SmolLM2' -> 'SmolLM2')."""
    return PurePath(model.rstrip("/")).name or model


class LocalModel(Strict):
    kind: Literal["local"] = "local"
    name: str | None = Field(None, pattern=_NAME, description="Short label in trial names and the report (default: from `model`).")
    model: str = Field(EMBEDDED_MODEL, description="Embedded default, a local folder or a hub id.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value

    @property
    def label(self) -> str:
        return self.name or short_name(self.model)

    def identity(self) -> dict[str, Any]:
        """What of this entry decides a trial's result (its settings and content hash)."""
        return {"kind": "local", "name": self.label, "model": self.model}


class EndpointModel(Strict):
    kind: Literal["endpoint"] = "endpoint"
    name: str | None = Field(None, pattern=_NAME, description="Short label in trial names and the report (default: from `model`).")
    base_url: str = Field(pattern=r"^https?://", description="The OpenAI-compatible API root, e.g. https://api.openai.com/v1.")
    model: str = Field(description="The model name the endpoint serves.")
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                    description="Environment variable holding the API key (none: a local server without keys).")
    input_usd_per_1k_tokens: float | None = Field(None, ge=0, description="Hosted price per 1k prompt tokens.")
    output_usd_per_1k_tokens: float | None = Field(None, ge=0, description="Hosted price per 1k output tokens.")
    gpu_hour_usd: float | None = Field(None, ge=0, description="Self-hosted: price of the serving GPU hour (priced at the measured throughput).")
    max_concurrency: int = Field(4, ge=1, description="Requests in flight at once.")
    timeout_s: float = Field(60.0, gt=0, description="Seconds one request may take before it is retried.")
    max_retries: int = Field(5, ge=0, description="Retries on 429, 5xx, timeouts and dropped connections (exponential backoff, jitter, Retry-After).")
    logprobs: bool = Field(True, description="Classification: ask for token log-probabilities (servers that ignore it are answered by generation).")
    tokenizer: str | None = Field(None, description="Tokenizer (folder or hub id) to budget retrieved context; default: the endpoint's "
                                                    "model when it is a local folder, else the task's local model's.")

    @model_validator(mode="after")
    def _one_price(self):
        if self.gpu_hour_usd is not None and (self.input_usd_per_1k_tokens is not None or self.output_usd_per_1k_tokens is not None):
            raise ValueError("price an endpoint per token (hosted) or per GPU hour (self-hosted), not both")
        return self

    @property
    def label(self) -> str:
        return self.name or short_name(self.model)

    def identity(self) -> dict[str, Any]:
        """What decides a trial's answers and measured latency; prices are left out (a price change re-prices,
        it does not re-run), and so is the key."""
        return {"kind": "endpoint", "name": self.label, "base_url": self.base_url.rstrip("/"), "model": self.model,
                "max_concurrency": self.max_concurrency, "logprobs": self.logprobs}


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("kind") or ("endpoint" if "base_url" in value else "local")
    return getattr(value, "kind", "local")


ModelEntry = Annotated[Union[Annotated[LocalModel, Tag("local")], Annotated[EndpointModel, Tag("endpoint")]], Discriminator(_kind)]


class TaskSpecBase(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Short name; used in run folders.")
    model: str = Field(EMBEDDED_MODEL, description="Embedded default, a local folder or a hub id.")
    models: list[ModelEntry] | None = Field(None, description="Several models to compare (local ones and endpoints); "
                                            "`model:` is the shorthand for one local model.")
    task: TaskType
    data: DataSpec
    knowledge: KnowledgeSpec | None = None
    metric: str | None = Field(None, description="Headline metric (default: per task type).")
    seed: int = 0
    forgetting: ForgettingSpec | None = None
    constraints: Constraints = Field(default_factory=Constraints)
    pricing: Pricing = Field(default_factory=Pricing)
    target: Target | None = None

    _source: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _models(self):
        """`models:` replaces `model:`; `model` then names the first local entry (the base model of forgetting)."""
        if self.models is None:
            return self
        if not self.models:
            raise ValueError("models: list at least one model")
        labels = [m.label for m in self.models]
        if dup := sorted({n for n in labels if labels.count(n) > 1}):
            raise ValueError(f"models: two entries are both named '{dup[0]}': give them distinct 'name's")
        local = next((m.model for m in self.models if m.kind == "local"), EMBEDDED_MODEL)
        if "model" in self.model_fields_set and self.model != local:  # a dumped spec carries both, and agrees
            raise ValueError("give either 'model' (one local model) or 'models' (a list), not both")
        self.model = local
        return self

    def model_entries(self) -> list[LocalModel | EndpointModel]:
        """The models to compare: `models`, or the one local `model`."""
        return list(self.models) if self.models is not None else [LocalModel(model=self.model)]

    @property
    def source(self) -> Path | None:
        """Where this spec was read from: set by the loader, never by task.yaml (so not in the schema)."""
        return self._source

    @source.setter
    def source(self, path: Path | None) -> None:
        self._source = path

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def resolve(self, path: Path) -> Path:
        """Relative paths in task.yaml are relative to the task file's folder."""
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def headline_metric(self) -> str:
        return self.metric or {"classification": "accuracy", "qa": "token_f1", "generation": "token_f1"}[
            self.task.type
        ]
