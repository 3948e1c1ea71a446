"""Issue 14 F6 and F7: latency is a query served alone (retrieval included), and embeddings found in the cache are
still charged to every trial that uses them."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from conftest import fake_embed, qa_task


def test_per_query_latency_times_each_query_alone_after_an_untimed_warm_up():
    from evaluators.meters import per_query_latency

    calls = []

    def answer_one(item):
        time.sleep(0.3 if not calls else 0.01)  # the first call loads things
        calls.append(item)

    out = per_query_latency(answer_one, list(range(40)), n=5, seed=1)
    assert len(calls) == 6 and calls[0] == calls[1]  # warm-up on the first sampled query, then 5 timed
    assert out["n"] == 5 and 5 <= out["p50_ms"] <= out["p95_ms"] < 200
    assert per_query_latency(answer_one, [], n=5) == {"p50_ms": None, "p95_ms": None, "n": 0}


class _SlowModel:
    """A stand-in sentence-transformer: 20 ms per encode call."""

    calls = 0

    def encode(self, texts, **_):
        _SlowModel.calls += 1
        time.sleep(0.02)
        return fake_embed(texts)


def test_cached_embeddings_keep_the_time_they_cost(tmp_path, monkeypatch):
    from baselines.embedding import Embedder

    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(tmp_path))
    embedder = Embedder("some-embedder")
    embedder._model = _SlowModel()
    texts = [f"chunk {i}" for i in range(8)]
    first, charged = embedder.embed_timed(texts)
    again, charged_again = embedder.embed_timed(texts)
    assert _SlowModel.calls == 1 and np.array_equal(first, again)  # read from the cache, not computed again
    assert charged >= 0.02 and charged_again == pytest.approx(charged)  # but charged in full
    embedder.embed_timed(["a served query"], cache=False)
    embedder.embed_timed(["a served query"], cache=False)
    assert _SlowModel.calls == 3  # a served query is never read from the cache


@pytest.mark.slow
def test_rag_trials_are_charged_for_shared_embeddings_and_timed_serving_one_query(tmp_path, tiny_model_dir, fake_embedder, monkeypatch):
    from advisor import compare
    from baselines.embedding import Embedder

    uncached = []

    def embed_timed(self, texts, cache=True):
        uncached.append(not cache)
        return fake_embed(texts), 2.5 * len(texts) if cache else 0.0  # as if every chunk had cost 2.5 s to embed once

    monkeypatch.setattr(Embedder, "embed_timed", embed_timed)
    task = qa_task(tmp_path, tiny_model_dir, "rag: {chunking: [sentence], index: [flat, hnsw], k: 2, context_tokens: 40, max_new_tokens: 4, batch_size: 2}")
    out = compare(task, out=tmp_path / "run", isolate=False)
    trials = json.loads((out / "results.json").read_text())["trials"]
    assert len(trials) == 2
    for t in trials:
        assert t["status"] == "ok", t.get("error")
        res, latency = t["resources"], t["latency"]
        assert res["embed_corpus_s"] == pytest.approx(2.5 * t["details"]["chunking"]["chunks"])
        assert res["reused_setup_s"] == pytest.approx(res["embed_corpus_s"] - res["embed_corpus_wall_s"], abs=2e-3)
        assert t["cost"]["one_time_usd"] * 3600 / 0.1 >= res["embed_corpus_s"] - 1e-6  # charged (default CPU hour $0.10)
        assert latency["measured"].startswith("batch 1: 4 test queries answered one at a time")
        assert latency["p95_ms"] >= latency["p50_ms"] > 0 and latency["batch_share_p95_ms"] is not None
        assert latency["batch_size"] == 2  # the batch the shares are shares of (rag's batch_size)
    assert sum(uncached) >= 2 * (1 + 4 + 1)  # test queries, the warm-up and each timed query embedded afresh
