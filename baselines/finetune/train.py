"""THE training loop shared by every fine-tuning method (LoRA, QLoRA, IA3, full), with resumable checkpoints.

Why a plain torch loop and not transformers' Trainer (or TRL's SFTTrainer): the loop is ~100 lines a
reader can follow top to bottom (nanoGPT-style), and everything advisor must record is first-hand
here: per-step loss, per-epoch validation loss, the optimisation-only time and token count behind
tokens/s, the exact resume point. With Trainer the same figures come through callbacks, its
checkpoint layout and RNG handling are its own, its defaults move between major versions (the venv
has transformers 5), and QLoRA's paged optimizer or the CPU fallback would be strings in
TrainingArguments rather than one visible line. The methods differ only in how the model is built
(`family.py`); they all call `train()` below.

Checkpoints: after every epoch, `<dir>/epoch-N/` holds the trainable weights (the adapter, or all
weights for full fine-tuning), the optimizer state, the RNG state and `state.json` (step, curves,
early-stopping bookkeeping). Each is written to a temporary folder and renamed, so a kill leaves the
previous checkpoint intact. The learning-rate schedule is a pure function of the step, so the step
is its whole state. `<dir>/finished.json` marks a completed training run (optimizer states are then
deleted): running again only reloads the best weights. A checkpoint belongs to its configuration:
the options, the data sizes, the device type, precision, optimizer and library versions; any change
starts training afresh rather than mixing the two.

Precision: the weights stay as loaded (bf16 or fp16 on a GPU, fp32 master weights for full
fine-tuning) and the forward pass runs under autocast in the device's precision; fp16 adds a
GradScaler (its small gradients would underflow without one). On the CPU all of it is fp32 and the
scaler is off.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from contracts.io import read_json, write_json
from contracts.spec import Strict
from baselines.budget import BUDGET_HELP
from baselines.device import ADAMW, PAGED_ADAMW_8BIT, library_versions, torch_dtype
from baselines.finetune.data import IGNORE, Tokenized, collate


class TrainOptions(Strict):
    """Settings shared by every fine-tuning method (each method's Options extends this)."""

    epochs: int = Field(2, ge=1, description="Passes over the training split.")
    batch_size: int = Field(8, ge=1, description="Examples per training micro-batch (answering batches are sized to the device).")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    lr: float = Field(2e-4, gt=0, description="Peak learning rate.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps spent warming the learning rate up.")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="Decay after warm-up.")
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(1.0, gt=0, description="Gradient clipping; null turns it off.")
    max_seq_len: int = Field(256, ge=16, description="Tokens per example (prompt + answer); longer prompts are cut.")
    validation_fraction: float = Field(0.1, ge=0, lt=0.5, description="Train share held out when the task has no validation split.")
    patience: int = Field(2, ge=1, description="Epochs without a better validation loss before stopping early.")
    gradient_checkpointing: bool | None = Field(None, description="Recompute activations in backward: less memory, ~30% slower "
                                                "(default: on for LoRA and QLoRA on a GPU, off otherwise).")
    template: str = Field("instruct", description="Prompting template used for training and answering.")
    max_new_tokens: int | None = Field(None, ge=1, description=BUDGET_HELP)


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    done = (step - warmup) / max(1, total - warmup)
    return max(0.0, 1.0 - done) if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The micro-batches of one epoch (example indices, shuffled by the seed and epoch); advisor.forecast counts
    their padded positions."""
    import torch

    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def make_optimizer(params, opts: TrainOptions, name: str):
    """The optimizer `baselines.device.optimizer_name` chose: torch AdamW, or bitsandbytes' paged 8-bit AdamW."""
    if name == PAGED_ADAMW_8BIT:
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(params, lr=opts.lr, weight_decay=opts.weight_decay)
    import torch

    return torch.optim.AdamW(params, lr=opts.lr, weight_decay=opts.weight_decay)


def _autocast(device, precision: str):
    """Autocast to the device's 16-bit precision (fp32 weights stay fp32); a no-op in fp32 (the CPU)."""
    import torch

    return torch.autocast(device.type, dtype=torch_dtype(precision), enabled=precision != "fp32")


