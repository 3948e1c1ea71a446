"""The answers of a qa / generation task, beyond the headline metric: token F1 beside token precision, token
recall and ROUGE-L (F1 rewards length and common words; precision tells whose words are the reference's), the
generation budget each trial answered under (how it was chosen, how many answers used all of it: those may
be cut off), and for retrieving trials the grounding rate and retrieval recall@k / MRR.

Read from results.json only: each trial's `metrics`, `details.generation_budget` (baselines.budget's
choice), `statistics.budget_hits` and `families`.
"""

from __future__ import annotations

from reports.cells import NOT_MEASURED, NOT_RECORDED, FactTable, count_of, ratio, share

QUALITY = ("token_f1", "token_precision", "token_recall", "rouge_l")


def _budget(table: FactTable, trial: dict) -> str:
    """'20 tokens [1]', the footnote saying how the budget was chosen and how many train answers it cuts."""
    budget = (trial.get("details") or {}).get("generation_budget") or {}
    if budget.get("max_new_tokens") is None:
        return NOT_RECORDED
    how = budget.get("basis") or "how it was chosen is not recorded"
    cut = budget.get("references_cut")
    how += f"; {share(cut)} of the train answers are longer than the budget" if cut is not None else ""
    return f"{budget['max_new_tokens']} tokens {table.footnote(how)}"


def _retrieval(metrics: dict, retrieves: bool | None) -> list[str]:
    """Grounding rate, recall@k and MRR: measured only for a trial that retrieves."""
    if retrieves is None:
        return [NOT_RECORDED] * 3  # a results.json without family facts: whether it retrieves is unknown
    if not retrieves:
        return ["no retrieval"] * 3
    k = metrics.get("retrieval_k")
    recall = ratio(metrics.get("recall_at_k"))
    return [share(metrics.get("grounding_rate")), f"{recall} (k={k})" if k is not None and recall != NOT_MEASURED else recall,
            ratio(metrics.get("mrr"))]


def answers_table(results: dict) -> FactTable | None:
    """One row per finished trial of a qa / generation task; None for classification (no text is generated)."""
    if results["task"].get("type") == "classification":
        return None
    declared, families = results.get("metrics") or {}, results.get("families") or {}
    hits = (results.get("statistics") or {}).get("budget_hits") or {}
    table = FactTable(["trial", *(declared.get(m, {}).get("display_name", m) for m in QUALITY), "grounding rate",
                       "retrieval recall@k", "MRR", "generation budget (max_new_tokens)", "answers that used the whole budget"])
    for t in results["trials"]:
        if t.get("status") != "ok":
            continue
        m, hit = t.get("metrics") or {}, hits.get(t["name"]) or {}
        family = families.get(t["strategy"])
        table.rows.append([t["name"], *(share(m.get(name)) for name in QUALITY),
                           *_retrieval(m, family["retrieves"] if family else None),
                           _budget(table, t), count_of(hit.get("hits"), hit.get("n"))])
    if not table.rows:
        return None
    table.notes += [
        "Token precision: the share of the answer's words found in the reference; recall: the share of the reference's "
        "words found in the answer; F1 is their harmonic mean, ROUGE-L the F-measure of their longest common subsequence.",
        "Grounding rate: the mean share of each answer's words found in the text retrieved for it. Recall@k: the share of "
        "the test questions naming a gold document whose gold document was among those of the k retrieved chunks; MRR: "
        f"the mean of 1 / its rank there (0 when missing); {NOT_MEASURED} when the test set names no gold documents.",
        "An answer that used the whole generation budget stopped at max_new_tokens and may be cut off.",
    ]
    return table
