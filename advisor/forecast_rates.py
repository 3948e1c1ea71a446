"""Rates of the actual model here, each measured for about a second: what advisor.forecast divides the counted work by.

Per model as a trial runs it: the task's model (prompting, RAG), and each fine-tuning method's trainable model
built by the method's own `load` and `adapt` (a 4-bit base for QLoRA, adapters for LoRA), because their passes
and steps cost differently: a training step (forward and backward) per position, an optimizer step per step,
then a forward pass keeping one logit (answering) and one keeping every logit (validation loss, lm-eval).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


LENGTH = 128
"""Tokens of the random sequence every rate is measured on."""


@dataclass(frozen=True)
class Rates:
    forward: float
    """Positions per second of a forward pass keeping the last logit (prompts, label search)."""
    scoring: float
    """Positions per second of a forward pass keeping every logit (validation loss, lm-eval)."""
    pass_s: float
    """Seconds of a forward pass of one token after 128 cached (a label-search round, a generation step at batch 1):
    a pass costs this plus its tokens at the forward rate less this share."""
    train: float
    """Positions per second of a training micro-batch (forward and backward)."""
    optimizer_s: float = 0.0
    """Seconds of one optimizer step (clipping, AdamW over the trainable weights)."""
    load_s: float = 0.0
    """Seconds to load (and for a method, build) the model."""


def method_key(trial) -> str | None:
    """Which trainable model a trial trains (its family and rank); None for a trial that trains nothing here."""
    s = trial.settings
    return f"{trial.family}" + (f"-r{s['r']}" if "r" in s else "") if "epochs" in s else None


def rate(step, positions: int, seconds: float) -> float:
    """Positions (or steps) per second of `step`, run for about `seconds` after one untimed call."""
    step()  # warm-up
    done, began = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds or done == 0:
        step()
        done += positions
    return done / elapsed


def passes(model, ids, seconds: float) -> tuple[float, float, float]:
    """(forward positions/s keeping one logit, keeping every logit and their log-softmax, seconds of a one-token pass)."""
    import torch

    model.eval()
    with torch.inference_mode():
        forward = rate(lambda: model(input_ids=ids, logits_to_keep=1), ids.numel(), seconds)
        scoring = rate(lambda: torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1), ids.numel(), seconds)
    return forward, scoring, step_s(model, ids, 1, seconds)


def training_rate(model, ids, seconds: float) -> float:
    """Positions/s of forward and backward (every weight that requires a gradient gets one)."""
    model.train()
    positions_per_s = rate(lambda: model(input_ids=ids, labels=ids).loss.backward(), ids.numel(), seconds)
    model.zero_grad(set_to_none=True)
    return positions_per_s


def method_rates(trial, spec, splits, device: str, seconds: float = 1.0) -> Rates:
    """A fine-tuning trial's model built as its family builds it, measured: training, optimizer step, then answering."""
    import torch

    from advisor.execute import curve_point
    from advisor.matrix import trial_model
    from baselines import Context, strategies
    from baselines.device import optimizer_name, probe
    from baselines.finetune.family import no_cpu_4bit_repacking
    from baselines.finetune.train import make_optimizer

    cls = strategies.get(trial.family)
    local = trial_model(spec, curve_point(trial, spec, splits)[0], Path(os.devnull))  # a `models:` plan: the trial's own model
    spec, settings = local.spec, local.settings
    strategy = cls(settings, Context(spec, splits, Path(os.devnull), device=device))
    strategy.device = probe(device)
    strategy.settings = cls.for_device(settings, strategy.device.type)
    began = time.perf_counter()
    model, tokenizer = strategy.load()
    model = strategy.adapt(model)
    load_s = time.perf_counter() - began
    ids = torch.randint(0, tokenizer.vocab_size, (1, LENGTH), device=next(model.parameters()).device)
    with no_cpu_4bit_repacking(model):
        train = training_rate(model, ids, seconds)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(trainable, cls.Options.model_validate(strategy.settings),
                                   optimizer_name(bool(settings.get("quant_type")), strategy.device.type))
        model(input_ids=ids, labels=ids).loss.backward()

        def step() -> None:
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()

        optimizer_s = 1 / rate(step, 1, seconds / 2)
        optimizer.zero_grad(set_to_none=True)
    return Rates(*passes(model, ids, seconds), train, optimizer_s, load_s)


def step_s(model, ids, rows: int, seconds: float) -> float:
    """Seconds of one forward pass of one new token for each of `rows` rows of `ids` after them (their cache growing):
    a generation step, or a label-search round of a few tokens."""
    import torch

    from baselines.label_search import cache_keyword

    batch, key = ids.repeat(rows, 1), cache_keyword()
    with torch.inference_mode():
        cache = model(input_ids=batch, use_cache=True, logits_to_keep=1)[key]
        return 1 / rate(lambda: model(input_ids=batch[:, -1:], use_cache=True, logits_to_keep=1, **{key: cache}), 1, seconds)
