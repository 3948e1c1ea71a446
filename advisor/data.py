"""Read the task's data splits (jsonl or csv) into Examples and check them, collecting every problem."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

from contracts.records import Example, Splits
from contracts.registry import did_you_mean
from advisor.yaml_errors import Problem


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _records(path: Path, problems: list[Problem]) -> list[tuple[int, dict]]:
    """(line, record) pairs; malformed lines become problems and are skipped. A UTF-8 byte-order mark
    (what spreadsheet programs write) is dropped, or the first CSV column would be named '\\ufefftext'."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, None, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        out, last = [], 1 if reader.fieldnames else 0  # line 1 is the header
        for row in reader:
            out.append((last + 1, row))
            last = reader.line_num
        return out
    out = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(name, i, "", f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(record, dict):
            problems.append(Problem(name, i, "", f"expected a JSON object, got {type(record).__name__}"))
            continue
        out.append((i, record))
    return out


def some_lines(lines: list[int], shown: int = 5) -> str:
    """'3, 7, 9 and 1,995 more': enough line numbers to find the rows, never thousands."""
    more = f" and {len(lines) - shown:,} more" if len(lines) > shown else ""
    return ", ".join(map(str, lines[:shown])) + more


def _value_problem(value) -> str | None:
    if value is None:
        return "missing"
    if not isinstance(value, (str, int, float, bool)):
        return f"expected text, got {type(value).__name__}"
    return None if str(value).strip() else "empty value"


def read_split(path: Path, input_field: str, target_field: str, id_field: str | None, problems: list[Problem]) -> list[Example]:
    """Examples of one split. Bad rows are skipped and reported grouped: one problem per (field, reason)
    with the count and the first lines, so a misnamed field in a 2,000-row file is one line, not 2,000."""
    name = str(path)
    if not path.is_file():
        problems.append(Problem(name, None, "", "data file not found"))
        return []
    examples, bad, fields = [], {}, {}
    records = _records(path, problems)
    for line, record in records:
        fields.update(dict.fromkeys(map(str, record)))
        checked = (input_field, target_field) + ((id_field,) if id_field else ())
        reasons = [(key, why) for key in checked if (why := _value_problem(record.get(key)))]
        for key, why in reasons:
            bad.setdefault((key, why), []).append(line)
        if reasons:
            continue
        ex_id = str(record[id_field]) if id_field else ""
        extra = {k: v for k, v in record.items() if k not in (input_field, target_field)}
        examples.append(Example(ex_id or f"{path.stem}:{line}", str(record[input_field]), str(record[target_field]), line, extra))
    for (key, why), lines in bad.items():
        rows = f" in {len(lines):,} of {len(records):,} rows (lines {some_lines(lines)})" if len(lines) > 1 else ""
        if why == "missing":
            message = f"missing field '{key}'{rows}.{did_you_mean(key, list(fields))} Fields found: {', '.join(fields) or 'none'}"
        else:
            message = why + rows
        problems.append(Problem(name, lines[0], key, message))
    if not examples and not any(p.file == name for p in problems):
        problems.append(Problem(name, None, "", "split is empty"))
    return examples


def load_splits(spec) -> tuple[Splits, list[Problem]]:
    """Read and check all splits named by a TaskSpec. Errors and warnings both come back as Problems."""
    problems: list[Problem] = []
    d = spec.data
    splits = Splits()
    for split in ("train", "test", "validation"):
        rel = getattr(d, split)
        if rel is None:
            continue
        path = spec.resolve(rel)
        examples = read_split(path, d.input, d.target, d.id, problems)
        setattr(splits, split, examples)
        if path.is_file():
            splits.fingerprints[split] = file_sha256(path)
        _check_duplicate_ids(path, examples, problems)
    if d.test_limit:
        splits.test = splits.test[: d.test_limit]
    for split, cap in (("train", d.max_train), ("test", d.max_test)):
        examples = getattr(splits, split)
        if len(examples) > cap:
            keep = sorted(random.Random(spec.seed).sample(range(len(examples)), cap))
            setattr(splits, split, [examples[i] for i in keep])
            problems.append(Problem(str(spec.resolve(getattr(d, split))), None, "", f"{len(examples)} examples is more than "
                                    f"data.max_{split}={cap}: a seeded sample of {cap} is used", "warning"))
    splits.labels = _labels(spec, splits, problems)
    _check_leakage(spec, splits, problems)
    return splits, problems


def _check_duplicate_ids(path: Path, examples: list[Example], problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    for ex in examples:
        if ex.id in seen:
            problems.append(Problem(str(path), ex.line, "id", f"duplicate id '{ex.id}' (first on line {seen[ex.id]})"))
        seen.setdefault(ex.id, ex.line)


def _labels(spec, splits: Splits, problems: list[Problem]) -> list[str]:
    if spec.task.type != "classification":
        return []
    train_labels = Counter(ex.target for ex in splits.train)
    labels = spec.task.labels or sorted(train_labels)
    test_path = str(spec.resolve(spec.data.test))
    unseen = sorted({ex.target for ex in splits.test} - set(labels))
    if unseen and spec.task.labels:
        problems.append(Problem(test_path, None, spec.data.target, f"labels not in task.labels: {', '.join(unseen)}"))
    elif unseen:
        problems.append(
            Problem(test_path, None, spec.data.target,
                    f"{len(unseen)} test label(s) never seen in train: {', '.join(unseen)}; they are added to the "
                    "label set, but fine-tuning cannot learn them", "warning")
        )
        labels = sorted(set(labels) | set(unseen))
    _check_spellings(spec, splits, labels, problems)
    if len(labels) < 2 and (splits.train or spec.task.labels):
        file, field = (str(spec.source), "task.labels") if spec.task.labels else (str(spec.resolve(spec.data.train)), spec.data.target)
        found = f"{len(labels)} ('{labels[0]}')" if labels else "none"
        problems.append(Problem(file, None, field, f"a classification task needs at least 2 labels; found {found}"))
    if train_labels and len(labels) > 1:
        most, least = max(train_labels.values()), min(train_labels.get(lab, 0) for lab in labels)
        if least == 0 or most / least >= 10:
            problems.append(Problem(str(spec.resolve(spec.data.train)), None, spec.data.target,
                                    f"class imbalance in train: largest class {most}, smallest {least}", "warning"))
    return labels


def _check_spellings(spec, splits: Splits, labels: list[str], problems: list[Problem]) -> None:
    """Labels equal after case and space folding ('Yes', 'yes ') are different labels to the scorer."""
    count, first = Counter(), {}
    for split in ("train", "validation", "test"):
        for ex in getattr(splits, split):
            count[ex.target] += 1
            first.setdefault(ex.target, (str(spec.resolve(getattr(spec.data, split))), ex.line))
    groups: dict[str, list[str]] = {}
    for label in dict.fromkeys([*count, *labels]):
        groups.setdefault(" ".join(label.split()).casefold(), []).append(label)
    for spellings in (g for g in groups.values() if len(g) > 1):
        file, line = first.get(spellings[1], (str(spec.source), None))
        named = " and ".join(f"'{s}' ({count[s]} row{'s' if count[s] != 1 else ''})" for s in spellings)
        problems.append(Problem(file, line, spec.data.target, f"labels {named} differ only in case or spaces: they are "
                                "scored as different labels; write each label one way", "warning"))


def _check_leakage(spec, splits: Splits, problems: list[Problem]) -> None:
    train_inputs = {ex.input.strip().lower(): ex.line for ex in splits.train}
    leaked = [ex for ex in splits.test if ex.input.strip().lower() in train_inputs]
    if leaked:
        lines = ", ".join(str(ex.line) for ex in leaked[:10]) + (" ..." if len(leaked) > 10 else "")
        problems.append(
            Problem(str(spec.resolve(spec.data.test)), None, spec.data.input,
                    f"{len(leaked)} test input(s) also appear in train (leakage), test lines {lines}", "warning")
        )


def nested_order(examples: list[Example], seed: int, stratify: bool) -> list[Example]:
    """Train examples in the order learning-curve subsets take them: the first n are the subset of size n,
    so every smaller subset lies inside every larger one (same seed). Stratified: each label's examples
    are shuffled and spread evenly over the order, so any prefix keeps the labels' shares (within about one example)."""
    rng = random.Random(seed)
    groups: dict[str, list[Example]] = {}
    for ex in examples:
        groups.setdefault(ex.target if stratify else "", []).append(ex)
    keyed = []
    for label in sorted(groups):
        members = groups[label]
        rng.shuffle(members)
        offset = rng.random()  # labels of equal size would otherwise always come in alphabetical order
        keyed += [((i + offset) / len(members), ex) for i, ex in enumerate(members)]
    return [ex for _, ex in sorted(keyed, key=lambda pair: pair[0])]


def train_subset(splits: Splits, size: int | None, seed: int, stratify: bool) -> Splits:
    """The splits with train cut to its nested subset of `size` examples (None: unchanged)."""
    if size is None or size >= len(splits.train):
        return splits
    return replace(splits, train=nested_order(splits.train, seed, stratify)[:size])
