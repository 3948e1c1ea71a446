"""Shared fixtures: a tiny random causal LM built from a config (no network, seconds), task writers."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("ADVISOR_NO_PLUGINS", "1")

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


@pytest.fixture
def classification_task(tmp_path, tiny_model_dir):
    """Write a small classification task on the tiny model; returns a function taking yaml overrides."""

    def make(strategies: str = "prompting: {shots: [0, 1], select_on: 2}", extra: str = "") -> Path:
        train = [{"text": t, "label": lab} for t, lab in LABELED]
        test = [{"text": f"{t} again", "label": lab} for t, lab in LABELED]
        write_jsonl(tmp_path / "train.jsonl", train)
        write_jsonl(tmp_path / "test.jsonl", test)
        task = tmp_path / "task.yaml"
        task.write_text(
            f"name: tiny\nmodel: {tiny_model_dir}\ntask: {{type: classification}}\n"
            "data: {train: train.jsonl, test: test.jsonl}\n"
            f"strategies:\n  {strategies}\n{extra}",
            encoding="utf-8",
        )
        return task

    return make


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
