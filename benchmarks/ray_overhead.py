"""N short trials: the local executor (one after another, a worker process each) vs Ray with 2 workers.

    python benchmarks/ray_overhead.py [--n 6] [--test 12]

The trials are N prompting trials (0..N-1 shots, one template) of the embedded model on the first --test
tickets of examples/support-tickets, so each is short and Ray's own costs show. Ray's costs per trial, from
RayExecutor.timings: scheduling and the worker's start (submitted -> the worker runs), the trial's work
outside its measured wall_s (task and data loading, scoring), and the record's way back (worker returns ->
driver has it); plus Ray's start-up once per run. Writes benchmarks/results/ray_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from advisor.ray_executor import RayExecutor
from advisor.run_loop import LocalExecutor, compare

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "support-tickets"


def _task(folder: Path, n: int, test: int) -> Path:
    task = folder / "task.yaml"
    task.write_text(f"name: ray-overhead\nmodel: smollm2-135m-instruct\ntask: {{type: classification}}\n"
                    f"data: {{train: {EXAMPLE / 'train.jsonl'}, test: {EXAMPLE / 'test.jsonl'}, input: text, target: label, id: id, "
                    f"test_limit: {test}}}\nmetric: accuracy\nseed: 0\n"
                    f"strategies:\n  prompting: {{shots: {list(range(n))}, templates: [terse]}}\n", encoding="utf-8")
    return task


def _trials(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())["trials"]


def main() -> None:
    import ray

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=6, help="trials")
    parser.add_argument("--test", type=int, default=12, help="test examples per trial")
    args = parser.parse_args()
    quiet = Console(stderr=True, quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        task = _task(Path(tmp), args.n, args.test)
        began = time.perf_counter()
        local = compare(task, out=Path(tmp) / "local", executor=LocalExecutor(), console=quiet)
        local_s = time.perf_counter() - began
        began = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        startup_s = time.perf_counter() - began
        executor = RayExecutor()
        began = time.perf_counter()
        on_ray = compare(task, out=Path(tmp) / "ray", executor=executor, console=quiet)
        ray_s = time.perf_counter() - began
        ray.shutdown()
        local_trials, ray_trials = _trials(local), _trials(on_ray)
    same = [t["metrics"] for t in local_trials] == [t["metrics"] for t in ray_trials]
    per_trial = {}
    for t in ray_trials:
        clock = executor.timings[t["id"]]
        per_trial[t["name"]] = {"scheduling_and_worker_start_s": clock["started"] - clock["submitted"],
                                "outside_wall_s": clock["ended"] - clock["started"] - t["resources"]["wall_s"],
                                "result_transfer_s": clock["received"] - clock["ended"], "wall_s": t["resources"]["wall_s"]}
    mean = {k: statistics.mean(v[k] for v in per_trial.values()) for k in next(iter(per_trial.values()))}
    local_wall = statistics.mean(t["resources"]["wall_s"] for t in local_trials)
    result = {"n_trials": args.n, "test_examples": args.test, "local_s": round(local_s, 1), "ray_s": round(ray_s, 1),
              "ray_startup_s": round(startup_s, 1), "wall_ratio_local_over_ray": round(local_s / ray_s, 2),
              "local_per_trial_s": round(local_s / args.n, 2), "local_trial_wall_s_mean": round(local_wall, 2),
              "ray_per_trial_mean": {k: round(v, 3) for k, v in mean.items()}, "same_metrics": same,
              "load_average_1min_at_end": os.getloadavg()[0], "cpus": os.cpu_count(),
              "ray_per_trial": {k: {m: round(x, 3) for m, x in v.items()} for k, v in per_trial.items()}}
    table = Table(title=f"{args.n} prompting trials, {args.test} test tickets each (2 CPU cores; Ray: 2 workers)")
    for column in ("", "seconds"):
        table.add_column(column, justify="right" if column else "left")
    rows = [("local executor, whole run", local_s), ("Ray, whole run (Ray already started)", ray_s),
            ("Ray start-up (ray.init, once)", startup_s), ("per trial: scheduling + worker start", mean["scheduling_and_worker_start_s"]),
            ("per trial: worker time outside wall_s", mean["outside_wall_s"]), ("per trial: record back to driver", mean["result_transfer_s"]),
            ("per trial: measured wall_s on Ray", mean["wall_s"]), ("per trial: measured wall_s locally", local_wall)]
    for label, seconds in rows:
        table.add_row(label, f"{seconds:.2f}")
    Console().print(table)
    print(f"wall-time ratio local / Ray: {local_s / ray_s:.2f} (Ray start-up not counted; with it: {local_s / (ray_s + startup_s):.2f}); "
          f"same metrics: {same}; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "ray_overhead.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
