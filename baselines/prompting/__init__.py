"""Prompt engineering (zero-shot, k-shot); the family is in family.py, its templates in baselines.templates."""

from baselines.prompting.family import Prompting, PromptingOptions, shots_name  # registers "prompting"

__all__ = ["Prompting", "PromptingOptions", "shots_name"]