def _micro_loss(model, batch: dict, device, precision: str = "fp32"):
    """(mean loss over the batch's answer tokens, number of answer tokens, number of real tokens)."""
    batch = {k: v.to(device) for k, v in batch.items()}
    with _autocast(device, precision):
        out = model(**batch)
    return out.loss.float(), int((batch["labels"][:, 1:] != IGNORE).sum()), int(batch["attention_mask"].sum())


def validation_loss(model, data: list[Tokenized], batch_size: int, pad_id: int, precision: str = "fp32") -> float:
    """Mean loss per answer token over the whole validation split."""
    import torch

    device = next(model.parameters()).device
    model.eval()
    total = count = 0.0
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            loss, n, _ = _micro_loss(model, collate(data[i : i + batch_size], pad_id), device, precision)
            total, count = total + loss.item() * n, count + n
    model.train()
    return total / max(count, 1)


def trainable_state(model) -> dict:
    return {name: p.detach().to("cpu").contiguous() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable(model, path: Path) -> None:
    from safetensors.torch import load_file

    saved = load_file(str(path))
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in saved]
    if missing:
        raise RuntimeError(f"checkpoint {path} lacks {len(missing)} trainable tensors (e.g. {missing[0]}); delete it to retrain")
    for name, tensor in saved.items():
        params[name].data.copy_(tensor)


