"""The finetune_rag family: a fine-tuned model answering with retrieved context (Ovadia et al., 2023).

When a spec has both `rag` and a fine-tuning family, this family adds one trial per fine-tuned trial
(on top of the first RAG combination, or the ones named in `finetune_rag.rag`): RAG's chunking,
index and prompt, answered by the fine-tuned weights. So the report can set the combination against
each arm alone on the same test items.

Training is not repeated: the trial opens the fine-tuned trial's own checkpoint folder (same settings,
same content hash), where a finished training reloads in seconds; if that trial was interrupted, this
one finishes the training there, for both. Its one-time cost still counts the training
(`reused_setup_s`), and its forgetting figures are that trial's (same weights; the benchmarks never
see retrieval). As in Ovadia et al., the model was trained without retrieved context in its
prompts; training with context (RAFT-style) would be another arm and is not run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import Field

from contracts.registry import did_you_mean
from contracts.records import Example, Prediction
from contracts.spec import Strict
from baselines.registry import strategies
from baselines.base import Strategy
from baselines.finetune.family import FineTune
from baselines.rag import Rag


class FinetuneRagOptions(Strict):
    rag: list[str] | None = Field(None, description="RAG trials to put on top of each fine-tuned model, by name "
                                                    "(e.g. rag/sentence/flat); default: the first one.")
    finetune: list[str] | None = Field(None, description="Fine-tuned trials to combine, by name (e.g. lora-r16); default: all.")


def _chosen(trials: list[tuple[str, Any]], names: list[str] | None, what: str) -> list[tuple[str, Any]]:
    known = [name for name, _ in trials]
    for name in names or []:
        if name not in known:
            raise ValueError(f"finetune_rag: no {what} trial named '{name}'.{did_you_mean(name, known)} Known: {', '.join(known)}")
    return [t for t in trials if t[0] in names] if names else trials


@strategies.register("finetune_rag")
class FinetuneRag(Strategy):
    """Retrieval on top of each fine-tuned model; on whenever rag and a fine-tuning family are both set (null turns it off)."""

    Options = FinetuneRagOptions
    simplicity_rank = 7
    retrieves = True
    changes_weights = True
    on_by_default = True

    @classmethod
    def expand(cls, options: FinetuneRagOptions, spec) -> list[tuple[str, dict[str, Any]]]:
        tuned = [(name, {"family": family, "name": name, "settings": settings})
                 for family, strategy in strategies.items()
                 if issubclass(strategy, FineTune) and (opts := getattr(spec.strategies, family)) is not None
                 for name, settings in strategy.expand(opts, spec)]
        if spec.strategies.rag is None or not tuned:
            if "finetune_rag" in spec.strategies.model_fields_set:
                raise ValueError("finetune_rag needs 'rag' and a fine-tuning family (lora, qlora, ia3 or full) in strategies")
            return []
        rags = [(name, {"name": name, "settings": settings}) for name, settings in Rag.expand(spec.strategies.rag, spec)]
        rags = _chosen(rags, options.rag, "rag") if options.rag else rags[:1]
        return [(f"{ft_name}+{rag_name}", {"finetune": ft, "rag": rag})
                for ft_name, ft in _chosen(tuned, options.finetune, "fine-tuned") for rag_name, rag in rags]

    @classmethod
    def needs(cls, settings: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
        """The fine-tuned trial whose checkpoint folder this one trains in or reloads from."""
        ft = settings["finetune"]
        return [(ft["family"], ft["name"], ft["settings"])]

    @property
    def tuned_name(self) -> str:
        return self.settings["finetune"]["name"]

    def prepare(self) -> None:
        ft, ctx = self.settings["finetune"], self.ctx
        self.source = ctx.find_trial(ft["family"], ft["name"], ft["settings"])
        self.tuned: FineTune = strategies.get(ft["family"])(ft["settings"], replace(ctx, trial_dir=self.source.dir))
        self.tuned.prepare()
        self.reused = bool(self.tuned.state.get("reused_finished_training"))
        self.tuned.lm.model.eval()
        self.rag = Rag(self.settings["rag"]["settings"], ctx.answering_with(self.tuned.lm))
        self.rag.prepare()

    def predict(self, examples: list[Example]) -> list[Prediction]:
        return self.rag.predict(examples)

    def answer_one(self, example: Example) -> Prediction:
        return self.rag.answer_one(example)

    def extra_metrics(self, examples: list[Example], predictions: list[Prediction]) -> dict[str, Any]:
        return self.rag.extra_metrics(examples, predictions)

    def adapted_model(self):
        return self.tuned.adapted_model()

    def forgetting_measured(self) -> dict | None:
        """The fine-tuned trial's own forgetting figures: the benchmarks never see retrieval, and the weights are the same."""
        from evaluators.forgetting import covers

        done = (self.source.record or {}).get("forgetting") or {}
        if done.get("applies") and "error" not in done and covers(done, self.ctx.spec):
            return {**done, "same_weights_as": self.tuned_name}
        return None

    def resources(self) -> dict[str, Any]:
        tuned, rag = self.tuned.resources(), self.rag.resources()
        training = self.tuned.state["train_s"] if self.reused else 0.0
        return {**rag, "training_from": self.tuned_name, "reused_setup_s": round(rag["reused_setup_s"] + training, 2),
                **{k: tuned[k] for k in ("weights_mb", "adapter_mb", "train_s", "device", "optimizer")}}

    def details(self) -> dict[str, Any]:
        rag, tuned = self.rag.details(), self.tuned.details()
        how = f"training reused from {self.tuned_name}" if self.reused else f"trained here (no finished {self.tuned_name} training was found)"
        return {**rag, "summary": f"{self.settings['rag']['name']} answered by the {self.tuned_name} weights ({how}); {rag['summary']}",
                "warnings": rag["warnings"] + tuned["warnings"], "finetune": {k: v for k, v in tuned.items() if k not in ("curves", "warnings")},
                "compare_with": {"vs_finetune_alone": self.tuned_name, "vs_rag_alone": self.settings["rag"]["name"]}}
