"""What a RAG trial adds to its metrics: how well retrieval found the gold passage, and how much of each
answer comes from the text retrieved for it."""

from __future__ import annotations

from typing import Any

from contracts.records import Example, Prediction


def _mean(values: list[float], _refs=None) -> float:
    """Mean of per-example scores; the (values, refs) signature is what bootstrap_ci resamples."""
    return sum(values) / len(values)


def _with_ci(name: str, values: list[float], seed: int) -> dict[str, Any]:
    from evaluators.statistics import bootstrap_ci

    return {name: _mean(values), f"{name}_ci95": list(bootstrap_ci(_mean, values, values, seed=seed))}


def retrieval_scores(examples: list[Example], ranked_docs: dict[str, list[str]], gold_field: str, k: int, seed: int) -> dict[str, Any]:
    """recall@k and MRR of the retriever over the test examples that name their gold document."""
    hits, ranks = [], []
    for ex in examples:
        gold = ex.extra.get(gold_field)
        if gold is None:
            continue
        docs = ranked_docs.get(ex.id, [])
        hits.append(float(str(gold) in docs))
        ranks.append(1 / (docs.index(str(gold)) + 1) if str(gold) in docs else 0.0)
    if not hits:
        return {}
    return {**_with_ci("recall_at_k", hits, seed), **_with_ci("mrr", ranks, seed), "retrieval_k": k, "retrieval_n": len(hits)}


def grounding_scores(predictions: list[Prediction], context_text: dict[str, str], seed: int) -> dict[str, Any]:
    """grounding_rate: the mean share of each answer's words found in the text retrieved for it (qa,
    generation). High when answers copy the retrieved passage, low when they are the model's own words."""
    from evaluators.task_metrics import grounding

    shares = [g for p in predictions if (g := grounding(p.output, context_text.get(p.id, ""))) is not None]
    return {**_with_ci("grounding_rate", shares, seed), "grounding_n": len(shares)} if shares else {}
