"""Fine-tuning plus retrieval: the family is in family.py (RAG answered by a fine-tuned trial's weights)."""

from baselines.finetune_rag.family import FinetuneRag, FinetuneRagOptions  # registers "finetune_rag"

__all__ = ["FinetuneRag", "FinetuneRagOptions"]
