"""`advisor export RUN --format csv|jsonl`: one row per test item x trial, for spreadsheets and notebooks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from advisor.rundir import read_predictions, read_results

COLUMNS = ["trial", "strategy", "item", "input", "target", "output", "score", "prompt_tokens", "output_tokens", "latency_ms", "sources"]


def rows(run: Path) -> list[dict]:
    """Every answer of every finished trial, with its headline-metric score."""
    from evaluators import metrics

    results = read_results(run)
    metric = metrics.get(results["task"]["metric"])
    out = []
    for trial in results["trials"]:
        if trial.get("status") != "ok":
            continue
        for item, p in read_predictions(run, trial).items():
            score = metric.per_item(p["output"], p["target"]) if metric.per_item else None
            out.append({"trial": trial["name"], "strategy": trial["strategy"], "item": item, "input": p.get("input"),
                        "target": p["target"], "output": p["output"], "score": score, "prompt_tokens": p.get("prompt_tokens"),
                        "output_tokens": p.get("output_tokens"), "latency_ms": p.get("latency_ms"),
                        "sources": " ".join(p.get("sources") or [])})
    return out


def export(run: Path, fmt: str) -> str:
    table = rows(run)
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in table)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()
