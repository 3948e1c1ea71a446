"""The per-example view's data: one row per test item, one cell per finished trial, read from the run folder.

Everything comes from files the run stored (reports import no scoring code): each answer's headline score
from trials/<id>/predictions.jsonl (`score`), the ranked chunks and the gold document of a retrieving trial
from trials/<id>/retrieved.jsonl with their texts from chunks.jsonl, and a prompting trial's template and
few-shot examples from its record. The page embeds the result as JSON; large runs are sampled to fit.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from reports.context import pick_and_zero_shot

MAX_ITEMS = 10_000
MAX_BYTES = 9_000_000
"""Embedded JSON budget: the whole page must stay under 10 MB."""
TEXT_CHARS = 2_000
CHUNK_CHARS = 1_200
THRESHOLD = 0.5
"""A continuous score in [0, 1] (token F1, ROUGE-L) counts as right from here on."""


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a .jsonl file the run stored (none when it is missing)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _cut(text: Any, most: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= most else text[: most - 1] + "\u2026"


def _rule(results: dict) -> dict[str, Any]:
    """How a stored score reads as right or wrong, stated in the page."""
    name = results["task"]["metric"]
    facts = (results.get("metrics") or {}).get(name, {})
    display = facts.get("display_name", name)
    if results["task"]["type"] == "classification":
        return {"display": "label match", "kind": "label", "text": "right = the predicted label is the gold label"}
    if facts.get("paired_test") == "mcnemar":
        return {"display": display, "kind": "binary", "text": f"right = {display} 1 for the item"}
    if facts.get("higher_is_better", True) and facts.get("unit", "%") == "%":
        return {"display": display, "kind": "threshold", "text": f"right = {display} of the item at least {THRESHOLD}"}
    return {"display": display, "kind": "score", "text": f"{display} per item (no right/wrong for this metric)"}


def _score(row: dict, kind: str) -> float | None:
    if kind == "label":
        return float(row.get("output") == row.get("target"))
    score = row.get("score")
    return None if score is None else round(float(score), 3)


def _prompt(trial: dict) -> dict | None:
    """A prompting trial's template text and few-shot examples, as its record states them."""
    details, settings = trial.get("details") or {}, trial.get("settings") or {}
    chosen = details.get("template")
    if chosen is None or not isinstance(settings.get("templates"), dict):
        return None
    shots = details.get("shot_examples") or []
    note = ("the nearest train examples to each input (not stored per item)" if details.get("shot_ids") == "nearest per input"
            else "" if shots or not details.get("shots") else f"train items {', '.join(map(str, details.get('shot_ids') or []))}")
    return {"template": chosen, "text": settings["templates"].get(chosen, ""), "selected_on": details.get("template_selected_on"),
            "shots": [[_cut(s.get("input"), 400), _cut(s.get("target"), 200)] for s in shots], "shots_note": note}


def _roles(results: dict) -> dict[str, str]:
    roles: dict[str, str] = {}
    for name, role in zip(pick_and_zero_shot(results), ("pick", "zero-shot")):
        if name:
            roles[name] = f"{roles[name]}, {role}" if name in roles else role
    return roles


class _Chunks:
    """One table of retrieved chunk texts shared by all items and trials (rag trials over one chunker share chunks)."""

    def __init__(self):
        self.rows: list[list[str]] = []
        self.index: dict[tuple[str, str], int] = {}

    def ref(self, chunk: dict) -> int:
        key = (str(chunk["doc_id"]), chunk["text"])
        if key not in self.index:
            self.index[key] = len(self.rows)
            self.rows.append([str(chunk["doc_id"]), _cut(chunk["text"], CHUNK_CHARS)])
        return self.index[key]


