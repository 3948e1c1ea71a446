"""Checks that need a model: near-duplicate leakage (real embedder) and over-long inputs (tiny model)."""

from __future__ import annotations

import pytest

from advisor.model_checks import near_duplicates, too_long
from advisor.task import check_task
from baselines.engine import LanguageModel
from baselines.models import load_model

from conftest import write_classification_task, write_jsonl


@pytest.mark.slow  # the real embedded embedder (so not the classification_task fixture, which fakes it)
def test_paraphrased_test_inputs_are_flagged(tmp_path, tiny_model_dir):
    task = write_classification_task(tmp_path, tiny_model_dir)
    write_jsonl(tmp_path / "test.jsonl", [{"text": "My invoice is wrong!", "label": "billing"},
                                          {"text": "the weather is lovely in spring", "label": "shipping"}])
    spec, splits, _ = check_task(task)
    (problem,) = near_duplicates(spec, splits)
    assert problem.severity == "warning" and "1 test input(s) are near-duplicates" in problem.message
    assert "test line 1 ~ train line 1" in problem.message


def test_inputs_longer_than_the_context_are_reported_and_truncated(classification_task, tmp_path, tiny_model_dir):
    task = classification_task()
    long_text = "billing " * 600  # the tiny model's context is 512 positions
    write_jsonl(tmp_path / "test.jsonl", [{"text": long_text, "label": "billing"}, {"text": "short", "label": "shipping"}])
    spec, splits, _ = check_task(task)
    (problem,) = too_long(spec, splits, str(tiny_model_dir))
    assert "1 input(s) longer than the model's context of 512 tokens (lines 1)" in problem.message
    lm = LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))
    (scored,) = lm.choose([long_text], ["billing", "shipping"])
    assert scored.prompt_tokens <= 512 - 2
    (generated,) = lm.generate([long_text], max_new_tokens=4)
    assert generated.prompt_tokens <= 512 - 4
