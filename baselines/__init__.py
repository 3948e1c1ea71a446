"""Strategy families (the `strategies` registry). Adding one = a module + one import line below."""

from advisor.registry import Registry
from baselines.base import Context, Strategy

strategies: Registry[type[Strategy]] = Registry("strategy", entry_point_group="advisor.baselines")

from baselines import prompting  # noqa: E402,F401  (each module registers itself)
from baselines import finetune  # noqa: E402,F401
from baselines import rag  # noqa: E402,F401
from baselines import finetune_rag  # noqa: E402,F401


def changes_weights(family: str) -> bool:
    """Whether trials of this family can change the model's weights (it overrides `adapted_model`)."""
    return family in strategies and strategies.get(family).adapted_model is not Strategy.adapted_model


__all__ = ["Context", "Strategy", "changes_weights", "strategies"]
