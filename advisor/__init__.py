"""advisor: measure whether a task needs a better prompt, retrieval or fine-tuning.

Library first: `load_task(path)` validates a task.yaml and `compare(path)` runs it; the CLI is a thin
layer over these. Nothing heavy (torch, transformers) is imported here.
"""

__version__ = "0.1.0"


def load_task(path):
    from advisor.task import load_task as _load

    return _load(path)


def compare(path, **kwargs):
    from advisor.runner import compare as _compare

    return _compare(path, **kwargs)
