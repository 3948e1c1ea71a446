"""Examples/s of label scoring on the embedded model: batched with a shared prompt vs one at a time.

    python benchmarks/scoring.py [--n 32]

Three ways to score C labels for N prompts:
  naive      one forward pass per (prompt, label) pair, full sequence each time (what a simple loop does)
  batch=1    advisor's engine, one prompt at a time, the prompt's KV cache shared by its labels
  batch=B    advisor's engine, B prompts per forward pass (left-padded), cache shared by the labels
Writes benchmarks/results/scoring.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from baselines.engine import LanguageModel
from baselines.templates import builtin_templates, fill

ROOT = Path(__file__).resolve().parent.parent


def naive(lm: LanguageModel, prompts: list[str], labels: list[str]) -> list[int]:
    picks = []
    eos = lm.tokenizer.eos_token_id
    with torch.inference_mode():
        for prompt in prompts:
            p = lm.tokenizer(prompt, add_special_tokens=False).input_ids
            scores = []
            for label in labels:
                c = lm.tokenizer(label, add_special_tokens=False).input_ids + [eos]
                logp = torch.log_softmax(lm.model(torch.tensor([p + c])).logits[0].float(), -1)
                scores.append(sum(logp[len(p) - 1 + j, t].item() for j, t in enumerate(c)))
            picks.append(max(range(len(labels)), key=scores.__getitem__))
    return picks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = [json.loads(line) for line in (ROOT / "examples/support-tickets/test.jsonl").read_text().splitlines()][: args.n]
    labels = sorted({r["label"] for r in rows})
    lm = LanguageModel.load("smollm2-135m-instruct", device="cpu")
    template = builtin_templates("classification")["instruct"]
    prompts = [lm.render([{"role": "user", "content": fill(template, r["text"], labels)}]) for r in rows]
    tokens = sum(lm.count_tokens(p) for p in prompts)
    results, picks = [], {}
    for name, run in [
        ("naive (full sequence per label)", lambda: naive(lm, prompts, labels)),
        ("engine, batch=1", lambda: [max(range(len(labels)), key=s.logprobs.__getitem__) for s in lm.choose(prompts, labels, batch_size=1)]),
        (f"engine, batch={args.batch}", lambda: [max(range(len(labels)), key=s.logprobs.__getitem__) for s in lm.choose(prompts, labels, batch_size=args.batch)]),
    ]:
        start = time.perf_counter()
        picks[name] = run()
        seconds = time.perf_counter() - start
        results.append({"method": name, "examples": len(prompts), "labels": len(labels), "seconds": round(seconds, 2),
                        "examples_per_s": round(len(prompts) / seconds, 2), "prompt_tokens_per_s": round(tokens / seconds)})
    agree = len({tuple(p) for p in picks.values()}) == 1
    print(f"{'method':34} {'examples/s':>11} {'prompt tok/s':>13} {'seconds':>8}")
    for r in results:
        print(f"{r['method']:34} {r['examples_per_s']:>11} {r['prompt_tokens_per_s']:>13} {r['seconds']:>8}")
    print(f"speed-up of batch={args.batch} over naive: {results[0]['seconds'] / results[2]['seconds']:.1f}x; "
          f"all methods pick the same labels: {agree}")
    out = ROOT / "benchmarks/results/scoring.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "same_predictions": agree, "torch_threads": torch.get_num_threads()}, indent=2))


if __name__ == "__main__":
    main()
