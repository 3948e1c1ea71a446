"""Classification extras from stored answers: confusion matrices of the pick and of zero-shot, per-label F1 side by side."""

from __future__ import annotations

from collections import Counter
from typing import Any


def _f1(tp: int, fp: int, fn: int) -> tuple[float | None, float | None, float | None]:
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return precision, recall, f1


def classification_extras(trials: list[tuple[str, str, list[dict]]]) -> dict[str, Any] | None:
    """`trials`: (role, trial name, stored answers) of the pick and zero-shot (one entry when they are the same
    trial). Rows of each matrix are gold labels, columns predicted ones; labels are all seen in either."""
    trials = [t for t in trials if t[2]]
    if not trials:
        return None
    labels = sorted({r[k] for _, _, rows in trials for r in rows for k in ("target", "output")})
    matrices, scores = [], {label: [] for label in labels}
    for role, name, rows in trials:
        pairs = Counter((r["target"], r["output"]) for r in rows)
        matrices.append({"role": role, "trial": name, "n": len(rows),
                         "cells": [[pairs[(gold, said)] for said in labels] for gold in labels]})
        for label in labels:
            tp = pairs[(label, label)]
            fp = sum(pairs[(g, label)] for g in labels) - tp
            fn = sum(pairs[(label, s)] for s in labels) - tp
            scores[label].append(_f1(tp, fp, fn))
    support = Counter(r["target"] for r in trials[0][2])
    return {"labels": labels, "matrices": matrices,
            "per_label": [{"label": label, "n": support[label], "scores": scores[label]} for label in labels]}
