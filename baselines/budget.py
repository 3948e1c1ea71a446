"""The generation budget (max_new_tokens) for qa and generation: the one place it is chosen.

A fixed budget cut long answers short: on a FAQ task whose answers are paragraphs (median 80 words),
every answer stopped at 32 tokens, and the metric could no longer tell a trial that copies the right
paragraph from one that invents (issue 14, F9). Unless task.yaml sets `max_new_tokens`, the budget
follows the references: 1.2 x the 95th percentile of the train answers' token lengths (the model's own
tokenizer), at least FLOOR and at most CAP tokens. The choice and its basis go into the trial's details.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

FLOOR, CAP, HEADROOM = 16, 256, 1.2
"""Smallest and largest automatic budget, and the room given above the references' 95th percentile."""


@dataclass(frozen=True)
class GenerationBudget:
    max_new_tokens: int
    basis: str
    """How it was chosen, in words the report can show."""
    reference_p95_tokens: int | None
    """95th percentile of the train answers' token lengths (None when task.yaml set the budget and no answers were counted)."""
    references_cut: float | None
    """Share of train answers longer than the budget: those an answer cannot reproduce in full."""

    def as_dict(self) -> dict:
        return asdict(self)


def generation_budget(requested: int | None, references: list[str], count_tokens: Callable[[str], int]) -> GenerationBudget:
    """`requested` when task.yaml sets it, else the budget that follows `references` (the train answers)."""
    lengths = np.array([count_tokens(r) for r in references], dtype=float)
    p95 = int(math.ceil(np.percentile(lengths, 95))) if len(lengths) else None
    if requested is not None:
        tokens, basis = requested, "max_new_tokens set in task.yaml"
    elif p95 is None:
        tokens, basis = CAP, f"no train answers to follow: the cap, {CAP} tokens"
    else:
        tokens = min(CAP, max(FLOOR, math.ceil(HEADROOM * p95)))
        basis = (f"{HEADROOM:g} x the 95th percentile of {len(lengths)} train answers' token lengths ({p95}), "
                 f"within {FLOOR} to {CAP} tokens")
    cut = round(float((lengths > tokens).mean()), 4) if len(lengths) else None
    return GenerationBudget(tokens, basis, p95, cut)

BUDGET_HELP = (f"Generation bound for qa / generation tasks, in tokens; default: {HEADROOM:g} x the 95th percentile of the train "
               f"answers' token lengths, within {FLOOR} to {CAP}.")
