"""Fine-tuning strategy families (lora, qlora, ia3, full) sharing one training loop; see methods.py and train.py."""

from baselines.finetune import methods  # noqa: F401  (registers the strategies)
