"""The one place that runs a causal LM: chat rendering, constrained label scoring, greedy generation.

Every strategy answers through this class (via `baselines.answer`), so prompting, RAG and fine-tuned
models are scored by the same code and their numbers are comparable.

Label scoring shares the prompt: each batch of prompts is run once (left-padded), its key/value cache
is repeated once per label, and only the label tokens are run on top. With C labels this costs one
prompt pass instead of C, which is what makes many-label classification affordable on a CPU.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

_LOGIT_BUDGET = 64 * 2**20
"""Most logits (floats) held at once while scoring labels; bounds memory with many labels."""


@dataclass(frozen=True)
class Scored:
    logprobs: list[float]
    """Log-probability of each choice (all its tokens plus the end-of-turn token), given the prompt."""
    prompt_tokens: int
    seconds: float
    """This prompt's share of its batch's wall time."""


@dataclass(frozen=True)
class Generated:
    text: str
    prompt_tokens: int
    output_tokens: int
    seconds: float


class LanguageModel:
    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer

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

    def choose(
        self, prompts: list[str], choices: list[str], batch_size: int = 8, progress: Callable[[int], None] | None = None
    ) -> list[Scored]:
        """Log-likelihood of every choice after every prompt (constrained choice, batched)."""
        import torch

        eos = self.tokenizer.eos_token_id
        choice_ids = [self._encode(c) + ([eos] if eos is not None else []) for c in choices]
        encoded = [self._encode(p, reserve=max(map(len, choice_ids))) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch
        results: dict[int, Scored] = {}
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                began = time.perf_counter()
                scores = self._score_batch([encoded[i] for i in batch], choice_ids)
                share = (time.perf_counter() - began) / len(batch)
                for row, i in enumerate(batch):
                    results[i] = Scored(scores[row], len(encoded[i]), share)
                if progress:
                    progress(len(batch))
        return [results[i] for i in range(len(prompts))]

    def _score_batch(self, prompts: list[list[int]], choice_ids: list[list[int]]) -> list[list[float]]:
        import torch

        ids, mask = self._left_pad(prompts)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # next-token dist after each prompt
        lengths = mask.sum(-1)
        n, width = len(prompts), max(len(c) for c in choice_ids)
        per_chunk = max(1, _LOGIT_BUDGET // (n * width * out.logits.shape[-1]))
        totals = torch.zeros(n, len(choice_ids))
        for c0 in range(0, len(choice_ids), per_chunk):
            chunk = choice_ids[c0 : c0 + per_chunk]
            cache = out.past_key_values if c0 + per_chunk >= len(choice_ids) else copy.deepcopy(out.past_key_values)
            totals[:, c0 : c0 + len(chunk)] = self._score_choices(cache, first, mask, lengths, chunk)
        return totals.tolist()

    def _score_choices(self, cache, first, mask, lengths, chunk: list[list[int]]):
        import torch

        n, c, width = first.shape[0], len(chunk), max(len(x) for x in chunk)
        pad = self.tokenizer.pad_token_id
        cont = torch.tensor([x + [pad] * (width - len(x)) for x in chunk], device=first.device)  # [c, width]
        cmask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in chunk], device=first.device)
        cont, cmask = cont.repeat(n, 1), cmask.repeat(n, 1)  # row r = prompt r // c, choice r % c
        cache.batch_repeat_interleave(c)
        attn = torch.cat([mask.repeat_interleave(c, 0), cmask], dim=1)
        positions = lengths.repeat_interleave(c)[:, None] + torch.arange(width, device=first.device)
        logits = self.model(input_ids=cont, attention_mask=attn, position_ids=positions, past_key_values=cache).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        token_lp = torch.empty(n * c, width, device=first.device)
        token_lp[:, 0] = first.repeat_interleave(c, 0).gather(1, cont[:, :1]).squeeze(1)
        if width > 1:
            token_lp[:, 1:] = logp[:, :-1].gather(2, cont[:, 1:, None]).squeeze(2)
        return (token_lp * cmask).sum(1).view(n, c).cpu()

    def generate(
        self, prompts: list[str], max_new_tokens: int = 32, batch_size: int = 8, progress: Callable[[int], None] | None = None
    ) -> list[Generated]:
        """Greedy continuation of each prompt, stopping at end-of-turn or max_new_tokens."""
        import torch

        encoded = [self._encode(p, reserve=max_new_tokens) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        results: dict[int, Generated] = {}
        eos = self.tokenizer.eos_token_id
        with torch.inference_mode():
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
                    results[i] = Generated(text, len(encoded[i]), len(new), share)
                if progress:
                    progress(len(batch))
        return [results[i] for i in range(len(prompts))]