def build_drilldown(run_dir: Path, results: dict, predictions: dict[str, list[dict]], seed: int = 0) -> tuple[dict, str] | None:
    """The per-example view's data and its JSON for the page, or None when no trial stored answers.
    `predictions`: each finished trial's stored answers by trial id."""
    rule, roles = _rule(results), _roles(results)
    families = results.get("families") or {}
    trials, answers, retrieved = [], [], []
    for t in results["trials"]:
        folder = Path(run_dir) / "trials" / t["id"]
        rows = predictions.get(t["id"]) if t.get("status") == "ok" else None
        if not rows:
            continue
        trials.append({"name": t["name"], "strategy": t["strategy"], "role": roles.get(t["name"], ""),
                       "retrieves": bool(families.get(t["strategy"], {}).get("retrieves")), "prompt": _prompt(t)})
        answers.append({str(r["id"]): r for r in rows})
        retrieved.append((folder, {str(r["id"]): r for r in read_jsonl(folder / "retrieved.jsonl")}))
    if not trials:
        return None
    order = list(dict.fromkeys(i for a in answers for i in a))
    total = len(order)
    if total > MAX_ITEMS:
        order = _sample(order, MAX_ITEMS, seed)
    texts = [{str(c["id"]): c for c in read_jsonl(folder / "chunks.jsonl")} if ranked else {} for folder, ranked in retrieved]
    while True:
        chunks = _Chunks()
        items = [_item(i, answers, retrieved, texts, chunks, rule["kind"]) for i in order]
        data = {"task_type": results["task"]["type"], "rule": rule, "trials": trials, "items": items, "chunks": chunks.rows,
                "answers": _compact(items), "total": total, "sampled": None}
        text = embed_json(data)
        if len(order) <= 1 or len(text) <= MAX_BYTES:
            break
        order = _sample(order, int(len(order) * 0.8), seed)
    if len(items) < total:
        data["sampled"] = (f"{len(items):,} of {total:,} test items, drawn at random (seed {seed}), to keep the page "
                           f"small and quick (at most {MAX_ITEMS:,} items and {MAX_BYTES / 1e6:.0f} MB of data)")
        text = embed_json(data)
    return data, text


def _sample(values: list, n: int, seed: int) -> list:
    """`n` of `values` at random, in their original order."""
    keep = set(random.Random(seed).sample(range(len(values)), n))
    return [v for k, v in enumerate(values) if k in keep]


def _item(item_id: str, answers: list[dict], retrieved: list, texts: list[dict], chunks: _Chunks, kind: str) -> list:
    """[id, input, target, gold document, cells, retrieval]: a cell per trial [output, score] (null when the trial
    did not answer it); retrieval per trial [[chunk ref, in the prompt 0/1], ...] (null when it does not retrieve)."""
    first = next(a[item_id] for a in answers if item_id in a)
    cells, found, gold = [], [], None
    for a, (_, ranked), known in zip(answers, retrieved, texts):
        row = a.get(item_id)
        cells.append(None if row is None else [_cut(row.get("output"), TEXT_CHARS), _score(row, kind)])
        hit = ranked.get(item_id)
        if hit is None:
            found.append(None)
            continue
        gold = gold if hit.get("gold") is None else str(hit["gold"])
        used = set(map(str, (row or {}).get("sources") or []))
        found.append([[chunks.ref(known[c]), int(c in used)] for c in map(str, hit["ranked"]) if c in known])
    return [item_id, _cut(first.get("input"), TEXT_CHARS), _cut(first.get("target"), TEXT_CHARS), gold, cells, found]


def _compact(items: list[list]) -> list[str]:
    """Shrink the cells in place, the bulk of the page: an answer equal to the gold answer becomes its score alone,
    an answer given 3 times or more becomes an index into the returned table, a 0/1 score an integer.
    drilldown.js expands them back to [answer, score]."""
    seen = Counter(c[0] for item in items for c in item[4] if c)
    table = [text for text, n in seen.items() if n >= 3 and len(text) > 2]
    index = {text: k for k, text in enumerate(table)}
    for item in items:
        for k, cell in enumerate(item[4]):
            if cell is None:
                continue
            score = int(cell[1]) if cell[1] in (0, 1) else cell[1]
            item[4][k] = score if cell[0] == item[2] and score is not None else [index.get(cell[0], cell[0]), score]
    return table


def embed_json(data: Any) -> str:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' can end the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
