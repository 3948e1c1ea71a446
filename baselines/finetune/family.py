"""Fine-tuning strategies: lora, qlora, ia3 and full, one shared Strategy and one training loop.

The methods differ only in how the trainable model is built: `adapt()` (which weights train) and,
for QLoRA, a quantization config on load. QLoRA *is* LoRA with `quant_type` set in its options; its
class body holds nothing else. Training, checkpoints, prediction and what is recorded are shared.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from contracts.records import Example, Prediction
from baselines.registry import strategies
from baselines.base import Strategy
from baselines.device import gradient_checkpointing, optimizer_name, probe, torch_dtype
from baselines.finetune.data import data_warnings, messages, template_text, tokenize, validation_split
from baselines.finetune.train import TrainOptions, curve_flags, remember, train
from baselines.finetune.weights import dir_mb, dominant_precision, parameter_counts, weights_mb


class FullOptions(TrainOptions):
    lr: float = Field(2e-5, gt=0, description="Peak learning rate (all weights move: keep it small).")


class LoraOptions(TrainOptions):
    r: int | list[int] = Field(16, description="LoRA rank; a list sweeps ranks, one trial each.")
    alpha: int | None = Field(None, ge=1, description="LoRA scaling numerator (default: 2 x r).")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="Module names to adapt (default: all linear layers).")

    @field_validator("r")
    @classmethod
    def _positive(cls, r):
        ranks = r if isinstance(r, list) else [r]
        if not ranks or any(k < 1 for k in ranks):
            raise ValueError("r must be a rank >= 1 or a non-empty list of them")
        return r


class QLoraOptions(LoraOptions):
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type of the frozen base weights.")
    double_quant: bool = Field(True, description="Also quantize the quantization constants (~0.4 bit/param saved).")


class IA3Options(TrainOptions):
    lr: float = Field(3e-3, gt=0, description="Peak learning rate (IA3 scales activations: it needs a large one).")
    target_modules: list[str] | None = Field(None, description="Modules to rescale (default: peft's for the architecture).")
    feedforward_modules: list[str] | None = Field(None, description="Which targets are feed-forward (scaled on input).")


TRAIN_MEMORY = {"peak_rss_mb": "train_peak_rss_mb", "peak_rss_delta_mb": "train_rss_delta_mb", "peak_cuda_mb": "train_peak_cuda_mb",
                "peak_cuda_delta_mb": "train_cuda_delta_mb", "peak_cuda_reserved_mb": "train_cuda_reserved_mb"}
"""PeakMemory's figures -> the training's (a GPU peak includes the weights loaded before training: the estimate's weights term)."""


@contextmanager
def no_cpu_4bit_repacking(model):
    """Keep bitsandbytes from repacking 4-bit layers for its CPU inference kernel while training.

    Why: on CPU, a Linear4bit layer that runs in eval mode without grad (our validation pass) is
    repacked for a fast AVX512-BF16 kernel that has no backward, so later epochs would silently get
    no gradient through the frozen base. Answering after training may use the fast kernel again.
    """
    layers = [m for m in model.modules() if hasattr(m, "support_avx512bf16_for_cpu")]
    saved = [m.support_avx512bf16_for_cpu for m in layers]
    for m in layers:
        m.support_avx512bf16_for_cpu = False
    try:
        yield
    finally:
        for m, flag in zip(layers, saved):
            m.support_avx512bf16_for_cpu = flag


class FineTune(Strategy):
    """Shared life cycle: build model -> tokenize -> train (resumable) -> answer like every other family."""

    label: ClassVar[str]
    """Prefix of trial names."""
    changes_weights = True
    adapters: ClassVar[bool] = False
    """Low-rank adapters on a frozen base (LoRA, QLoRA): gradient checkpointing is on by default on a GPU."""

    @classmethod
    def expand(cls, options: TrainOptions, spec) -> list[tuple[str, dict[str, Any]]]:
        template_text(spec.task.type, options.template)  # unknown template: a plan error, before any training
        return [(cls.label, options.model_dump(mode="json"))]

    @classmethod
    def for_device(cls, settings: dict[str, Any], kind: str) -> dict[str, Any]:
        """Gradient checkpointing decided for this device type when the spec leaves it open."""
        return {**settings, "gradient_checkpointing": gradient_checkpointing(settings["gradient_checkpointing"], cls.adapters, kind)}

    def adapt(self, model):
        """Mark what trains; returns the model to train (possibly a peft wrapper)."""
        raise NotImplementedError

    def serving_model(self, model):
        """The trained model as it answers: as trained, unless a method trained in another precision."""
        return model

    def load(self):
        """(model, tokenizer) on the trial's device; quantized to 4 bits when the settings name a quant_type."""
        from baselines.models import load_model

        s = self.settings
        quant = None
        if s.get("quant_type"):
            from transformers import BitsAndBytesConfig

            quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=s["quant_type"], bnb_4bit_use_double_quant=s["double_quant"],
                                       bnb_4bit_compute_dtype=torch_dtype(self.device.precision))
        model, tokenizer = load_model(self.ctx.spec.model, device=self.device.device, quantization_config=quant)
        if quant is not None:  # peft casts every weight it did not quantize (embeddings, head, norms) to fp32
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=s["gradient_checkpointing"])
        return model, tokenizer

    def prepare(self) -> None:
        import torch

        from baselines.engine import LanguageModel
        from evaluators.meters import PeakMemory

        self.device = probe(self.ctx.device)
        self.settings = type(self).for_device(self.settings, self.device.type)
        s, spec, splits = self.settings, self.ctx.spec, self.ctx.splits
        opts = type(self).Options.model_validate(s)
        random.seed(spec.seed)
        torch.manual_seed(spec.seed)  # adapter initialisation is part of the result
        base, tokenizer = self.load()
        model = self.adapt(base)
        self.weights_mb = weights_mb(model)
        self.lm = LanguageModel(model, tokenizer)
        self.template = template_text(spec.task.type, s["template"])
        train_ex, val_ex, self.val_source = validation_split(splits.train, splits.validation, s["validation_fraction"], spec.seed)
        encode = lambda exs: [tokenize(self.lm, self.template, ex, splits.labels, s["max_seq_len"]) for ex in exs]  # noqa: E731
        train_tok, val_tok = encode(train_ex), encode(val_ex)
        self.n_train, self.n_val = len(train_tok), len(val_tok)
        self.longest = max((len(t.input_ids) for t in train_tok), default=0)
        self.warnings = data_warnings(splits.train, splits.labels, spec.task.type, sum(t.truncated for t in train_tok), s["max_seq_len"])
        if not val_tok:
            self.warnings.append("no validation split: early stopping and the overfitting check are off")
        self.optimizer = optimizer_name(bool(s.get("quant_type")), self.device.type)
        with PeakMemory(self.device.device) as memory, no_cpu_4bit_repacking(model):
            self.state = train(model, train_tok, val_tok, opts, seed=spec.seed, pad_id=tokenizer.pad_token_id,
                               checkpoints=self.ctx.trial_dir / "checkpoints", precision=self.device.precision,
                               optimizer_name=self.optimizer, progress=self.ctx.progress)
        if not self.state.get("reused_finished_training"):  # a reload's memory is not the training's: it keeps the original figures
            self.state["train_memory"] = {TRAIN_MEMORY[k]: v for k, v in memory.as_dict().items()}
            remember(self.ctx.trial_dir / "checkpoints", train_memory=self.state["train_memory"])
        self.lm.model = self.serving_model(model)
        if self.state.get("resumed_from_epoch"):
            self.warnings.append(f"training resumed from the checkpoint of epoch {self.state['resumed_from_epoch']}")
        self._export()

    def _export(self) -> None:
        """A peft adapter folder a user can load (`PeftModel.from_pretrained`); full fine-tuning keeps its checkpoint."""
        if hasattr(self.lm.model, "peft_config"):
            self.lm.model.save_pretrained(self.ctx.trial_dir / "adapter")

    def predict(self, examples: list[Example]) -> list[Prediction]:
        from baselines.answer import answer

        self.lm.model.eval()
        prompts = [messages(self.template, ex, self.ctx.splits.labels) for ex in examples]
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            self.ctx.progress(done, len(examples), "answering")

        return answer(self.lm, examples, prompts, task_type=self.ctx.spec.task.type, labels=self.ctx.splits.labels,
                      max_new_tokens=self.ctx.max_new_tokens(self.settings["max_new_tokens"], self.lm), progress=tick)

    def resources(self) -> dict[str, Any]:
        state = self.state
        trainable, total = parameter_counts(self.lm.model)
        best = state["best_epoch"] or state["epoch"]
        out = {
            "trainable_params": trainable,
            "total_params": total,
            "trainable_pct": round(100 * trainable / max(total, 1), 3),
            "weights_mb": round(self.weights_mb, 1),
            "adapter_mb": round(dir_mb(self.ctx.trial_dir / "checkpoints" / f"epoch-{best}", "trainable.safetensors"), 2),
            "train_s": round(state["train_s"], 2),
            "training_reused": bool(state.get("reused_finished_training")),  # train_s and memory are then the original training's
            "train_tokens": state["tokens"],
            "tokens_per_s": round(state["tokens"] / state["train_s"], 1) if state["train_s"] else None,
            "train_steps": state["step"],
            **(state.get("train_memory") or {"train_peak_rss_mb": None, "train_rss_delta_mb": None}),
            "longest_train_tokens": self.longest,
            **self.device.as_resources(),
            "optimizer": self.optimizer,
            "gradient_checkpointing": self.settings["gradient_checkpointing"],
            "answered_in": dominant_precision(self.lm.model),
        }
        return out

    def adapted_model(self):
        return self.lm.model, self.lm.tokenizer

    def details(self) -> dict[str, Any]:
        state, flags = self.state, curve_flags(self.state)
        warnings = list(self.warnings)
        if flags["overfitting"]:
            warnings.append(f"overfitting: validation loss rose after epoch {state['best_epoch']} while train loss fell; "
                            f"the epoch-{state['best_epoch']} weights were used")
        if flags["underfitting"]:
            warnings.append("underfitting: train loss barely moved; try more epochs or a larger learning rate")
        return {
            "curves": {"train_loss": state["train_loss"], "val_loss": state["val_loss"]},
            **flags,
            "warnings": warnings,
            "epochs_run": state["epoch"],
            "best_epoch": state["best_epoch"],
            "stopped_early": state["stopped_early"],
            "resumed_from_epoch": state.get("resumed_from_epoch"),
            "training_reused": "a finished training reloaded: train_s and memory are that training's" if state.get("reused_finished_training") else None,
            "n_train": self.n_train,
            "n_validation": self.n_val,
            "validation_from": self.val_source,
            "template": self.settings["template"],
        }


