"""Fine-tuning strategy families (lora, qlora, ia3, full) in family.py, sharing one training loop (train.py)."""

from baselines.finetune.family import IA3, FineTune, Full, Lora, QLora  # registers lora, qlora, ia3, full

__all__ = ["IA3", "FineTune", "Full", "Lora", "QLora"]
