"""Load task.yaml safely and turn every problem into `task.yaml:LINE: field.path: message`.

Why compose + construct: yaml.safe_load throws away positions. We compose the node tree once (a safe
loader, so no tag runs code), remember the line of every key path, and construct plain data from the
same tree (rejecting duplicate keys); pydantic's error locations are then mapped back to lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from contracts.registry import did_you_mean


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {_printable(self.field)}:" if self.field else ""
        tag = "" if self.severity == "error" else f" {self.severity}:"
        return f"{where}:{tag}{field} {_printable(self.message)}"


def _printable(text: str) -> str:
    """One line, control characters shown as escapes: user keys and values can hold anything."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class SpecError(Exception):
    """Raised with every problem found, so the user can fix them all in one go."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def _line_index(node: yaml.Node, path: tuple = (), index: dict | None = None) -> dict[tuple, int]:
    """Map each key path to its 1-based line: the line of the key for mappings, of the item for lists."""
    index = {} if index is None else index
    index.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (key.value,)
            index[sub] = key.start_mark.line + 1
            _line_index(value, sub, index)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), index)
    return index


def load_yaml(path: Path, problems: list[Problem] | None = None) -> tuple[Any, dict[tuple, int]]:
    """Read a YAML file as plain data plus a key-path -> line index. Raises SpecError on syntax errors, and on
    duplicate keys unless `problems` is given to collect them (the later value is kept, as PyYAML does)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([Problem(name, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(name, None, "", f"cannot read: {exc}")]) from None
    try:
        loader = UniqueKeyLoader(text)  # the reader rejects control characters already here
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise SpecError([Problem(name, line, "", f"invalid YAML: {reason}")]) from None
    lines, paths = ({}, {}) if node is None else (_line_index(node), _node_paths(node))
    duplicates = [Problem(name, line, ".".join(map(str, paths.get(id(mapping), ()) + (key,))).replace(".[", "["),
                                 f"duplicate key (first on line {first}): the later value would silently replace the earlier")
                  for mapping, key, first, line in sorted(loader.duplicates, key=lambda d: d[3])]
    if problems is None and duplicates:
        raise SpecError(duplicates)
    if problems is not None:
        problems.extend(duplicates)
    return data, lines


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader (no tag runs code) that records duplicate keys: PyYAML lets the last one win silently,
    so two `prompting:` blocks would quietly drop the first."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[tuple[yaml.MappingNode, str, int, int]] = []
        """(mapping node, key, first line, repeated line) for each repeated key."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if (key.tag, key.value) in first:
                        self.duplicates.append((node, key.value, first[key.tag, key.value], line))
                    first.setdefault((key.tag, key.value), line)
        return super().construct_mapping(node, deep)


def _node_paths(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[int, tuple]:
    """id(mapping or list node) -> its key path, to name where a duplicate key sits."""
    out = {} if out is None else out
    out.setdefault(id(node), path)
    children = [(key.value, value) for key, value in node.value] if isinstance(node, yaml.MappingNode) else \
        list(enumerate(node.value)) if isinstance(node, yaml.SequenceNode) else []
    for part, child in children:
        _node_paths(child, path + (f"[{part}]" if isinstance(part, int) else part,), out)
    return out


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at the parent of `loc`, found by walking the model's annotations."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (_is_model(current) and part in current.model_fields):
            return []
        current = _unwrap(current.model_fields[part].annotation)
    return list(current.model_fields) if _is_model(current) else []


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _unwrap(tp: Any) -> Any:
    """Optional[X] / list[X] / X | None -> X when X is a pydantic model."""
    if _is_model(tp):
        return tp
    for arg in get_args(tp) if get_origin(tp) is not None else ():
        found = _unwrap(arg)
        if found is not None:
            return found
    return None


def line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


_PYDANTIC_TAG = re.compile(r"^[a-z][a-z_-]*\[.*\]$")
"""Segments pydantic adds to error locations for validators and unions, e.g. 'function-after[...]'."""


def problems_from_validation(
    exc: ValidationError, model: type[BaseModel], file: str, lines: dict[tuple, int]
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        # Drop union/tag segments pydantic adds (e.g. 'function-after[...]'), keep real keys.
        loc = tuple(p for p in err["loc"] if isinstance(p, int) or not _PYDANTIC_TAG.match(p))
        field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[") or "(key)"
        if err["type"] == "extra_forbidden":
            message = "unknown key." + (did_you_mean(str(loc[-1]), _allowed_keys(model, loc)) if loc else "")
        elif err["type"] == "missing":
            message = "required field is missing"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] not in ("value_error", "assertion_error") and "input" in err:
                message += f" (got {err['input']!r})"
        problems.append(Problem(file, line_for(loc, lines), field, message))
    return problems
