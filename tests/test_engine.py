"""The scoring engine: the label search must pick exactly what naive full-sequence scoring picks."""

from __future__ import annotations

import pytest
import torch

from baselines.engine import LanguageModel
from baselines.label_search import Trie, shared_prefix
from baselines.models import load_model

PROMPTS = ["Text: my invoice is wrong\nLabel:", "Text: where is the parcel that I ordered last week\nLabel:", "hi"]
LABELS = ["billing", "shipping", "account access", "x"]
LABEL_SETS = {
    "shared prefixes": ["billing", "billing address", "bill", "shipping", "shipping cost", "ship it", "refund"],
    "one-token labels": ["a", "b", "c", "x", "y", "z"],
    "prefixes of others": ["re", "refund", "refund please", "login", "log", "l"],
    "duplicates": ["printer", "login", "printer", "login"],
}
CHAT = [[{"role": "user", "content": f"Classify the message into one of these categories.\n\nMessage: {text}"}]
        for text in ["my invoice is wrong", "where is my parcel", "cannot log in", "the printer jams", "refund please",
                     "the quick brown fox", "password reset fails", "Question Answer", "billing shipping refund login"]]


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))


@pytest.fixture(scope="module")
def peaked(tiny_model_dir):
    """The tiny model with its output layer scaled up: random weights give near-uniform distributions,
    whose near-ties would test float noise rather than the search; these ones have clear winners."""
    lm = LanguageModel(*load_model(str(tiny_model_dir), device="cpu"))
    with torch.no_grad():
        lm.model.get_output_embeddings().weight.mul_(40)
    return lm


def naive_logprob(lm: LanguageModel, prompt: str, choice: str) -> float:
    tok = lm.tokenizer
    p = tok(prompt, add_special_tokens=False).input_ids
    c = tok(choice, add_special_tokens=False).input_ids + [tok.eos_token_id]
    with torch.no_grad():
        logits = lm.model(torch.tensor([p + c])).logits[0]
    logp = torch.log_softmax(logits, -1)
    return sum(logp[len(p) - 1 + j, t].item() for j, t in enumerate(c))


def naive_choice(lm: LanguageModel, prompt: str, labels: list[str]) -> tuple[int, list[float]]:
    scores = [naive_logprob(lm, prompt, c) for c in labels]
    return max(range(len(labels)), key=scores.__getitem__), scores


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_every_label_scores_match_naive(lm, batch_size):
    scored = lm.choose(PROMPTS, LABELS, batch_size=batch_size, every_label=True)
    for prompt, s in zip(PROMPTS, scored):
        assert s.logprobs == pytest.approx([naive_logprob(lm, prompt, c) for c in LABELS], abs=1e-3)
        assert s.prompt_tokens == lm.count_tokens(prompt)


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("name", LABEL_SETS)
def test_search_picks_what_full_scoring_picks(peaked, name, batch_size):
    labels = LABEL_SETS[name]
    prompts = [peaked.render(m) for m in CHAT]
    searched = peaked.choose(prompts, labels, batch_size=batch_size)
    full = peaked.choose(prompts, labels, batch_size=batch_size, every_label=True)
    for prompt, s, f in zip(prompts, searched, full):
        best, scores = naive_choice(peaked, prompt, labels)
        assert s.best == f.best == best, (prompt, scores)
        assert f.logprobs == pytest.approx(scores, abs=1e-3)
        assert s.logprobs[best] == pytest.approx(scores[best], abs=1e-3)  # finished labels carry exact scores
        assert all(x is None or x == pytest.approx(scores[j], abs=1e-3) for j, x in enumerate(s.logprobs))


@pytest.mark.slow
def test_the_search_prunes_and_stays_exact_in_small_passes(peaked, monkeypatch):
    import baselines.label_search as search

    labels = [f"{a} {b}" for a in ["billing", "shipping", "refund", "login"] for b in ["now", "later", "fox", "dog"]]
    prompts = [peaked.render(m) for m in CHAT]
    expected = [naive_choice(peaked, p, labels)[0] for p in prompts]
    assert [s.best for s in peaked.choose(prompts, labels, batch_size=4)] == expected
    monkeypatch.setattr(search, "_FILL", 1)  # a few nodes per pass: room to prune
    scored = peaked.choose(prompts, labels, batch_size=4)
    assert [s.best for s in scored] == expected
    assert sum(x is None for s in scored for x in s.logprobs) >= len(prompts) * len(labels) / 4  # ruled out unfinished
    monkeypatch.setattr(search, "_PACK_TOKENS", 3)  # one prompt per group, three nodes per pass
    monkeypatch.setattr(search, "_WIDTH", 1)
    assert [s.best for s in peaked.choose(prompts, labels, batch_size=4)] == expected


def test_trie_shares_prefixes_and_keeps_duplicates():
    trie = Trie.build([[1, 2, 9], [1, 3, 9], [1, 9], [1, 2, 9], [4, 9]])
    assert len(trie.token) - 1 == 8  # 1, 1-2, 1-2-9, 1-3, 1-3-9, 1-9, 4, 4-9 (plus the root)
    assert sorted(trie.ends.values()) == [[0, 3], [1], [2], [4]]


def test_shared_prefix_leaves_every_prompt_a_token():
    assert shared_prefix([[1, 2, 3], [1, 2, 4, 5]]) == 2
    assert shared_prefix([[1, 2], [1, 2, 3]]) == 1
    assert shared_prefix([[7], [8]]) == 0


def test_batched_generation_matches_one_at_a_time(lm):
    batched = lm.generate(PROMPTS, max_new_tokens=5, batch_size=3)
    single = [lm.generate([p], max_new_tokens=5, batch_size=1)[0] for p in PROMPTS]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(0 < g.output_tokens <= 5 for g in batched)


def test_scoring_and_generation_use_the_installed_transformers_cache_argument(lm):
    """transformers renamed the KV cache `past_key_values` -> `cache` (the old name warns on every call, and goes away
    in 5.40): the label search passes the name the installed version takes, so a trial logs no deprecation."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm.choose(PROMPTS, LABELS, batch_size=2)
        lm.generate(PROMPTS[:1], max_new_tokens=2, batch_size=1)
    assert [str(w.message) for w in caught if "past_key_values" in str(w.message)] == []
