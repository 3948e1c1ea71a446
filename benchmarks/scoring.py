"""Label scoring side by side on the embedded model: same prompts, same labels, one run.

    python benchmarks/scoring.py --task clinc150 --n 16 --slow-n 1
    python benchmarks/scoring.py --task clinc150 --n 16 --slow-n 0 --template terse   # labels not in the prompt
    python benchmarks/scoring.py --task tickets --n 48

Four ways to pick a label for each prompt:
  naive      one forward pass per (prompt, label) pair over the full sequence
  lm-eval    lm-eval's multiple-choice path: HFLM.loglikelihood over the in-memory model, one request
             per (prompt, label); the continuation is the label plus the end-of-turn token, as advisor scores it
  previous   advisor's engine before issue 18: each batch of prompts run once (left-padded), its KV
             cache repeated per label (batch_repeat_interleave), the label tokens run on top
  search     advisor's engine now (baselines/label_search.py): shared prefix once, label trie under
             tree attention, branch and bound
naive and lm-eval run on the first --slow-n prompts only (with 150 labels they take minutes per prompt).
tasks: clinc150 (150 intents, ../shared/data/clinc150), tickets (examples/support-tickets, 6 labels).
Prints a table and writes benchmarks/results/scoring-<task>-<template>.json: items/s, peak RSS, whether every
method picked the same labels as the search on the prompts both ran, and the speed-up of the search.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import torch

from baselines.engine import LanguageModel
from baselines.templates import builtin_templates, fill
from evaluators.meters import PeakMemory

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("ADVISOR_BENCHMARK_DATA") or ROOT.parent / "shared" / "data")


def load_task(name: str) -> tuple[list[str], list[str]]:
    """(inputs, sorted labels) of the test set."""
    if name == "clinc150":
        read = lambda f: [json.loads(x) for x in (DATA / "clinc150" / f).read_text().splitlines()]  # noqa: E731
        return [r["text"] for r in read("test.jsonl")], sorted({r["intent"] for r in read("train.jsonl")})
    rows = [json.loads(x) for x in (ROOT / "examples/support-tickets/test.jsonl").read_text().splitlines()]
    return [r["text"] for r in rows], sorted({r["label"] for r in rows})


def naive(lm: LanguageModel, prompts: list[str], labels: list[str]) -> list[int]:
    eos, picks = lm.tokenizer.eos_token_id, []
    for prompt in prompts:
        p, scores = lm._encode(prompt), []
        for label in labels:
            c = lm._encode(label) + [eos]
            logp = torch.log_softmax(lm.model(torch.tensor([p + c])).logits[0].float(), -1)
            scores.append(sum(logp[len(p) - 1 + j, t].item() for j, t in enumerate(c)))
        picks.append(max(range(len(labels)), key=scores.__getitem__))
    return picks


def lm_eval_path(lm: LanguageModel, prompts: list[str], labels: list[str], batch: int) -> list[int]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    hf = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch)
    eos = lm.tokenizer.eos_token
    requests = [Instance("loglikelihood", {}, (p, label + eos), idx) for p in prompts for idx, label in enumerate(labels)]
    scores = [ll for ll, _ in hf.loglikelihood(requests, disable_tqdm=True)]
    rows = [scores[i : i + len(labels)] for i in range(0, len(scores), len(labels))]
    return [max(range(len(labels)), key=row.__getitem__) for row in rows]


def previous(lm: LanguageModel, prompts: list[str], labels: list[str], batch: int, logit_budget: int = 64 * 2**20) -> list[int]:
    """The engine's label scoring before issue 18, kept here (only) as the baseline."""
    eos = lm.tokenizer.eos_token_id
    choice_ids = [lm._encode(c) + [eos] for c in labels]
    encoded = [lm._encode(p, reserve=max(map(len, choice_ids))) for p in prompts]
    picks = []
    for start in range(0, len(encoded), batch):
        ids, mask = lm._left_pad(encoded[start : start + batch])
        out = lm.model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0), use_cache=True)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        n, width = ids.shape[0], max(map(len, choice_ids))
        per_chunk = max(1, logit_budget // (n * width * out.logits.shape[-1]))
        totals = torch.zeros(n, len(labels))
        for c0 in range(0, len(labels), per_chunk):
            chunk = choice_ids[c0 : c0 + per_chunk]
            cache = out.past_key_values if c0 + per_chunk >= len(labels) else copy.deepcopy(out.past_key_values)
            totals[:, c0 : c0 + len(chunk)] = _previous_chunk(lm, cache, first, mask, chunk)
        picks += [max(range(len(labels)), key=row.__getitem__) for row in totals.tolist()]
    return picks


def _previous_chunk(lm: LanguageModel, cache, first, mask, chunk: list[list[int]]):
    n, c, width = first.shape[0], len(chunk), max(len(x) for x in chunk)
    pad = lm.tokenizer.pad_token_id
    cont = torch.tensor([x + [pad] * (width - len(x)) for x in chunk]).repeat(n, 1)
    cmask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in chunk]).repeat(n, 1)
    cache.batch_repeat_interleave(c)
    attn = torch.cat([mask.repeat_interleave(c, 0), cmask], dim=1)
    positions = mask.sum(-1).repeat_interleave(c)[:, None] + torch.arange(width)
    logits = lm.model(input_ids=cont, attention_mask=attn, position_ids=positions, past_key_values=cache).logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    token_lp = torch.empty(n * c, width)
    token_lp[:, 0] = first.repeat_interleave(c, 0).gather(1, cont[:, :1]).squeeze(1)
    if width > 1:
        token_lp[:, 1:] = logp[:, :-1].gather(2, cont[:, 1:, None]).squeeze(2)
    return (token_lp * cmask).sum(1).view(n, c)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=["clinc150", "tickets"], default="clinc150")
    parser.add_argument("--template", default="instruct", help="built-in classification template")
    parser.add_argument("--n", type=int, default=16, help="prompts for the two engines")
    parser.add_argument("--slow-n", type=int, default=1, help="prompts for naive and lm-eval")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    inputs, labels = load_task(args.task)
    lm = LanguageModel.load("smollm2-135m-instruct", device="cpu")
    template = builtin_templates("classification")[args.template]
    prompts = [lm.render([{"role": "user", "content": fill(template, x, labels)}]) for x in inputs[: args.n]]
    slow = prompts[: args.slow_n]
    methods = [
        ("search (now)", prompts, lambda: [s.best for s in lm.choose(prompts, labels, batch_size=args.batch)]),
        ("previous engine", prompts, lambda: previous(lm, prompts, labels, args.batch)),
        ("naive", slow, lambda: naive(lm, slow, labels)),
        ("lm-eval loglikelihood", slow, lambda: lm_eval_path(lm, slow, labels, args.batch)),
    ]
    rows, picks = [], {}
    for name, items, run in methods:
        if not items:
            continue
        with torch.inference_mode(), PeakMemory() as mem:
            start, cpu = time.perf_counter(), os.times()
            picks[name] = run()
            seconds, cpu_end = time.perf_counter() - start, os.times()
        rows.append({"method": name, "items": len(items), "seconds": round(seconds, 2),
                     "items_per_s": round(len(items) / seconds, 4), **mem.as_dict(),
                     "user_s": round(cpu_end.user - cpu.user, 1), "system_s": round(cpu_end.system - cpu.system, 1),
                     "same_choices_as_search": picks[name] == picks["search (now)"][: len(items)]})
    new = rows[0]["items_per_s"]
    for r in rows:
        r["search_speedup"] = round(new / r["items_per_s"], 1)
    print(f"task {args.task}: {len(labels)} labels, template {args.template}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}; search picked {len(set(picks['search (now)']))} distinct labels")
    print(f"{'method':24} {'items':>5} {'items/s':>9} {'seconds':>8} {'peak RSS MB':>11} {'same':>5} {'search x':>9}")
    for r in rows:
        print(f"{r['method']:24} {r['items']:>5} {r['items_per_s']:>9} {r['seconds']:>8} {r['peak_rss_mb']:>11} "
              f"{'yes' if r['same_choices_as_search'] else 'NO':>5} {r['search_speedup']:>9}")
    out = ROOT / f"benchmarks/results/scoring-{args.task}-{args.template}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"task": args.task, "labels": len(labels), "template": args.template, "rows": rows,
                               "picks": picks, "torch_threads": torch.get_num_threads(),
                               "load_average_1m": round(os.getloadavg()[0], 1)}, indent=2))


if __name__ == "__main__":
    main()
