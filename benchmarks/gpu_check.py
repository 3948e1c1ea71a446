"""`make gpu-check`: the support-tickets example on the first GPU, every GPU-path promise checked, one table.

    python benchmarks/gpu_check.py [--device cuda:0] [--keep DIR]

Runs `advisor compare examples/support-tickets/task.yaml --device cuda:0 --fresh` (5 trials on the
135M embedded model, forgetting on 40 items of two benchmarks when their data is found; a few minutes
on one modern GPU, under 10), then checks the stored records against the findings of issue 21 and
prints one table. Exit code 0: every check passed; 1: a check failed (each failure is printed); 2: no
GPU (a CPU-only torch build says '+cpu' in its version: `make setup TORCH=torch`). Writes
benchmarks/results/gpu_check.json.

Checks, by finding: (1) every trial has a CUDA peak and reserved figure, fine-tuned ones a training
peak; (2) the training memory estimate within STATED_ERROR_PCT of the training peak, weights on both
sides; (3) every trial ran in the GPU's precision (bf16 at compute capability 8.0+, else fp16); (4)
full fine-tuning answered in that precision; (5) p95 latency within the example's max_latency_ms;
(6) the embedder loads on the GPU; (7) records say device 'cuda' and name the card; (8) LoRA and
QLoRA trained with gradient checkpointing, and the answering batch on the GPU is larger than the
CPU's; (9) the GPU plan's trial ids differ from the CPU plan's; (11) forgetting measured for every
fine-tuned trial, the base scores stored by their own worker; (12) the cost basis is the GPU's;
(13) benchmarks/finetune_speed.py trains on the GPU. (10) is checked on the CPU by tests/test_device.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "support-tickets" / "task.yaml"
STATED_ERROR_PCT = 50
"""How far the training memory estimate may miss the measured CUDA peak (the estimator ignores
allocator rounding and kernel workspaces, and lm-eval's and peft's transient copies)."""
FINE_TUNED = ("lora", "qlora", "full")


def task_copy(folder: Path) -> tuple[Path, str]:
    """The example with absolute data paths and forgetting data found here (or forgetting off, said so)."""
    import os

    spec = yaml.safe_load(EXAMPLE.read_text())
    for split in ("train", "test"):
        spec["data"][split] = str(EXAMPLE.parent / spec["data"][split])
    candidates = [EXAMPLE.parent / spec["forgetting"]["data_dir"], ROOT / "shared" / "data", ROOT.parent / "shared" / "data"]
    if os.environ.get("ADVISOR_BENCHMARK_DATA"):
        candidates.insert(0, Path(os.environ["ADVISOR_BENCHMARK_DATA"]))
    found = next((c.resolve() for c in candidates if (c / "arc_easy").is_dir()), None)
    if found:
        spec["forgetting"]["data_dir"] = str(found)
        note = f"forgetting data: {found}"
    else:
        del spec["forgetting"]
        note = "forgetting: no benchmark data found (set ADVISOR_BENCHMARK_DATA); checks 11 skipped"
    path = folder / "task.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path, note


def advisor(*args: str, timeout: int = 540) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "advisor", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def plan_ids(task: Path, device: str) -> dict[str, str]:
    out = advisor("compare", str(task), "--dry-run", "--device", device)
    return {line.split()[0]: line.split()[2] for line in out.stdout.splitlines() if "to run" in line}


def gpu_side_checks(device: str) -> dict[str, object]:
    """The embedder's device and the answering batch the engine picks on this GPU, from the real objects."""
    from baselines.device import probe
    from baselines.embedding import Embedder
    from baselines.engine import LanguageModel
    from contracts.spec import EMBEDDED_EMBEDDER, EMBEDDED_MODEL

    lm = LanguageModel.load(EMBEDDED_MODEL, device=device)
    return {"gpu": probe(device).name, "precision": probe(device).precision,
            "embedder_device": str(Embedder(EMBEDDED_EMBEDDER, device=device)._load().device),
            "answer_batch_gpu": lm._batch_size(None, 200, 7)}


