"""Shared fixtures: a tiny random causal LM built from a config (no network, seconds), task writers.

Markers (pyproject.toml): `slow` tests load the real embedded models, run lm-eval, train for real, start
processes or a browser (`make test-fast` leaves them out); `gpu` tests are skipped without CUDA and `bnb`
tests without bitsandbytes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("ADVISOR_NO_PLUGINS", "1")

BENCHMARK_DATA = Path(os.environ.get("ADVISOR_BENCHMARK_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def pytest_collection_modifyitems(config, items):
    """Skip `gpu` tests when CUDA is not available and `bnb` tests when bitsandbytes is not installed."""
    missing = {}
    if importlib.util.find_spec("bitsandbytes") is None:
        missing["bnb"] = "needs bitsandbytes: pip install bitsandbytes"
    if any(item.get_closest_marker("gpu") for item in items):
        import torch

        if not torch.cuda.is_available():
            missing["gpu"] = "needs CUDA: torch.cuda.is_available() is false"
    for item in items:
        for marker, reason in missing.items():
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def stated_throughput(request, monkeypatch):
    """A run forecasts its trials from the model's throughput, measured for about 2 s (advisor.forecast.measure);
    tests not marked slow state one instead, so each compare in them stays fast. Slow tests measure."""
    if request.node.get_closest_marker("slow") is None:
        import advisor.forecast

        stated = advisor.forecast.Throughput(forward=1000.0, train=100.0, source="stated for a fast test")
        monkeypatch.setattr(advisor.forecast, "measure", lambda lm, **kwargs: stated)


@pytest.fixture(scope="session")
def benchmark_data() -> Path:
    """The local benchmark data for lm-eval (../shared/data next to the repo, or ADVISOR_BENCHMARK_DATA)."""
    if not BENCHMARK_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {BENCHMARK_DATA}: put it there or set ADVISOR_BENCHMARK_DATA")
    return BENCHMARK_DATA


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with a small byte-level BPE tokenizer and a chat template, saved to disk."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    corpus = ["the quick brown fox jumps over the lazy dog", "billing shipping refund login password printer",
              "Classify the message into one of these categories", "Question Answer Text Label Category"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus * 20, vocab_size=400, special_tokens=["<pad>", "<eos>", "<|user|>", "<|assistant|>", "<|system|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<eos>", pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


LABELED = [("my invoice is wrong", "billing"), ("charged twice this month", "billing"), ("refund please", "billing"),
           ("where is my parcel", "shipping"), ("package never arrived", "shipping"), ("tracking number broken", "shipping"),
           ("cannot log in", "account"), ("password reset fails", "account"), ("locked out of account", "account")]


def write_classification_task(folder: Path, model, strategies: str = "prompting: {shots: [0, 1], select_on: 2}",
                              extra: str = "") -> Path:
    """A small classification task (9 train, 9 test rows) on `model` in `folder`; returns its task.yaml."""
    write_jsonl(folder / "train.jsonl", [{"text": t, "label": lab} for t, lab in LABELED])
    write_jsonl(folder / "test.jsonl", [{"text": f"{t} again", "label": lab} for t, lab in LABELED])
    task = folder / "task.yaml"
    task.write_text(f"name: tiny\nmodel: {model}\ntask: {{type: classification}}\n"
                    f"data: {{train: train.jsonl, test: test.jsonl}}\nstrategies:\n  {strategies}\n{extra}", encoding="utf-8")
    return task


@pytest.fixture
def classification_task(tmp_path, tiny_model_dir, fake_embedder):
    """`write_classification_task` on the tiny model with the fake embedder (no real model in this process;
    subprocesses embed for real); returns a function taking yaml overrides."""
    return functools.partial(write_classification_task, tmp_path, tiny_model_dir)


@contextmanager
def registered(name: str, cls):
    """Register a test strategy through the real registry, and rebuild the task schema around it."""
    from advisor.spec import strategies_model, task_spec_model
    from baselines import strategies

    strategies.register(name)(cls)
    strategies_model.cache_clear()
    task_spec_model.cache_clear()
    try:
        yield
    finally:
        strategies.unregister(name)
        strategies_model.cache_clear()
        task_spec_model.cache_clear()


DIM = 64


def fake_embed(texts: list[str]) -> np.ndarray:
    """Deterministic bag of hashed words: texts sharing words are close, so retrieval is meaningful."""
    out = np.zeros((len(texts), DIM), np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


@pytest.fixture
def fake_embedder(monkeypatch):
    """The embedder replaced by `fake_embed` and whitespace tokens (no model, instant)."""
    from baselines.embedding import Embedder
    from baselines.rag.chunking import whitespace_tokens

    monkeypatch.setattr(Embedder, "embed_timed", lambda self, texts, cache=True: (fake_embed(texts), 0.0))
    monkeypatch.setattr(Embedder, "token_spans", lambda self, text: whitespace_tokens(text))
    monkeypatch.setattr(Embedder, "text_budget", 10_000)


HANDBOOK = {
    "fares": "# Fares\n\nA single ticket costs 2.80 euros. The Day Rover costs 11.50 euros.\n\n"
             "Children under 5 travel free. A Silver Card costs 24 euros per year.",
    "pets": "# Pets\n\nDogs travel free on a lead. Cats must travel in a closed basket.\n\n"
            "Assistance dogs may sit anywhere. Birds are not allowed on board.",
    "timetable": "# Timetable\n\nThe first weekday train leaves Harrowgate at 05:42. The last train leaves at 23:10.\n\n"
                 "On Sundays the first train leaves at 07:15.",
}


def qa_task(tmp_path, model, strategies: str) -> Path:
    """A qa task over a 3-page handbook corpus (plus an empty file): 2 train, 4 test questions with gold docs."""
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    for name, text in HANDBOOK.items():
        (docs / f"{name}.md").write_text(text, encoding="utf-8")
    (docs / "blank.txt").write_text("", encoding="utf-8")
    rows = [("How much is the Day Rover?", "11.50 euros", "fares"), ("Can cats travel?", "in a closed basket", "pets"),
            ("When is the first weekday train?", "05:42", "timetable"), ("Do dogs pay?", "free", "pets")]
    write_jsonl(tmp_path / "train.jsonl", [{"question": q, "answer": a, "doc": d} for q, a, d in rows[:2]])
    write_jsonl(tmp_path / "test.jsonl", [{"question": q, "answer": a, "doc": d} for q, a, d in rows])
    task = tmp_path / "task.yaml"
    task.write_text(f"name: rag-tiny\nmodel: {model}\ntask: {{type: qa}}\n"
                    "data: {train: train.jsonl, test: test.jsonl, input: question, target: answer}\n"
                    f"knowledge: {{corpus: docs}}\nstrategies:\n  {strategies}\n", encoding="utf-8")
    return task
