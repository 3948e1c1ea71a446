"""The prompting family: zero-shot and k-shot prompts over several templates.

Formatting alone moves small models' accuracy by tens of points (Sclar et al., 2023), so a prompting
trial runs every template: the template used for the headline number is picked on a held-out dev slice
(never on test), and the report also shows the range over all templates on test.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field, field_validator

from contracts.records import Example, Prediction
from contracts.spec import Strict
from baselines.registry import strategies
from baselines.base import Strategy
from baselines.budget import BUDGET_HELP
from baselines.templates import fill, resolve_templates


class PromptingOptions(Strict):
    shots: list[int] = Field([0, 5], description="Numbers of in-context examples; one trial per value.")
    templates: list[str] | None = Field(None, description="Built-in template names or .txt files ({input}, {labels}).")
    selection: Literal["random", "similar"] = Field("random", description="How k-shot examples are drawn from train.")
    select_on: int = Field(16, ge=1, description="Train examples held out to pick the best template.")
    max_new_tokens: int | None = Field(None, ge=1, description=BUDGET_HELP)
    batch_size: int = Field(8, ge=1)

    @field_validator("shots")
    @classmethod
    def _non_negative(cls, shots: list[int]) -> list[int]:
        if not shots or any(k < 0 for k in shots):
            raise ValueError("shots must be a non-empty list of numbers >= 0")
        return sorted(set(shots))


def shots_name(k: int, selection: str) -> str:
    return "zero-shot" if k == 0 else f"{k}-shot" + ("-similar" if selection == "similar" else "")


def held_out(splits, settings: dict[str, Any], seed: int) -> tuple[list[Example], list[Example], list[Example] | None]:
    """(the dev items that pick the template, the shot pool, the fixed shots; None when drawn per input), seeded:
    the run and advisor.forecast draw the same."""
    rng = random.Random(seed)
    if splits.validation:
        dev, pool = splits.validation[: settings["select_on"]], list(splits.train)
    else:
        shuffled = list(splits.train)
        rng.shuffle(shuffled)
        # keep at least the shots in the pool when train is tiny
        n_dev = min(settings["select_on"], max(0, len(shuffled) - settings["shots"]))
        dev, pool = shuffled[:n_dev], shuffled[n_dev:]
    per_input = settings["selection"] == "similar" and settings["shots"] > 0
    return dev, pool, None if per_input else rng.sample(pool, min(settings["shots"], len(pool)))


def prompt_turns(text: str, ex: Example, shots: list[Example], labels: list[str]) -> list[dict[str, str]]:
    """The chat turns of one prompt: each shot as a user turn and its answer, then the item."""
    turns = []
    for shot in shots:
        turns += [{"role": "user", "content": fill(text, shot.input, labels)}, {"role": "assistant", "content": shot.target}]
    return turns + [{"role": "user", "content": fill(text, ex.input, labels)}]


@strategies.register("prompting")
class Prompting(Strategy):
    """Prompt engineering: zero-shot and k-shot prompts over several templates."""

    Options = PromptingOptions
    simplicity_rank = 0

    @classmethod
    def is_baseline(cls, settings: dict[str, Any]) -> bool:
        return settings.get("shots") == 0

    @classmethod
    def expand(cls, options: PromptingOptions, spec) -> list[tuple[str, dict[str, Any]]]:
        templates = resolve_templates(options.templates, spec)
        common = options.model_dump(exclude={"shots", "templates"})
        return [(shots_name(k, options.selection), {**common, "shots": k, "templates": templates}) for k in options.shots]

    def prepare(self) -> None:
        s = self.settings
        self.dev, self.pool, self.fixed_shots = held_out(self.ctx.splits, s, self.ctx.spec.seed)
        self._done = 0
        self.template_scores: dict[str, dict[str, float]] = {}
        self.chosen = next(iter(s["templates"]))
        if len(s["templates"]) > 1 and self.dev:
            metric = self.ctx.spec.headline_metric
            for name in s["templates"]:
                score = self._score(name, self.dev, metric)
                self.template_scores[name] = {"dev": score}
            self.chosen = max(self.template_scores, key=lambda n: self.template_scores[n]["dev"])

    def _score(self, template: str, examples: list[Example], metric: str) -> float:
        from evaluators import metrics

        preds = self._answer(template, examples)
        return metrics.get(metric).fn([p.output for p in preds], [e.target for e in examples])

    def _shots_for(self, ex: Example, similar: dict[str, list[Example]] | None) -> list[Example]:
        return similar[ex.id] if similar is not None else self.fixed_shots

    def _similar_shots(self, examples: list[Example]) -> dict[str, list[Example]]:
        """The k train examples nearest to each input by embedding cosine similarity."""
        import numpy as np

        from contracts.spec import EMBEDDED_EMBEDDER
        from baselines.embedding import Embedder

        if getattr(self, "_embedder", None) is None:  # loaded once per trial, as a server would
            self._embedder = Embedder(EMBEDDED_EMBEDDER, device=self.ctx.device)
        embedder = self._embedder
        pool_vecs = embedder.embed([e.input for e in self.pool])
        query_vecs = embedder.embed([e.input for e in examples])
        k = min(self.settings["shots"], len(self.pool))
        nearest = np.argsort(-(query_vecs @ pool_vecs.T), axis=1)[:, :k]
        # most similar last, right before the question
        return {ex.id: [self.pool[j] for j in reversed(row)] for ex, row in zip(examples, nearest)}

    def messages(self, template: str, ex: Example, shots: list[Example]) -> list[dict[str, str]]:
        return prompt_turns(self.settings["templates"][template], ex, shots, self.ctx.splits.labels)

    def _answer(self, template: str, examples: list[Example], counted: bool = True) -> list[Prediction]:
        """Predictions of `template` on `examples`; `counted` ones advance the trial's progress (done of total)."""
        from baselines.answer import answer

        similar = self._similar_shots(examples) if self.fixed_shots is None else None
        prompts = [self.messages(template, ex, self._shots_for(ex, similar)) for ex in examples]
        total = len(self.settings["templates"]) * (len(self.dev) + len(self.ctx.splits.test))

        def tick(n: int) -> None:
            self._done += n
            self.ctx.progress(self._done, total, f"template {template}")

        return answer(self.ctx.lm, examples, prompts, task_type=self.ctx.spec.task.type, labels=self.ctx.splits.labels,
                      max_new_tokens=self.ctx.max_new_tokens(self.settings["max_new_tokens"], self.ctx.lm), batch_size=self.settings["batch_size"],
                      progress=tick if counted else None)

    def predict(self, examples: list[Example]) -> list[Prediction]:
        from evaluators import metrics

        metric = metrics.get(self.ctx.spec.headline_metric)
        refs = [e.target for e in examples]
        chosen_preds = []
        for name in self.settings["templates"]:
            preds = self._answer(name, examples)
            self.template_scores.setdefault(name, {})["test"] = metric.fn([p.output for p in preds], refs)
            if name == self.chosen:
                chosen_preds = preds
        return chosen_preds

    def answer_one(self, example: Example) -> Prediction:
        """With the chosen template only: a served query runs one prompt, not every template."""
        return self._answer(self.chosen, [example], counted=False)[0]  # the latency pass: not part of done/total

    def details(self) -> dict[str, Any]:
        tests = [v["test"] for v in self.template_scores.values() if "test" in v]
        selected_on = "validation" if self.ctx.splits.validation else f"{len(self.dev)} held-out train examples"
        return {
            "summary": f"template '{self.chosen}' (picked on {selected_on}); range over templates {min(tests):.1%} to {max(tests):.1%}"
                       if tests else f"template '{self.chosen}'",
            "template": self.chosen,
            "template_selected_on": selected_on,
            "template_scores": self.template_scores,
            "template_range": [min(tests), max(tests)] if tests else None,
            "shots": self.settings["shots"],
            "shot_ids": [e.id for e in self.fixed_shots] if self.fixed_shots is not None else "nearest per input",
            "shot_examples": [{"id": e.id, "input": e.input, "target": e.target} for e in self.fixed_shots or []],
        }
