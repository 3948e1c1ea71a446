"""Task metrics and bootstrap intervals, table-driven."""

from __future__ import annotations

import pytest

from evaluators import metrics
from evaluators.statistics import bootstrap_ci, score_all


@pytest.mark.parametrize(
    ("name", "preds", "refs", "expected"),
    [
        ("accuracy", ["a", "b", "a"], ["a", "a", "a"], 2 / 3),
        ("macro_f1", ["a", "a", "b", "b"], ["a", "b", "b", "b"], (2 / 3 + 0.8) / 2),
        ("macro_f1", ["a", "a"], ["a", "a"], 1.0),
        ("exact_match", ["The Paris.", "london"], ["paris", "Berlin"], 0.5),
        ("token_f1", ["the big red car"], ["red car"], 0.8),
        ("token_f1", ["red bus"], ["red car"], 0.5),
        ("token_f1", [""], ["x"], 0.0),
    ],
)
def test_metric_values(name, preds, refs, expected):
    assert metrics.get(name).fn(preds, refs) == pytest.approx(expected)


def test_bootstrap_ci_brackets_the_value_and_shrinks_with_more_data():
    fn = metrics.get("accuracy").fn
    small = bootstrap_ci(fn, ["a", "b"] * 10, ["a"] * 20)
    large = bootstrap_ci(fn, ["a", "b"] * 200, ["a"] * 400)
    assert small[0] < 0.5 < small[1] and large[0] < 0.5 < large[1]
    assert large[1] - large[0] < small[1] - small[0]


@pytest.mark.parametrize("name", ["accuracy", "exact_match", "token_f1"])
def test_item_score_bootstrap_equals_recomputing_the_metric(name):
    """The vectorised path (resampling per-item scores) is the same statistic as recomputing `fn` per draw."""
    from dataclasses import replace

    from evaluators.comparisons import paired_bootstrap

    metric = metrics.get(name)
    a, b = ["red car", "the bus", "a train", "blue"] * 6, ["red", "bus", "the plane", "blue sky"] * 6
    refs = ["red car", "bus", "train", "blue"] * 6
    fast = bootstrap_ci(metric.fn, a, refs, seed=1, per_item=metric.per_item)
    assert fast == pytest.approx(bootstrap_ci(metric.fn, a, refs, seed=1))
    slow = replace(metric, per_item=None)
    assert paired_bootstrap(metric, a, b, refs, seed=1)[0] == pytest.approx(paired_bootstrap(slow, a, b, refs, seed=1)[0])


def test_score_all_is_reproducible_for_a_seed():
    """Same seed, same intervals; another seed, other intervals; the point estimate never depends on it."""
    names, preds, refs = ["accuracy", "macro_f1"], ["a", "b", "c", "a"] * 5, ["a", "b", "b", "c"] * 5
    first, again, other = (score_all(names, preds, refs, seed=s) for s in (3, 3, 4))
    assert first == again
    assert first["accuracy"] == 0.5
    for name in names:
        assert first[name] == other[name] == metrics.get(name).fn(preds, refs)
        # a bootstrap interval depends on the seed; a proportion's (Wilson) interval is exact arithmetic
        assert (first[f"{name}_ci95"] != other[f"{name}_ci95"]) == (metrics.get(name).paired_test == "bootstrap")
        for scores in (first, other):
            lo, hi = scores[f"{name}_ci95"]
            assert lo < scores[name] < hi


def test_unknown_metric_suggests_the_nearest():
    with pytest.raises(KeyError, match="Did you mean 'accuracy'"):
        metrics.get("acurracy")