def save_checkpoint(root: Path, model, optimizer, state: dict) -> Path:
    """Write epoch-N/ atomically (temp folder, then rename) and keep only it and the best epoch's."""
    import torch
    from safetensors.torch import save_file

    epoch = state["epoch"]
    final, tmp = root / f"epoch-{epoch}", root / f".epoch-{epoch}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    rng = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
    torch.save(rng, tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in root.glob("epoch-*"):
        if old.name not in (final.name, f"epoch-{state['best_epoch']}"):
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    done = [p for p in root.glob("epoch-*") if (p / "state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def _resume(root: Path, model, optimizer, scaler, fingerprint: dict) -> dict | None:
    """Load the newest checkpoint of this same configuration; None means start from scratch."""
    import torch

    last = latest_checkpoint(root)
    if last is None:
        return None
    state = json.loads((last / "state.json").read_text())
    if state.get("fingerprint") != fingerprint:
        shutil.rmtree(root, ignore_errors=True)  # another configuration's checkpoints: never mix them
        return None
    load_trainable(model, last / "trainable.safetensors")
    device = next(model.parameters()).device  # saved on another GPU index: load onto this one
    optimizer.load_state_dict(torch.load(last / "optimizer.pt", map_location=device, weights_only=False))
    if state.get("grad_scaler"):
        scaler.load_state_dict(state["grad_scaler"])
    rng = torch.load(last / "rng.pt", map_location="cpu", weights_only=False)  # RNG states are CPU tensors
    torch.set_rng_state(rng["cpu"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return state


def _finish(root: Path | None, model, state: dict) -> dict:
    """Put the best epoch's weights in the model, mark training complete and drop optimizer states."""
    state = {**state, "finished": True}
    if root is None:
        return state
    best = state["best_epoch"] or state["epoch"]
    if best != state["epoch"]:
        load_trainable(model, root / f"epoch-{best}" / "trainable.safetensors")
    write_json(root / "finished.json", state)
    for leftover in root.glob("epoch-*/optimizer.pt"):
        leftover.unlink()
    return state


def remember(root: Path, **facts) -> None:
    """Add facts measured around the training (its memory) to `finished.json`, so a reload reports them."""
    if (done := read_json(root / "finished.json")) is not None:
        write_json(root / "finished.json", {**done, **facts})


def train(model, train_data: list[Tokenized], val_data: list[Tokenized], opts: TrainOptions, *, seed: int, pad_id: int,
          checkpoints: Path | None = None, precision: str = "fp32", optimizer_name: str = ADAMW,
          progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Train `model`'s trainable parameters in place; returns the state (curves, timings, resume info).

    `precision` ('fp32', 'bf16' or 'fp16') is the autocast dtype; `optimizer_name` one of baselines.device's."""
    import torch

    device = next(model.parameters()).device
    progress = progress or (lambda *a: None)
    fingerprint = {"options": opts.model_dump(mode="json"), "seed": seed, "n_train": len(train_data), "n_val": len(val_data),
                   "device": device.type, "precision": precision, "optimizer": optimizer_name, "versions": library_versions()}
    if checkpoints is not None and (done := read_json(checkpoints / "finished.json")) and done.get("fingerprint") == fingerprint:
        load_trainable(model, checkpoints / f"epoch-{done['best_epoch'] or done['epoch']}" / "trainable.safetensors")
        return {**done, "reused_finished_training": True}
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], opts, optimizer_name)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")  # fp16 gradients underflow without it
    state = {"fingerprint": fingerprint, "epoch": 0, "step": 0, "train_loss": [], "val_loss": [], "best_epoch": None,
             "best_val": None, "bad_epochs": 0, "stopped_early": False, "train_s": 0.0, "tokens": 0, "resumed_from_epoch": None}
    if checkpoints is not None and (resumed := _resume(checkpoints, model, optimizer, scaler, fingerprint)):
        state = {**resumed, "resumed_from_epoch": resumed["epoch"]}
    if opts.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    micro_per_epoch = math.ceil(len(train_data) / opts.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / opts.grad_accum)
    total = steps_per_epoch * opts.epochs
    warmup = round(opts.warmup_ratio * total)
    model.train()
    for epoch in range(state["epoch"] + 1, opts.epochs + 1):
        if state["stopped_early"]:
            break
        micro = epoch_batches(len(train_data), opts.batch_size, seed, epoch)
        began = time.perf_counter()
        for first in range(0, len(micro), opts.grad_accum):
            group = [collate([train_data[i] for i in idx], pad_id) for idx in micro[first : first + opts.grad_accum]]
            n_group = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in group)
            step_loss = 0.0
            for batch in group:  # token-weighted: every answer token counts the same, whatever its micro-batch
                loss, n, n_tokens = _micro_loss(model, batch, device, precision)
                scaler.scale(loss * (n / max(n_group, 1))).backward()
                step_loss += loss.item() * n / max(n_group, 1)
                state["tokens"] += n_tokens
            if opts.max_grad_norm:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], opts.max_grad_norm)
            lr = opts.lr * lr_factor(state["step"], total, warmup, opts.schedule)
            for g in optimizer.param_groups:
                g["lr"] = lr
            scaler.step(optimizer)  # skipped when fp16 gradients overflowed
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["train_loss"].append({"step": state["step"], "epoch": epoch, "loss": round(step_loss, 5), "lr": lr})
            progress(state["step"], total, f"epoch {epoch}/{opts.epochs} loss {step_loss:.3f}")
        state["train_s"] += time.perf_counter() - began
        state["epoch"] = epoch
        if val_data:
            val = validation_loss(model, val_data, opts.batch_size, pad_id, precision)
            state["val_loss"].append({"epoch": epoch, "step": state["step"], "loss": round(val, 5)})
            if state["best_val"] is None or val < state["best_val"]:
                state.update(best_val=val, best_epoch=epoch, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
                state["stopped_early"] = state["bad_epochs"] >= opts.patience and epoch < opts.epochs
        state["grad_scaler"] = scaler.state_dict()  # {} when off; a float and counters in fp16
        if checkpoints is not None:
            save_checkpoint(checkpoints, model, optimizer, state)
    model.config.use_cache = True
    return _finish(checkpoints, model, state)


def curve_flags(state: dict) -> dict[str, bool]:
    """overfitting: validation loss ended above its best while train loss fell; underfitting: train loss barely moved."""
    train = [p["loss"] for p in state["train_loss"]]
    val = [p["loss"] for p in state["val_loss"]]
    k = max(1, len(train) // 5)
    start, end = (sum(train[:k]) / k, sum(train[-k:]) / k) if train else (0.0, 0.0)
    falling = end < start
    overfitting = len(val) >= 2 and falling and val[-1] > min(val) * 1.01
    underfitting = len(train) >= 2 and start > 0 and (start - end) / start < 0.05
    return {"overfitting": overfitting, "underfitting": underfitting}
