"""Prompt templates for every family that writes prompts: the built-in .txt files and the user's own.

Templates are data, filled by plain placeholder substitution ({input}, {labels}, {context}), never run
as code. A built-in is the file `<kind>/<task>-<name>.txt` here: `kind` is the family that uses it
('prompting', or 'rag' for templates with retrieved context), `task` is 'classification' or 'qa' (qa
also serves generation), and `name` is what task.yaml calls it.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent


def builtin_templates(task_type: str, kind: str = "prompting") -> dict[str, str]:
    """Built-in template name -> text for this task type, in name order."""
    prefix = "classification" if task_type == "classification" else "qa"
    return {p.stem.removeprefix(prefix + "-"): p.read_text(encoding="utf-8")
            for p in sorted((TEMPLATES_DIR / kind).glob(f"{prefix}-*.txt"))}


def fill(template: str, example_input: str, labels: list[str], context: str = "") -> str:
    """Plain placeholder substitution ({input}, {labels}, {context}); templates are data, never code."""
    return template.replace("{labels}", ", ".join(labels)).replace("{context}", context).replace("{input}", example_input)


def resolve_templates(names: list[str] | None, spec, kind: str = "prompting",
                      placeholders: tuple[str, ...] = ("{input}",)) -> dict[str, str]:
    """Template name -> text: built-in names, or .txt files relative to task.yaml, each holding every one
    of `placeholders`; no names means every built-in of this kind for the task type."""
    builtin = builtin_templates(spec.task.type, kind)
    if not names:
        return builtin
    out = {}
    for name in names:
        if name in builtin:
            out[name] = builtin[name]
            continue
        path = spec.resolve(Path(name))
        if not path.is_file():
            raise ValueError(f"{kind} template '{name}' is neither a built-in ({', '.join(builtin)}) nor a file ({path})")
        text = path.read_text(encoding="utf-8")
        missing = [p for p in placeholders if p not in text]
        if missing:
            raise ValueError(f"{kind} template file {path} lacks {' and '.join(missing)}")
        out[path.stem] = text
    return out
