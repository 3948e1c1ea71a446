"""Turn chat prompts into Predictions the same way for every strategy family.

classification: the label with the highest log-likelihood (constrained choice, so a small model that
would ramble is still judged on what it prefers); its scores hold the labels the search finished (the
chosen one always; labels it proved cannot win are left out). qa / generation: greedy text, bounded length.
"""

from __future__ import annotations

from collections.abc import Callable

from contracts.records import Example, Prediction
from baselines.endpoint import EndpointLM
from baselines.engine import LanguageModel


def answer(
    lm: LanguageModel,
    examples: list[Example],
    prompts: list[list[dict[str, str]]],
    *,
    task_type: str,
    labels: list[str],
    max_new_tokens: int = 32,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
    sources: list[list[str]] | None = None,
) -> list[Prediction]:
    if isinstance(lm, EndpointLM):  # an endpoint takes chat messages, not rendered text
        return lm.answer(examples, prompts, task_type=task_type, labels=labels, max_new_tokens=max_new_tokens,
                         progress=progress, sources=sources)
    texts = [lm.render(messages) for messages in prompts]
    seen = sources or [None] * len(examples)
    if task_type == "classification":
        scored = lm.choose(texts, labels, batch_size=batch_size, progress=progress)
        out = []
        for ex, s, src in zip(examples, scored, seen):
            finished = {lab: lp for lab, lp in zip(labels, s.logprobs) if lp is not None}  # ruled-out labels: None
            out.append(Prediction(ex.id, labels[s.best], s.prompt_tokens, lm.count_tokens(labels[s.best]) + 1,
                                  round(s.seconds * 1000, 2), finished, src, batch_size=s.batch))
        return out
    generated = lm.generate(texts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    return [
        Prediction(ex.id, g.text, g.prompt_tokens, g.output_tokens, round(g.seconds * 1000, 2), None, src, batch_size=g.batch)
        for ex, g, src in zip(examples, generated, seen)
    ]
