"""Models x strategies: which trials each model of `models:` gets, and how a trial answers with its model.

One local model (the `model:` shorthand) plans exactly as before: the same trial names and content hashes,
so earlier runs are reused. With `models:`, every trial's settings carry its model's entry (`settings.model`,
so its hash differs per model); with more than one model its name starts with the model's label
(`gpt-4o-mini/zero-shot`). Families that change weights apply to local models only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.spec import EndpointModel, Pricing

if TYPE_CHECKING:
    from baselines.base import TrialRef
    from baselines.endpoint import EndpointLM

MODEL = "model"
"""The settings key that names a trial's model in a `models:` plan."""


def single_local(spec) -> bool:
    return spec.models is None or (len(spec.models) == 1 and spec.models[0].kind == "local")


def _identity(entry) -> dict[str, Any]:
    from baselines.models import fingerprint

    return {**entry.identity(), "files": fingerprint(entry.model)} if entry.kind == "local" else entry.identity()


def _named(spec, label: str, name: str) -> str:
    return f"{label}/{name}" if len(spec.model_entries()) > 1 else name


def per_model(spec, cls, expanded: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """A family's (name, settings) for every model it applies to."""
    if single_local(spec):
        return expanded
    return [(_named(spec, entry.label, name), {**settings, MODEL: _identity(entry)})
            for entry in spec.model_entries() if entry.kind == "local" or not cls.changes_weights
            for name, settings in expanded]


def models_summary(spec, trials) -> list[str]:
    """One line per model: the trials it gets, and the families it does not (for `advisor validate`)."""
    from baselines import strategies

    if single_local(spec):
        return []
    lines = []
    for entry in spec.model_entries():
        mine = [t.name for t in trials if (t.settings.get(MODEL) or {}).get("name") == entry.label]
        where = f"endpoint {entry.model} at {entry.base_url}" if entry.kind == "endpoint" else f"local {entry.model}"
        skipped = sorted({t.family for t in trials if strategies.get(t.family).changes_weights}) if entry.kind == "endpoint" else []
        lines.append(f"model {entry.label} ({where}): {len(mine)} trials: {', '.join(mine)}"
                     + (f"; not {', '.join(skipped)} (they change weights: local models only)" if skipped else ""))
    return lines


def endpoint_entry(spec, settings: dict) -> EndpointModel | None:
    found = settings.get(MODEL) or {}
    return next((m for m in spec.model_entries() if m.kind == "endpoint" and m.label == found.get("name")), None)


def pricing_for(spec, settings: dict) -> Pricing:
    """The prices a trial's cost uses: its endpoint's own (per token, or per GPU hour), else the spec's."""
    entry = endpoint_entry(spec, settings) if (settings or {}).get(MODEL) else None
    if entry is None:
        return spec.pricing
    if entry.gpu_hour_usd is not None:
        return spec.pricing.model_copy(update={"gpu_hour_usd": entry.gpu_hour_usd, "input_usd_per_1k_tokens": None,
                                               "output_usd_per_1k_tokens": None})
    return spec.pricing.model_copy(update={"input_usd_per_1k_tokens": entry.input_usd_per_1k_tokens or 0.0,
                                           "output_usd_per_1k_tokens": entry.output_usd_per_1k_tokens or 0.0})


@dataclass
class TrialModel:
    """The model a trial answers with: its spec (with `model` set to a local entry's), the family's own settings
    (without the model entry), and the endpoint client when the model is an endpoint."""

    spec: Any
    settings: dict[str, Any]
    entry: dict[str, Any] | None = None
    lm: EndpointLM | None = None

    def find(self, find: Callable[[str, str, dict[str, Any]], TrialRef]) -> Callable[[str, str, dict[str, Any]], TrialRef]:
        """The run store's lookup of other trials, for trials of this same model (fine-tuning + RAG finds its training)."""
        if self.entry is None:
            return find

        def same_model(family: str, name: str, settings: dict[str, Any]) -> TrialRef:
            return find(family, _named(self.spec, self.entry["name"], name), {**settings, MODEL: self.entry})

        return same_model

    def details(self, details: dict[str, Any]) -> dict[str, Any]:
        """`compare_with` names the family's own trials: with a model prefix, the plan's names."""
        if self.entry is None or "compare_with" not in details:
            return details
        named = {role: _named(self.spec, self.entry["name"], name) for role, name in details["compare_with"].items()}
        return {**details, "compare_with": named}

    def resources(self) -> dict[str, Any]:
        return {"model": self.entry["name"], **(self.lm.resources() if self.lm else {})} if self.entry else {}


def trial_model(spec, settings: dict[str, Any], run_root: Path) -> TrialModel:
    entry = settings.get(MODEL)
    if entry is None:
        return TrialModel(spec, settings)
    rest = {k: v for k, v in settings.items() if k != MODEL}
    if entry["kind"] == "local":
        return TrialModel(spec.model_copy(update={"model": entry["model"]}), rest, entry)
    from baselines.endpoint import EndpointLM

    found = endpoint_entry(spec, settings)
    if found is None:
        raise ValueError(f"the trial's endpoint '{entry['name']}' is no longer in the spec's models")
    return TrialModel(spec, rest, entry, EndpointLM(found, run_root / "responses", spec.model))
