"""Task metrics as pure functions over (predictions, references), registered by name."""

from __future__ import annotations

import re
import string
from collections import Counter

from evaluators.base import metrics


@metrics.add_mean("accuracy", "Accuracy", ("classification", "qa", "generation"))
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


@metrics.add_mean("exact_match", "Exact match", ("qa", "generation"))
def exact_match(pred: str, ref: str) -> float:
    return float(normalize_answer(pred) == normalize_answer(ref))


@metrics.add_mean("token_f1", "Token F1", ("qa", "generation"))
def token_f1(pred: str, ref: str) -> float:
    """SQuAD token F1 of one answer."""
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)
