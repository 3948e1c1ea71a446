"""Task metrics as pure functions over (predictions, references), registered by name."""

from __future__ import annotations

import functools
import re
import string
from collections import Counter

from evaluators.base import metrics


@metrics.add_mean("accuracy", "Accuracy", ("classification", "qa", "generation"), paired_test="mcnemar")
def accuracy(pred: str, ref: str) -> float:
    return float(pred == ref)


@metrics.add("macro_f1", "Macro-F1", ("classification",))
def macro_f1(preds: list[str], refs: list[str]) -> float:
    """Unweighted mean of per-class F1 over the classes present in the references or predictions."""
    classes = set(refs) | set(preds)
    if not classes:
        return 0.0
    tp, fp, fn = Counter(), Counter(), Counter()
    for p, r in zip(preds, refs):
        if p == r:
            tp[r] += 1
        else:
            fp[p] += 1
            fn[r] += 1
    f1s = []
    for c in classes:
        denom = 2 * tp[c] + fp[c] + fn[c]
        f1s.append(2 * tp[c] / denom if denom else 0.0)
    return sum(f1s) / len(f1s)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


@metrics.add_mean("exact_match", "Exact match", ("qa", "generation"), paired_test="mcnemar")
def exact_match(pred: str, ref: str) -> float:
    return float(normalize_answer(pred) == normalize_answer(ref))


def _token_overlap(pred: str, ref: str) -> tuple[int, int, int] | None:
    """(shared tokens, answer tokens, reference tokens) after SQuAD normalisation; None when either is empty."""
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    if not p or not r:
        return None
    return sum((Counter(p) & Counter(r)).values()), len(p), len(r)


@metrics.add_mean("token_f1", "Token F1", ("qa", "generation"))
def token_f1(pred: str, ref: str) -> float:
    """SQuAD token F1 of one answer."""
    if (o := _token_overlap(pred, ref)) is None:
        return float(normalize_answer(pred) == normalize_answer(ref))
    common, n_pred, n_ref = o
    if common == 0:
        return 0.0
    precision, recall = common / n_pred, common / n_ref
    return 2 * precision * recall / (precision + recall)


@metrics.add_mean("token_precision", "Token precision", ("qa", "generation"))
def token_precision(pred: str, ref: str) -> float:
    """Share of the answer's tokens found in the reference: long answers of invented text score low here
    while token F1 can still reward their common words."""
    if (o := _token_overlap(pred, ref)) is None:
        return float(normalize_answer(pred) == normalize_answer(ref))
    return o[0] / o[1]


@metrics.add_mean("token_recall", "Token recall", ("qa", "generation"))
def token_recall(pred: str, ref: str) -> float:
    """Share of the reference's tokens the answer contains (cut short by a small generation budget)."""
    if (o := _token_overlap(pred, ref)) is None:
        return float(normalize_answer(pred) == normalize_answer(ref))
    return o[0] / o[2]


@functools.cache
def _rouge():
    from rouge_score import rouge_scorer  # imports nltk: loaded on first use only

    return rouge_scorer.RougeScorer(["rougeL"])


@metrics.add_mean("rouge_l", "ROUGE-L", ("qa", "generation"))
def rouge_l(pred: str, ref: str) -> float:
    """F-measure of the longest common subsequence of words (Google's rouge-score): unlike token F1 it
    needs the shared words in the reference's order, so common words scattered through invented text
    count less."""
    return float(_rouge().score(ref, pred)["rougeL"].fmeasure)


def grounding(answer: str, context: str) -> float | None:
    """Share of the answer's tokens (SQuAD-normalised) that occur in `context`, the text it was given to
    answer from; None for an empty answer."""
    words = normalize_answer(answer).split()
    if not words:
        return None
    seen = set(normalize_answer(context).split())
    return sum(w in seen for w in words) / len(words)
