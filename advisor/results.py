"""Plain frozen records that cross module boundaries: examples in, predictions and trial results out.

results.json is versioned by SCHEMA_VERSION; bump it when a field changes meaning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1


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
    cost_rank: int = 0
    """Rough relative cost; the runner runs cheap trials first."""

    @property
    def id(self) -> str:
        """A file-name-safe, stable id: the name plus a short hash."""
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.name)
        return f"{safe}-{self.hash[:8]}"
