"""Where each weight-changing trial's training came from: done in the trial, or reused (its own finished
training reloaded from the checkpoint, or another trial's under fine-tuning + retrieval). Reused training
keeps its original figures: the time, memory and one-time cost shown are the original training's, never the
seconds the reload took.

Read from results.json only: `resources.training_reused` (a fine-tuned trial), `resources.training_from` and
`details.finetune.training_reused` (a trial answering with another trial's weights), `families`.
"""

from __future__ import annotations

from reports.cells import NOT_MEASURED, NOT_RECORDED, FactTable, dollars, seconds


def _origin(resources: dict, details: dict) -> str:
    source = resources.get("training_from")
    if source:
        if "training_reused" not in (details.get("finetune") or {}):
            return f"the weights of {source}; whether its training was reused is {NOT_RECORDED}"
        if details["finetune"]["training_reused"]:
            return f"reused: the finished training of {source}, reloaded from its checkpoint"
        return f"trained in this trial (in the checkpoint folder of {source}, which had not finished it)"
    if "training_reused" not in resources:
        return f"whether the training was reused is {NOT_RECORDED}"
    if resources["training_reused"]:
        return "reused: this trial's own finished training, reloaded from its checkpoint"
    return "trained in this trial"


def _memory(resources: dict) -> str:
    peak = resources.get("train_peak_rss_mb")
    if peak is not None:
        return f"{peak:,.0f} MB"
    return f"in the record of {resources['training_from']}" if resources.get("training_from") else NOT_MEASURED


def training_table(results: dict) -> FactTable | None:
    """One row per finished trial whose family changes weights; None when there is none."""
    families = results.get("families") or {}
    table = FactTable(["trial", "training", "training time", "training peak RSS", "one-time $ (the training included)"])
    for t in results["trials"]:
        if t.get("status") != "ok" or not families.get(t["strategy"], {}).get("changes_weights"):
            continue
        res, details = t.get("resources") or {}, t.get("details") or {}
        table.rows.append([t["name"], _origin(res, details), seconds(res.get("train_s")), _memory(res),
                           dollars((t.get("cost") or {}).get("one_time_usd"))])
    if not table.rows:
        return None
    table.notes.append("A reused training is charged at its original time: the training time and peak memory are those of "
                       "the run that trained, and the one-time cost counts that time, not the seconds the reload took.")
    return table
