"""The one place that runs a causal LM: chat rendering, constrained label scoring, greedy generation.

Every strategy answers through this class (via `baselines.answer`), so prompting, RAG and fine-tuned
models are scored by the same code and their numbers are comparable.

Label scoring (`baselines.label_search`) runs the prompt prefix all items share once, the labels as a
token trie on top of each prompt, and stops as soon as no unfinished label can beat the best one: the
same choice as scoring every label in full, at a fraction of the tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


_WARM_TOKENS = 16
"""Tokens per prompt of the untimed warm-up pass (LanguageModel._warm_up); advisor.forecast_counts counts them."""


@dataclass(frozen=True)
class Scored:
    best: int
    """Index of the most likely choice (the first one on ties)."""
    logprobs: list[float | None]
    """Log-probability of each choice (all its tokens plus the end-of-turn token), given the prompt;
    None for a choice the search ruled out without finishing it (unless every label was asked for)."""
    prompt_tokens: int
    seconds: float
    """This prompt's share of its batch's wall time."""
    batch: int = 1
    """Size of the batch it was scored in."""


@dataclass(frozen=True)
class Generated:
    text: str
    prompt_tokens: int
    output_tokens: int
    seconds: float
    """This prompt's share of its batch's wall time."""
    batch: int = 1
    """Size of the batch it was answered in."""


class LanguageModel:
    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self._warm = False

    @classmethod
    def load(cls, name: str, **kwargs) -> LanguageModel:
        from baselines.models import load_model

        return cls(*load_model(name, **kwargs))

    @property
    def device(self):
        return next(self.model.parameters()).device

    def render(self, messages: list[dict[str, str]]) -> str:
        """Chat messages -> the prompt text the model sees, ending where the answer starts."""
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['content']}\n" for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _encode(self, text: str, reserve: int = 0) -> list[int]:
        """Token ids; a prompt longer than the context keeps its end (the question and the answer cue)."""
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        limit = getattr(self.model.config, "max_position_embeddings", None)
        return ids[-(limit - reserve):] if limit and len(ids) > limit - reserve else ids

    def _left_pad(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        return ids, mask

    def _batch_size(self, requested: int | None, tokens: int, copies: int) -> int:
        """The batch asked for, else one sized to the device (`baselines.device.answer_batch_size`: 8 on the CPU)."""
        if requested:
            return requested
        from baselines.device import answer_batch_size, free_bytes, sequence_bytes

        per = sequence_bytes(self.model.config, tokens, copies, next(self.model.parameters()).element_size())
        return answer_batch_size(self.device.type, free_bytes(self.device), per)

    def _warm_up(self, seqs: list[list[int]]) -> None:
        """One untimed forward pass per model before the timed batches: the first one carries CUDA/cuBLAS
        start-up (kernel loading, workspaces), which would otherwise land in p95 latency. The batch's first
        tokens are enough for that; its whole prompts would cost as much as answering them (20 s for a batch of
        8 prompts that list 150 labels, on the CPU)."""
        if not self._warm:
            ids, mask = self._left_pad([s[:_WARM_TOKENS] for s in seqs])
            self.model(input_ids=ids, attention_mask=mask, logits_to_keep=1)
            self._warm = True

    def choose(
        self, prompts: list[str], choices: list[str], batch_size: int | None = None, progress: Callable[[int], None] | None = None,
        every_label: bool = False,
    ) -> list[Scored]:
        """The most likely choice after every prompt (constrained choice), by `baselines.label_search`:
        exactly the choice full scoring makes; `every_label` also scores the choices it can rule out."""
        import torch

        from baselines.label_search import LabelSearch, groups, shared_prefix

        eos = self.tokenizer.eos_token_id
        choice_ids = [self._encode(c) + ([eos] if eos is not None else []) for c in choices]
        encoded = [self._encode(p, reserve=max(map(len, choice_ids))) for p in prompts]
        search = LabelSearch(self.model, choice_ids, every_label)
        shared = shared_prefix(encoded)
        results: dict[int, Scored] = {}
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        batch_size = self._batch_size(batch_size, len(encoded[order[0]]) + max(map(len, choice_ids)), len(choices))
        with torch.inference_mode():
            self._warm_up([encoded[i] for i in order[:batch_size]])
            began = time.perf_counter()
            cache = search.prefix_cache(encoded[0][:shared])
            prefix_share = (time.perf_counter() - began) / len(prompts)
            for group in groups(order, encoded, shared, batch_size):
                began = time.perf_counter()
                items = search.score_group([encoded[i] for i in group], shared, cache)
                share = prefix_share + (time.perf_counter() - began) / len(group)
                for i, it in zip(group, items):
                    results[i] = Scored(it.best[1], it.scores, len(encoded[i]), share, len(group))
                if progress:
                    progress(len(group))
        return [results[i] for i in range(len(prompts))]

    def generate(
        self, prompts: list[str], max_new_tokens: int = 32, batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Generated]:
        """Greedy continuation of each prompt, stopping at end-of-turn or max_new_tokens."""
        import torch

        if not prompts:
            return []
        encoded = [self._encode(p, reserve=max_new_tokens) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        results: dict[int, Generated] = {}
        eos = self.tokenizer.eos_token_id
        batch_size = self._batch_size(batch_size, len(encoded[order[0]]) + max_new_tokens, 1)
        with torch.inference_mode():
            self._warm_up([encoded[i] for i in order[:batch_size]])
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                ids, mask = self._left_pad([encoded[i] for i in batch])
                began = time.perf_counter()
                out = self.model.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                    temperature=None, top_p=None, top_k=None, pad_token_id=self.tokenizer.pad_token_id,
                )
                share = (time.perf_counter() - began) / len(batch)
                for row, i in enumerate(batch):
                    new = out[row, ids.shape[1] :].tolist()
                    if eos in new:
                        new = new[: new.index(eos) + 1]
                    text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
                    results[i] = Generated(text, len(encoded[i]), len(new), share, len(batch))
                if progress:
                    progress(len(batch))
        return [results[i] for i in range(len(prompts))]
