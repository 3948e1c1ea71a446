"""Seconds per step, tokens/s and peak memory of lora, qlora and full fine-tuning on the embedded model,
through advisor's training loop and through a plain few-line peft/torch loop, on the same model.

    python benchmarks/finetune_speed.py [--steps 4] [--batch 8] [--seq 64] [--methods lora qlora full] [--threads N]
                                        [--device auto|cpu|cuda]

Each (method, loop) pair runs in a fresh process so its peak RSS is its own. Both loops get the very
same model (built by the advisor strategy's `load` + `adapt`) and the same batches, so the ratio
advisor/plain is the overhead of the loop itself (token-weighted loss, clipping, schedule, bookkeeping).
On a GPU both loops put each batch on the model's device and run under the same autocast precision.
The first step of each run is a warm-up and is not timed. Writes benchmarks/results/finetune_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m-instruct"


def build(method: str, device: str, **options):
    """The model exactly as the advisor strategy trains it on `device` (defaults of its Options, or `options`),
    and the strategy (its `device` says the precision and its optimizer)."""
    from baselines import strategies
    from baselines.device import probe

    cls = strategies.get(method)
    info = probe(device)
    settings = cls.for_device(cls.Options(**options).model_dump(mode="json"), info.type)
    if "r" in settings:
        settings["r"] = 16
    strategy = cls(settings, SimpleNamespace(spec=SimpleNamespace(model=MODEL), device=device))
    strategy.device = info
    model, tokenizer = strategy.load()
    return strategy, strategy.adapt(model), tokenizer, cls.Options(**{**settings, "epochs": 1, "warmup_ratio": 0.0})


def batches(tokenizer, n: int, batch: int, seq: int):
    """Fixed random token sequences; the last quarter of each is the 'answer' the loss sees."""
    import torch

    from baselines.finetune.data import IGNORE, Tokenized

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(100, len(tokenizer) - 100, (n * batch, seq), generator=g).tolist()
    prompt = seq - seq // 4
    return [Tokenized(row, [IGNORE] * prompt + row[prompt:]) for row in ids]


def advisor_loop(strategy, model, tokenizer, data, opts) -> list[float]:
    from baselines.device import optimizer_name
    from baselines.finetune.train import train

    stamps = [time.perf_counter()]
    train(model, data, [], opts, seed=0, pad_id=tokenizer.pad_token_id, checkpoints=None, precision=strategy.device.precision,
          optimizer_name=optimizer_name(bool(strategy.settings.get("quant_type")), strategy.device.type),
          progress=lambda *a: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def plain_loop(strategy, model, tokenizer, data, opts) -> list[float]:
    """What a few-line peft tutorial does: forward (under autocast on a GPU), backward, AdamW step."""
    import torch

    from baselines.device import torch_dtype
    from baselines.finetune.data import collate

    device, precision = next(model.parameters()).device, strategy.device.precision
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=opts.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    model.train()
    times = []
    for i in range(0, len(data), opts.batch_size):
        began = time.perf_counter()
        batch = {k: v.to(device) for k, v in collate(data[i : i + opts.batch_size], tokenizer.pad_token_id).items()}
        with torch.autocast(device.type, dtype=torch_dtype(precision), enabled=precision != "fp32"):
            loss = model(**batch).loss
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # GPU work is asynchronous: time it finished, not queued
        times.append(time.perf_counter() - began)
    return times


def one(method: str, loop: str, steps: int, batch: int, seq: int, device: str) -> dict:
    from baselines.finetune.weights import parameter_counts, weights_mb
    from evaluators.meters import PeakMemory

    strategy, model, tokenizer, opts = build(method, device)
    opts = opts.model_copy(update={"batch_size": batch, "max_seq_len": seq})
    data = batches(tokenizer, steps + 1, batch, seq)
    with PeakMemory(device) as memory:
        times = (advisor_loop if loop == "advisor" else plain_loop)(strategy, model, tokenizer, data, opts)
    timed = times[1:]  # the first step is a warm-up
    s_per_step = sum(timed) / len(timed)
    trainable, _ = parameter_counts(model)
    return {"method": method, "loop": loop, "steps_timed": len(timed), "s_per_step": round(s_per_step, 3),
            "tokens_per_s": round(batch * seq / s_per_step, 1), "train_peak_rss_mb": round(memory.peak_mb, 1),
            "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_cuda_mb": memory.cuda_peak_mb, "precision": strategy.device.precision, "weights_mb": round(weights_mb(model), 1), "trainable_params": trainable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps per run (plus one warm-up)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--methods", nargs="+", default=["lora", "qlora", "full"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default); 1 avoids "
                        "OpenMP spinning when other processes share the cores")
    parser.add_argument("--device", default="auto", help="auto (a GPU when torch sees one), cpu, cuda or cuda:N")
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "LOOP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from baselines.device import resolve_device

    device = resolve_device(args.device)
    if args.one:
        print(json.dumps(one(*args.one, args.steps, args.batch, args.seq, device)))
        return
    rows = []
    for method in args.methods:
        for loop in ("advisor", "plain"):
            cmd = [sys.executable, __file__, "--one", method, loop, "--steps", str(args.steps), "--batch", str(args.batch), "--seq", str(args.seq), "--threads", str(args.threads), "--device", device]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                rows.append({"method": method, "loop": loop, "error": out.stderr.strip().splitlines()[-1]})
            else:
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  {method}/{loop}: {rows[-1]}", file=sys.stderr)
    by = {(r["method"], r["loop"]): r for r in rows}
    print(f"\n{'method':7} {'loop':8} {'s/step':>7} {'tok/s':>7} {'peak MB':>8} {'weights MB':>11} {'trainable':>11} {'advisor/plain':>14}")
    for r in rows:
        if "error" in r:
            print(f"{r['method']:7} {r['loop']:8} failed: {r['error']}")
            continue
        plain = by.get((r["method"], "plain"), {})
        ratio = f"{r['s_per_step'] / plain['s_per_step']:.2f}x" if r["loop"] == "advisor" and plain.get("s_per_step") else ""
        print(f"{r['method']:7} {r['loop']:8} {r['s_per_step']:7.2f} {r['tokens_per_s']:7.0f} {r['process_peak_rss_mb']:8.0f} "
              f"{r['weights_mb']:11.1f} {r['trainable_params']:11,} {ratio:>14}")
    import torch

    result = {"benchmark": "finetune_speed", "model": MODEL, "batch": args.batch, "seq": args.seq, "steps": args.steps,
              "device": device, "torch_threads": args.threads or torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(), "rows": rows}
    path = ROOT / "benchmarks" / "results" / "finetune_speed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
