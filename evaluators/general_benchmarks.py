"""Local general benchmarks as lm-eval tasks, for measuring forgetting offline.

Each benchmark has an adapter (registered in `benchmarks`) that turns the source records (the formats
in ../shared/data, see its SOURCES.md) into {query, choices, gold}. `task_dir` writes those records
and one plain lm-eval task config per benchmark (`dataset_path: json`, no `!function`) under the user
cache dir; lm-eval then scores them by log-likelihood of each choice, exactly as its CLI would:

    lm_eval --model hf --model_args pretrained=<model folder> --include_path <task dir> \
            --tasks advisor_arc_easy --limit 100

The data folder (holding <benchmark>/test.jsonl) comes from forgetting.data_dir in task.yaml or the
ADVISOR_BENCHMARK_DATA environment variable.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from contracts.registry import Registry

Adapter = Callable[[dict], dict]
benchmarks: Registry[Adapter] = Registry("benchmark")


def _letter_choices(record: dict) -> dict:
    """ARC / OpenBookQA / CommonsenseQA: question.stem + labelled choices + answerKey."""
    choices = record["question"]["choices"]
    labels = [c["label"] for c in choices]
    return {"query": f"Question: {record['question']['stem']}\nAnswer:", "choices": [c["text"] for c in choices],
            "gold": labels.index(record["answerKey"])}


for _name in ("arc_easy", "arc_challenge", "openbookqa", "commonsenseqa"):
    benchmarks.register(_name)(_letter_choices)


@benchmarks.register("hellaswag")
def _hellaswag(record: dict) -> dict:
    return {"query": record["ctx"], "choices": record["endings"], "gold": int(record["label"])}


@benchmarks.register("piqa")
def _piqa(record: dict) -> dict:
    return {"query": f"Question: {record['goal']}\nAnswer:", "choices": [record["sol1"], record["sol2"]], "gold": int(record["label"])}


@benchmarks.register("boolq")
def _boolq(record: dict) -> dict:
    return {"query": f"{record['passage']}\nQuestion: {record['question']}?\nAnswer:", "choices": ["no", "yes"],
            "gold": int(bool(record["answer"]))}


@benchmarks.register("mmlu")
def _mmlu(record: dict) -> dict:
    options = "".join(f"\n{letter}. {text}" for letter, text in zip("ABCD", record["choices"]))
    subject = record["subject"].replace("_", " ")
    return {"query": f"The following are multiple choice questions (with answers) about {subject}.\n\n"
                     f"{record['question'].strip()}{options}\nAnswer:", "choices": list("ABCD"), "gold": int(record["answer"])}


TASK_CONFIG = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{query}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def data_dir(configured: Path | None) -> Path | None:
    if configured is not None:
        return configured
    env = os.environ.get("ADVISOR_BENCHMARK_DATA")
    return Path(env) if env else None


def lm_eval_name(benchmark: str) -> str:
    """Our local task name for a benchmark we adapt; other names pass through to lm-eval unchanged."""
    return f"advisor_{benchmark}" if benchmark in benchmarks else benchmark


def task_dir(names: list[str], source: Path, cache: Path) -> Path:
    """Write normalised data + lm-eval configs for the named local benchmarks; returns the folder.

    The folder is named by a hash of the source files, so changed data never reuses stale configs.
    """
    files = {n: source / n / "test.jsonl" for n in names if n in benchmarks}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"benchmark data not found: {', '.join(missing)} (set forgetting.data_dir or ADVISOR_BENCHMARK_DATA)")
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(name.encode() + path.read_bytes())
    out = cache / "lm_eval_tasks" / digest.hexdigest()[:16]
    for name, path in files.items():
        if (out / name / f"{name}.yaml").exists():
            continue
        adapt = benchmarks.get(name)
        rows = [adapt(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        (out / name).mkdir(parents=True, exist_ok=True)
        data = out / name / "test.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        (out / name / f"{name}.yaml").write_text(TASK_CONFIG.format(task=lm_eval_name(name), data=json.dumps(str(data))), encoding="utf-8")
    return out