def check(run: Path, side: dict, ids: dict, speed: dict) -> tuple[list[list], list[str]]:
    """(table rows, failures) for the stored run."""
    from baselines.device import device_type

    results = json.loads((run / "results.json").read_text())
    spec = results["task"]["spec"]
    failures, rows = [], []

    def expect(ok: bool, finding: int, what: str) -> None:
        if not ok:
            failures.append(f"({finding}) {what}")

    for t in results["trials"]:
        res, name = t.get("resources") or {}, t["name"]
        expect(t["status"] == "ok", 0, f"{name}: {t['status']}: {t.get('error')}")
        if t["status"] != "ok":
            continue
        expect(res.get("peak_cuda_mb", 0) > 0 and res.get("peak_cuda_reserved_mb", 0) >= res.get("peak_cuda_mb", 0), 1, f"{name}: no CUDA peak")
        expect(res.get("precision") == side["precision"], 3, f"{name}: precision {res.get('precision')}, expected {side['precision']}")
        expect(res.get("device") == "cuda" and res.get("gpu") == side["gpu"], 7, f"{name}: device {res.get('device')}, gpu {res.get('gpu')}")
        expect((t["latency"]["p95_ms"] or 0) <= spec["constraints"]["max_latency_ms"], 5, f"{name}: p95 {t['latency']['p95_ms']} ms")
        expect("GPU" in t["cost"]["basis"], 12, f"{name}: cost basis {t['cost']['basis']}")
        est = t.get("memory_estimate") or {}
        if t["strategy"] in FINE_TUNED:
            expect(res.get("train_peak_cuda_mb", 0) > 0, 1, f"{name}: no training CUDA peak")
            expect(est.get("error_pct") is not None and abs(est["error_pct"]) <= STATED_ERROR_PCT, 2,
                   f"{name}: memory estimate off by {est.get('error_pct')}% (stated: {STATED_ERROR_PCT}%)")
            if t["strategy"] == "full":
                expect(res.get("answered_in") == side["precision"], 4, f"{name}: answered in {res.get('answered_in')}")
            expect(res.get("gradient_checkpointing") is (t["strategy"] != "full"), 8, f"{name}: checkpointing {res.get('gradient_checkpointing')}")
            if "forgetting" in spec:
                expect(t.get("forgetting", {}).get("mean_delta") is not None, 11, f"{name}: forgetting {t.get('forgetting')}")
        rows.append([name, res.get("precision"), res.get("peak_cuda_mb"), res.get("peak_cuda_reserved_mb"), res.get("train_peak_cuda_mb"),
                     est.get("estimated_mb"), est.get("error_pct"), res.get("examples_per_s"), t["latency"]["p95_ms"],
                     round(t["metrics"][results["task"]["metric"]], 3)])
    expect(device_type(side["embedder_device"]) == "cuda", 6, f"embedder on {side['embedder_device']}")
    expect(side["answer_batch_gpu"] > 8, 8, f"answering batch on the GPU: {side['answer_batch_gpu']}")
    expect(ids["cpu"].keys() == ids["cuda"].keys() and not set(ids["cpu"].values()) & set(ids["cuda"].values()), 9, f"ids {ids}")
    if "forgetting" in spec:
        expect(any((run / "forgetting").glob("base-*.json")), 11, "no stored base-model scores")
    expect(speed.get("ok", False), 13, f"finetune_speed on the GPU: {speed.get('error')}")
    return rows, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--keep", type=Path, help="keep the run folder here (default: a temporary folder)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"gpu-check: torch {torch.__version__} sees no CUDA GPU; nothing was run", file=sys.stderr)
        sys.exit(2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        task, note = task_copy(folder)
        ids = {d: plan_ids(task, d) for d in ("cpu", "cuda")}
        ran = advisor("compare", str(task), "--device", args.device, "--out", str(folder / "run"), "--fresh")
        if ran.returncode:
            print(ran.stderr[-4000:], file=sys.stderr)
            sys.exit(1)
        bench = subprocess.run([sys.executable, "benchmarks/finetune_speed.py", "--device", args.device, "--methods", "lora",
                                "--steps", "2"], cwd=ROOT, capture_output=True, text=True, timeout=240)
        rows_ = json.loads((ROOT / "benchmarks" / "results" / "finetune_speed.json").read_text())["rows"] if not bench.returncode else []
        speed = {"ok": bool(rows_) and all("error" not in r and r.get("peak_cuda_mb") for r in rows_), "error": bench.stderr[-300:]}
        side = gpu_side_checks(args.device)
        rows, failures = check(folder / "run", side, ids, speed)
    head = ["trial", "dtype", "peak MB", "reserved MB", "train peak MB", "estimate MB", "error %", "ex/s", "p95 ms", "score"]
    print(f"{side['gpu']} ({args.device}), {side['precision']}; {note}; answering batch on the GPU: {side['answer_batch_gpu']}")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join("" if v is None else str(v) for v in r) + " |")
    out = ROOT / "benchmarks" / "results" / "gpu_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": args.device, **side, "note": note, "columns": head, "rows": rows, "failures": failures}, indent=2) + "\n")
    for f in failures:
        print(f"FAILED {f}")
    print("gpu-check: all checks passed" if not failures else f"gpu-check: {len(failures)} check(s) failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
