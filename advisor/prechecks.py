"""One validation pass before any compute, shared by `validate`, `compare --dry-run` and `compare`.

Parsing the spec and reading the data (advisor.task, advisor.data) finds what is malformed; the checks
here find what would fail or mislead an hour into a run: a model that cannot be loaded, forgetting
benchmarks without their data, a `target` that `estimate` cannot parse, more shots than training
examples, a `gold_field` no test row has, a test set too small to tell trials apart. Nothing here loads
weights: models are resolved through the file system and the Hugging Face cache only.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

from advisor.data import load_splits, some_lines
from advisor.plan import make_plan
from advisor.task import corpus_warnings, load_task
from advisor.yaml_errors import Problem, SpecError, line_for, load_yaml
from contracts.records import Splits, Trial
from contracts.registry import did_you_mean

if TYPE_CHECKING:
    from baselines.device import DeviceInfo

USEFUL_EFFECT = 0.20
"""A test set that cannot detect a 20-point difference between two trials is warned about."""


def validation_pass(path: str | Path, device: DeviceInfo | None = None) -> tuple:
    """(spec, splits, trials planned for `device`, warnings). Raises SpecError with every error found (and
    the warnings); only a spec that cannot be parsed at all stops the pass early. `advisor validate`, `--dry-run`
    and `compare` all start here, so each finds the same problems before any compute."""
    problems: list[Problem] = []
    spec = load_task(path, later=problems)
    splits, found = load_splits(spec)
    problems += found
    broken = {p.file for p in found if p.severity == "error"}
    problems += corpus_warnings(spec)
    trials: list[Trial] = []
    try:
        trials = make_plan(spec, splits, device)
    except SpecError as exc:
        problems += exc.problems
    problems += prechecks(spec, splits, broken)
    if any(p.severity == "error" for p in problems):
        raise SpecError(problems)
    return spec, splits, trials, problems


def prechecks(spec, splits: Splits, broken: set[str] = frozenset()) -> list[Problem]:
    """The checks this module is for, each problem at the line of its value. A check that counts a split's
    rows is skipped when that split's file had errors (`broken`): its count would be wrong."""
    from advisor.model_checks import check_model

    data, lines = load_yaml(spec.source, [])  # duplicate keys: reported by load_task
    at = Where(str(spec.source), lines, data)
    found = check_model(spec.model, at.file, line_for(("model",), lines)) + check_forgetting(spec, at) + check_target(spec, at)
    if str(spec.resolve(spec.data.train)) not in broken:
        found += check_shots(spec, splits, at) + check_generation_budget(spec, splits, at)
    if str(spec.resolve(spec.data.test)) not in broken:
        found += check_gold_field(spec, splits, at) + check_test_size(spec, splits)
    return found


class Where:
    """task.yaml's name, key-path -> line index and raw mapping, to put each problem at its value's line."""

    def __init__(self, file: str, lines: dict[tuple, int], data):
        self.file, self.lines, self.data = file, lines, data

    def problem(self, path: tuple, message: str, severity: str = "error") -> Problem:
        field = ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")
        return Problem(self.file, line_for(path, self.lines), field, message, severity)

    def raw(self, *path):
        value = self.data
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return value


def check_forgetting(spec, at: Where) -> list[Problem]:
    """Built-in benchmarks need <data folder>/<name>/test.jsonl; other names must be lm-eval tasks."""
    from evaluators.general_benchmarks import benchmarks, data_dir

    f = spec.forgetting
    if f is None or not f.benchmarks:
        return []
    builtin = benchmarks.names()
    local = [(i, n) for i, n in enumerate(f.benchmarks) if n in builtin]
    source = data_dir(spec.resolve(f.data_dir) if f.data_dir else None)
    found = []
    if local and source is None:
        found.append(at.problem(("forgetting", "benchmarks"), f"{', '.join(n for _, n in local)} read their data from a folder: "
                                "set forgetting.data_dir or ADVISOR_BENCHMARK_DATA to the folder holding <benchmark>/test.jsonl"))
    elif local and not source.is_dir():
        found.append(at.problem(("forgetting", "data_dir") if f.data_dir else ("forgetting", "benchmarks"),
                                f"benchmark data folder not found: {source}"))
    else:
        found += [at.problem(("forgetting", "benchmarks", i), f"benchmark data not found: {source / n / 'test.jsonl'}")
                  for i, n in local if not (source / n / "test.jsonl").is_file()]
    others = [(i, n) for i, n in enumerate(f.benchmarks) if n not in builtin]
    if others:
        known = lm_eval_task_names()
        found += [at.problem(("forgetting", "benchmarks", i), f"'{n}' is neither a built-in benchmark ({', '.join(builtin)}) nor "
                             f"named by any lm-eval task file; lm-eval fails on it unless you add the task.{did_you_mean(n, builtin + sorted(known))}",
                             "warning") for i, n in others if n not in known]
    return found


def lm_eval_task_names() -> set[str]:
    """Task, group and tag names declared in lm-eval's task files, read as text: lm-eval's own TaskManager
    indexes the same files but takes about 30 s here, this about 1.5 s. Tasks registered from Python or
    through a custom include path are not seen, hence a warning rather than an error."""
    import importlib.util
    import re

    found = importlib.util.find_spec("lm_eval")
    if found is None or not found.submodule_search_locations:
        return set()
    declared = re.compile(r"""^["']?(?:task|group|tag)["']?:[ \t]*(?:["']?([^\s"'#\[]+)|\[([^\]]*)\])?[^\n]*\n((?:[ \t]+-[^\n]*\n)*)""", re.M)
    names: set[str] = set()
    for path in (Path(next(iter(found.submodule_search_locations))) / "tasks").rglob("*.yaml"):
        for m in declared.finditer(path.read_text(encoding="utf-8", errors="ignore")):
            names.update(filter(None, [m.group(1), *(x.strip(" '\"") for x in (m.group(2) or "").split(","))]))
            names.update(re.findall(r"-[ \t]*[\"']?([^\s\"'#]+)", m.group(3)))
    return names


