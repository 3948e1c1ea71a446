"""The template library that prompting, rag and fine-tuning share: built-ins by kind, user files checked."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from baselines.templates import builtin_templates, fill, resolve_templates


def _spec(tmp_path: Path, task_type: str = "qa"):
    return SimpleNamespace(task=SimpleNamespace(type=task_type), resolve=lambda p: tmp_path / p)


def test_builtins_are_by_kind_and_task_type(tmp_path):
    assert list(builtin_templates("classification")) == ["instruct", "question", "terse"]
    assert list(builtin_templates("generation")) == ["concise", "instruct", "terse"]  # generation uses the qa prompts
    (rag,) = resolve_templates(None, _spec(tmp_path), kind="rag").values()
    assert "{context}" in rag and "{input}" in rag


def test_user_files_must_hold_every_placeholder_of_their_kind(tmp_path):
    (tmp_path / "mine.txt").write_text("Q: {input}\nA:")
    assert resolve_templates(["mine.txt", "terse"], _spec(tmp_path)) == {"mine": "Q: {input}\nA:", "terse": "Q: {input}\nA:\n"}
    with pytest.raises(ValueError, match=r"rag template file .*mine.txt lacks \{context\}"):
        resolve_templates(["mine.txt"], _spec(tmp_path), kind="rag", placeholders=("{context}", "{input}"))
    with pytest.raises(ValueError, match=r"neither a built-in \(context\) nor a file"):
        resolve_templates(["qa"], _spec(tmp_path), kind="rag")


def test_fill_substitutes_text_only():
    assert fill("{labels} | {context} | {input}", "x {labels}", ["a", "b"], "ctx") == "a, b | ctx | x {labels}"
