"""advisor: measure whether a task needs a better prompt, retrieval or fine-tuning.

Library first: `load_task(path)` validates a task.yaml and `compare(path)` runs it; the CLI is a thin
layer over these. Nothing heavy (torch, transformers) is imported here.
"""

from advisor.version import __version__

__all__ = ["__version__", "compare", "load_task"]


def load_task(path):
    from advisor.task import load_task as _load

    return _load(path)


def compare(path, **kwargs):
    """Run the task (advisor.run_loop.compare) and render report.html and report.md after every trial."""
    from advisor.run_loop import compare as _compare
    from reports import render_report

    return _compare(path, on_results=render_report, **kwargs)