def check_target(spec, at: Where) -> list[Problem]:
    """`target.model` read by the same code `estimate` and the report's target section use."""
    from advisor.shapes import KNOWN_SHAPES, model_shape

    if spec.target is None:
        return []
    try:
        model_shape(spec.target.model)
    except (ValueError, OSError, KeyError, TypeError, ZeroDivisionError) as exc:
        return [at.problem(("target", "model"), f"{exc}. Accepted: a parameter count with a unit K, M, B or T ('8B', '1.5B', "
                           f"'135M'; published shapes for {', '.join(KNOWN_SHAPES)}), or a transformers config.json or a folder holding one")]
    return []


def check_shots(spec, splits: Splits, at: Where) -> list[Problem]:
    """A k-shot trial with fewer than k training examples would run with fewer shots than its name says."""
    prompting = getattr(spec.strategies, "prompting", None)
    if prompting is None:
        return []
    raw = at.raw("strategies", "prompting", "shots")
    n = len(splits.train)
    return [at.problem(("strategies", "prompting", "shots") + ((raw.index(k),) if isinstance(raw, list) and k in raw else ()),
                       f"{k}-shot prompting needs {k} training examples; train has {n}") for k in prompting.shots if k > n]


def check_gold_field(spec, splits: Splits, at: Where) -> list[Problem]:
    """rag.gold_field must name a field of the test rows (when set in the file) and corpus documents."""
    from baselines.rag import corpus_path
    from baselines.rag.corpus import load_corpus

    rag = getattr(spec.strategies, "rag", None)
    if rag is None or not splits.test:
        return []
    name, key = rag.gold_field, ("strategies", "rag", "gold_field")
    having = [ex for ex in splits.test if ex.extra.get(name) is not None]
    if not having:
        if key not in at.lines:  # the default field, absent: retrieval is simply not scored, as documented
            return []
        fields = list(dict.fromkeys(k for ex in splits.test for k in ex.extra))
        return [at.problem(key, f"no test row has the field '{name}', so retrieval recall@k and MRR cannot be measured."
                                f"{did_you_mean(name, fields)} Other fields of the test rows: {', '.join(fields) or 'none'}")]
    try:
        ids = {d.id for d in load_corpus(corpus_path(spec), rag.max_documents, spec.seed).documents}
    except ValueError:
        return []  # no corpus: the plan reports it
    unknown = [ex for ex in having if str(ex.extra[name]) not in ids]
    if not unknown:
        return []
    example = sorted(ids)[0]
    return [Problem(str(spec.resolve(spec.data.test)), unknown[0].line, name,
                    f"{len(unknown)} of {len(having)} test rows name a gold document that is not in the corpus (lines "
                    f"{some_lines([ex.line for ex in unknown])}; e.g. '{unknown[0].extra[name]}', while corpus ids look "
                    f"like '{example}'): they count as retrieval misses", "warning")]


def check_test_size(spec, splits: Splits) -> list[Problem]:
    """The smallest difference between two trials the test set can detect (80% power, alpha 0.05). Judged
    at a score of 90%, the favourable case: a warning means even a strong trial cannot be told apart."""
    from evaluators.comparisons import minimum_detectable_effect as mde

    n = len(splits.test)
    if not n or mde(0.9, n) <= USEFUL_EFFECT:
        return []

    def needed(p: float) -> int:
        return next(m for m in count(n) if mde(p, m) <= USEFUL_EFFECT / 2)

    return [Problem(str(spec.resolve(spec.data.test)), None, "", f"{n} test items can only show differences in "
                    f"{spec.headline_metric} of about {100 * mde(0.9, n):.0f} points or more between two trials scoring "
                    f"near 90% ({100 * mde(0.5, n):.0f} near 50%); about {needed(0.9)} items ({needed(0.5)} near 50%) "
                    f"would bring that to {100 * USEFUL_EFFECT / 2:.0f} points", "warning")]


def check_generation_budget(spec, splits: Splits, at: Where) -> list[Problem]:
    """A budget (max_new_tokens, or the automatic budget's cap) below most train answers cuts every answer short
    of its reference: a closed-book trial that rambles and a RAG trial that copies the right passage then
    score alike. Counted in words, a lower bound of tokens (every word is at least one), so the model's
    tokenizer is not loaded and a warning is never a false alarm."""
    from baselines import strategies
    from baselines.budget import CAP

    if spec.task.type == "classification" or not splits.train:
        return []
    words = [len(ex.target.split()) for ex in splits.train]
    found = []
    for family in strategies.names():
        options = getattr(spec.strategies, family, None)
        if options is None or "max_new_tokens" not in type(options).model_fields:
            continue
        requested = options.max_new_tokens
        budget = CAP if requested is None else requested
        if (cut := sum(w > budget for w in words)) <= len(words) / 2:
            continue
        what = (f"max_new_tokens {budget}" if requested else f"the automatic generation budget is capped at {CAP} tokens, and")
        found.append(at.problem(("strategies", family, "max_new_tokens"), f"{what}: {cut} of {len(words)} train answers have more words "
                                f"than that (every word is at least one token), so answers are cut before they can match their "
                                f"references" + ("; leave max_new_tokens out to let it follow the references" if requested else ""),
                                "warning"))
    return found