@strategies.register("lora")
class Lora(FineTune):
    """LoRA: low-rank adapters on the frozen base model (peft)."""

    Options = LoraOptions
    simplicity_rank = 4
    adapters = True
    label = "lora"

    @classmethod
    def expand(cls, options: LoraOptions, spec) -> list[tuple[str, dict[str, Any]]]:
        ((_, settings),) = super().expand(options, spec)
        ranks = options.r if isinstance(options.r, list) else [options.r]
        return [(f"{cls.label}-r{r}", {**settings, "r": r}) for r in sorted(set(ranks))]

    def adapt(self, model):
        from peft import LoraConfig, get_peft_model

        s = self.settings
        config = LoraConfig(r=s["r"], lora_alpha=s["alpha"] or 2 * s["r"], lora_dropout=s["dropout"],
                            target_modules=s["target_modules"] or "all-linear", task_type="CAUSAL_LM")
        return get_peft_model(model, config)


@strategies.register("qlora")
class QLora(Lora):
    """QLoRA: LoRA on a 4-bit NF4 base model (bitsandbytes; CPU or CUDA)."""

    Options = QLoraOptions
    simplicity_rank = 5
    label = "qlora"


@strategies.register("ia3")
class IA3(FineTune):
    """IA3: learned rescaling vectors, the cheapest peft method (peft)."""

    Options = IA3Options
    simplicity_rank = 3
    label = "ia3"

    def adapt(self, model):
        from peft import IA3Config, get_peft_model

        s = self.settings
        return get_peft_model(model, IA3Config(target_modules=s["target_modules"], feedforward_modules=s["feedforward_modules"],
                                               task_type="CAUSAL_LM"))


@strategies.register("full")
class Full(FineTune):
    """Full fine-tuning: every weight trains."""

    Options = FullOptions
    simplicity_rank = 6
    label = "full"

    def adapt(self, model):
        import torch

        model = model.to(torch.float32)  # fp32 master weights (a no-op on the CPU); the loop autocasts to 16 bit
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def serving_model(self, model):
        """Back to the serving precision, as every other trial answers and as the base model is scored for forgetting."""
        return model.to(torch_dtype(self.device.precision))
