"""Strategy families (the `strategies` registry). Adding one = a folder (README "Extending advisor") + its name in the import below."""

from baselines import finetune, finetune_rag, prompting, rag  # noqa: F401  (each module registers itself)
from baselines.base import Context, Strategy
from baselines.registry import strategies
from contracts.records import FamilyFacts


def family_facts() -> dict[str, FamilyFacts]:
    """What each registered family declares, as results.json carries it for the recommendation and the reports."""
    return {name: FamilyFacts(simplicity_rank=cls.simplicity_rank, retrieves=cls.retrieves, changes_weights=cls.changes_weights)
            for name, cls in strategies.items()}


__all__ = ["Context", "Strategy", "family_facts", "strategies"]
