"""Entry points that read a task: `load_task` (spec only) and `check_task` (spec + data)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from advisor.data import load_splits
from contracts.records import Splits
from advisor.spec import task_spec_model
from contracts.spec import TaskSpecBase
from advisor.yaml_errors import Problem, SpecError, load_yaml, problems_from_validation


def load_task(path: str | Path, later: list[Problem] | None = None) -> TaskSpecBase:
    """Parse and validate task.yaml. Raises SpecError listing every problem with its line. With `later`,
    duplicate keys (which still leave a spec to check) are added there instead, for one report of all."""
    path = Path(path)
    duplicates: list[Problem] = []
    data, lines = load_yaml(path, duplicates)
    if not isinstance(data, dict):
        raise SpecError(duplicates + [Problem(str(path), 1, "", "expected a mapping of keys (name, task, data, strategies, ...)")])
    model = task_spec_model()
    problems = _missing_paths(data, path.resolve().parent, str(path), lines)
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation(exc, model, str(path), lines) + problems
    if later is None or problems:
        problems += duplicates
    else:
        later += duplicates
    if problems:
        raise SpecError(sorted(problems, key=lambda p: p.line or 0))
    spec.source = path.resolve()
    return spec


def _missing_paths(data: dict, base: Path, file: str, lines: dict[tuple, int]) -> list[Problem]:
    """Named inputs must exist. Checked on the raw mapping so they are reported with the schema errors."""
    problems = []
    for section, key in (("data", "train"), ("data", "test"), ("data", "validation"), ("knowledge", "corpus")):
        value = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
        if isinstance(value, str) and value and not (base / value).exists():
            problems.append(Problem(file, lines.get((section, key)), f"{section}.{key}", f"file not found: {base / value}"))
    return problems


def check_task(path: str | Path) -> tuple[TaskSpecBase, Splits, list[Problem]]:
    """Spec and data together. Raises SpecError when there is any error; returns warnings otherwise."""
    spec = load_task(path)
    splits, problems = load_splits(spec)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise SpecError(problems)
    return spec, splits, problems


def corpus_warnings(spec) -> list[Problem]:
    """Skipped corpus files (empty, binary, not UTF-8, too large) and sampling, before anything runs.
    Apart from check_task: a trial's worker process re-checks the task and has no use for them."""
    rag = getattr(spec.strategies, "rag", None)
    if spec.knowledge is None or rag is None:
        return []
    from baselines.rag.corpus import load_corpus

    path = spec.resolve(spec.knowledge.corpus)
    try:
        corpus = load_corpus(path, rag.max_documents, spec.seed)
    except ValueError:
        return []  # no usable document: the plan reports it as an error
    return [Problem(str(path), None, "knowledge.corpus", w, "warning") for w in corpus.warnings]
