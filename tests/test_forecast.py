"""The forecast before a run: positions counted on the actual data, seconds from a stated throughput."""

from __future__ import annotations

import pytest

from advisor.forecast import Throughput, forecast_lines, trial_forecast
from advisor.prechecks import validation_pass
from baselines.device import planned, resolve_device
from baselines.engine import LanguageModel
from baselines.models import load_model

STATED = Throughput(forward=1000.0, train=100.0, source="stated")


@pytest.fixture
def plan(classification_task):
    def make(strategies: str):
        return validation_pass(classification_task(strategies), planned(resolve_device("cpu")))[:3]
    return make


def test_prompting_positions_cover_every_template_and_item(plan, tiny_model_dir):
    spec, splits, trials = plan("prompting: {shots: [0, 1], select_on: 2}")
    lm = LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))
    encode = lambda text: lm.tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    zero, one = (trial_forecast(t, splits, spec, encode, STATED, lm.tokenizer.eos_token_id) for t in trials)
    templates = len(trials[0].settings["templates"])
    own = min(lm.count_tokens(e.input) for e in splits.test)
    assert zero.forward_positions > templates * (len(splits.test) + 2) * own
    assert one.forward_positions > zero.forward_positions  # the shot is extra prefix
    assert zero.train_positions == 0 and zero.seconds == pytest.approx(zero.forward_positions / 1000)
    assert not zero.warnings


def test_training_counts_epochs_and_a_slow_run_warns(plan):
    spec, splits, trials = plan("lora: {epochs: 2}")
    lines = forecast_lines(trials, splits, spec, Throughput(forward=0.5, train=0.1, source="stated"))
    assert "training" in lines[1] and lines[-1].startswith("  warning: the whole run is expected to take over an hour")


def test_many_labels_warn(plan, tiny_model_dir):
    spec, splits, trials = plan("prompting: {shots: [0], select_on: 2}")
    splits.labels = [f"label {i}" for i in range(60)]
    lm = LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))
    encode = lambda text: lm.tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    (warning,) = trial_forecast(trials[0], splits, spec, encode, STATED, lm.tokenizer.eos_token_id).warnings
    assert warning.startswith("60 labels")
