"""The scoring engine: the shared-prefix batched label scoring must equal naive full-sequence scoring."""

from __future__ import annotations

import pytest
import torch

from baselines.engine import LanguageModel
from baselines.models import load_model

PROMPTS = ["Text: my invoice is wrong\nLabel:", "Text: where is the parcel that I ordered last week\nLabel:", "hi"]
LABELS = ["billing", "shipping", "account access", "x"]


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))


def naive_logprob(lm: LanguageModel, prompt: str, choice: str) -> float:
    tok = lm.tokenizer
    p = tok(prompt, add_special_tokens=False).input_ids
    c = tok(choice, add_special_tokens=False).input_ids + [tok.eos_token_id]
    with torch.no_grad():
        logits = lm.model(torch.tensor([p + c])).logits[0]
    logp = torch.log_softmax(logits, -1)
    return sum(logp[len(p) - 1 + j, t].item() for j, t in enumerate(c))


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_batched_choice_scoring_matches_naive(lm, batch_size):
    scored = lm.choose(PROMPTS, LABELS, batch_size=batch_size)
    for prompt, s in zip(PROMPTS, scored):
        assert s.logprobs == pytest.approx([naive_logprob(lm, prompt, c) for c in LABELS], abs=1e-3)
        assert s.prompt_tokens == lm.count_tokens(prompt)


def test_choice_chunking_under_a_small_logit_budget(lm, monkeypatch):
    import baselines.engine as engine

    expected = [x for s in lm.choose(PROMPTS, LABELS, batch_size=4) for x in s.logprobs]
    monkeypatch.setattr(engine, "_LOGIT_BUDGET", 1)  # forces one label per chunk, cache copied per chunk
    assert [x for s in lm.choose(PROMPTS, LABELS, batch_size=4) for x in s.logprobs] == pytest.approx(expected, abs=1e-4)


def test_batched_generation_matches_one_at_a_time(lm):
    batched = lm.generate(PROMPTS, max_new_tokens=5, batch_size=3)
    single = [lm.generate([p], max_new_tokens=5, batch_size=1)[0] for p in PROMPTS]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(0 < g.output_tokens <= 5 for g in batched)
