"""Task examples -> tokenized supervised fine-tuning examples, in the exact format used to answer.

Why the same format matters: a fine-tuned trial is scored by `baselines.answer` with the prompting
family's "instruct" template rendered through the model's chat template, and classification scores
each label's tokens plus the end-of-turn token. Training on exactly those tokens (prompt and answer
tokenized apart, as the engine does) makes the fine-tuned numbers comparable with zero-shot prompting,
and the loss is masked to the answer and end-of-turn tokens so the model learns answers, not prompts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from contracts.records import Example
from baselines.engine import LanguageModel
from baselines.templates import builtin_templates, fill

IGNORE = -100
"""Label value that torch's cross-entropy skips: prompt and padding tokens."""


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False


def template_text(task_type: str, name: str) -> str:
    templates = builtin_templates(task_type)
    if name not in templates:
        raise ValueError(f"unknown template '{name}'; built-in: {', '.join(templates)}")
    return templates[name]


def messages(template: str, ex: Example, labels: list[str]) -> list[dict[str, str]]:
    """The chat turns the model sees for one example, in training and at prediction time alike."""
    return [{"role": "user", "content": fill(template, ex.input, labels)}]


def tokenize(lm: LanguageModel, template: str, ex: Example, labels: list[str], max_seq_len: int) -> Tokenized:
    """Prompt tokens labelled IGNORE, then the target's tokens and the end-of-turn token as labels.

    Too long: the answer is kept and tokens are cut from the middle of the prompt, so the instruction
    at its head and the chat turn marker at its tail survive.
    """
    tok = lm.tokenizer
    prompt = tok(lm.render(messages(template, ex, labels)), add_special_tokens=False).input_ids
    eos = tok.eos_token_id
    answer = tok(ex.target, add_special_tokens=False).input_ids + ([eos] if eos is not None else [])
    answer = answer[:max_seq_len]
    budget = max_seq_len - len(answer)
    truncated = len(prompt) > budget
    if truncated:
        head = budget // 2
        prompt = prompt[:head] + (prompt[len(prompt) - (budget - head):] if budget - head else [])
    return Tokenized(prompt + answer, [IGNORE] * len(prompt) + answer, truncated)


def validation_split(train: list[Example], validation: list[Example], fraction: float, seed: int
                     ) -> tuple[list[Example], list[Example], str]:
    """(train, validation, where validation came from). Carved from train with the seed when absent.

    Fewer than 5 train rows: no validation at all (one row would decide early stopping by chance).
    """
    if validation:
        return list(train), list(validation), "validation split"
    if len(train) < 5 or fraction <= 0:
        return list(train), [], "none (train too small)" if fraction > 0 else "none"
    shuffled = list(train)
    random.Random(seed).shuffle(shuffled)
    n_val = max(1, round(fraction * len(shuffled)))
    return shuffled[n_val:], shuffled[:n_val], f"{n_val} examples carved from train (seed {seed})"


def collate(batch: list[Tokenized], pad_id: int):
    """Right-padded tensors: input_ids, attention_mask, labels (padding labelled IGNORE)."""
    import torch

    width = max(len(t.input_ids) for t in batch)
    ids = [t.input_ids + [pad_id] * (width - len(t.input_ids)) for t in batch]
    labels = [t.labels + [IGNORE] * (width - len(t.labels)) for t in batch]
    mask = [[1] * len(t.input_ids) + [0] * (width - len(t.input_ids)) for t in batch]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}


def data_warnings(train: list[Example], labels: list[str], task_type: str, n_truncated: int, max_seq_len: int) -> list[str]:
    """What a user must know before trusting a fine-tuned number; never a reason to crash."""
    out = []
    if len(train) < 20:
        out.append(f"only {len(train)} training example(s): too few to learn from; treat this trial's score as noise")
    if task_type == "classification":
        missing = sorted(set(labels) - {ex.target for ex in train})
        if missing:
            out.append(f"label(s) never seen in the training data, so fine-tuning cannot learn them: {', '.join(missing)}")
    if n_truncated:
        out.append(f"{n_truncated} training example(s) longer than max_seq_len={max_seq_len}; their prompts were cut in the middle")
    return out
