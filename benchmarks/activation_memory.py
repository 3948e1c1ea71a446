"""Activation memory of one training step on the embedded model: what autograd stores, what the
estimator says, and how far the process's resident memory grows.

    python benchmarks/activation_memory.py [--batch 8] [--seq 109]

For full fine-tuning and LoRA (with and without dropout), each in a fresh process: the bytes of the
tensors autograd saves for backward during one forward (counted once per storage, parameters
excluded, through `torch.autograd.graph.saved_tensors_hooks`), against the estimator's activation
term (`advisor.estimate.estimate_for_trial`), and the peak RSS growth from that forward through two optimizer steps. The
first two should agree; the third shows what a CPU adds on top (transient buffers in backward,
memory the C allocator keeps). Writes benchmarks/results/activation_memory.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from finetune_speed import MODEL, batches, build

ROOT = Path(__file__).resolve().parent.parent
CASES = {"full": ("full", {}), "lora": ("lora", {"dropout": 0.05}), "lora-no-dropout": ("lora", {"dropout": 0.0})}


def saved_tensor_mb(model, batch) -> float:
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(seen.values()) / 2**20


def one(case: str, batch_size: int, seq: int) -> dict:
    import torch

    from advisor.estimate import estimate_for_trial
    from baselines.finetune.data import collate
    from baselines.models import resolve
    from evaluators.meters import PeakMemory

    method, options = CASES[case]
    model, tokenizer, _ = build(method, **options)
    model.train()
    data = batches(tokenizer, 3, batch_size, seq)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    with PeakMemory() as memory:  # from the first forward on: the allocator keeps what it once held
        saved = saved_tensor_mb(model, collate(data[:batch_size], tokenizer.pad_token_id))
        for i in range(1, 3):
            model(**collate(data[i * batch_size : (i + 1) * batch_size], tokenizer.pad_token_id)).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    est = estimate_for_trial(Path(resolve(MODEL)) / "config.json", method, seq, batch_size, 16, lora_dropout=options.get("dropout", 0.0))
    terms = est["estimated_mb"]
    return {"case": case, "saved_activations_mb": round(saved, 1), "estimated_activations_mb": terms["activations"],
            "estimated_training_mb": round(est["estimated_total_mb"] - terms["weights"], 1),
            "rss_growth_mb": round(memory.peak_mb - memory.start_mb, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=109, help="tokens per example (the demo's longest training example)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.batch, args.seq)))
        return
    rows = []
    for case in CASES:
        out = subprocess.run([sys.executable, __file__, "--one", case, "--batch", str(args.batch), "--seq", str(args.seq)],
                             capture_output=True, text=True, cwd=ROOT)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0
                    else {"case": case, "error": out.stderr.strip().splitlines()[-1]})
        print(f"  {rows[-1]}", file=sys.stderr)
    print(f"\n{'case':16} {'saved MB':>9} {'estimated MB':>13} {'est/saved':>10} {'est. training MB':>17} {'RSS growth MB':>14}")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:16} failed: {r['error']}")
            continue
        print(f"{r['case']:16} {r['saved_activations_mb']:9.0f} {r['estimated_activations_mb']:13.0f} "
              f"{r['estimated_activations_mb'] / r['saved_activations_mb']:10.2f} {r['estimated_training_mb']:17.0f} {r['rss_growth_mb']:14.0f}")
    path = ROOT / "benchmarks" / "results" / "activation_memory.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": "activation_memory", "model": MODEL, "batch": args.batch, "seq": args.seq, "rows": rows},
                               indent=2) + "\n")
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
