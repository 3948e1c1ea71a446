"""Data checks that need a model, run by `compare` (and `validate --deep`): near-duplicate leakage by
embedding similarity, and inputs longer than the generator's context."""

from __future__ import annotations

from advisor.data import Splits
from advisor.yaml_errors import Problem


def near_duplicates(spec, splits: Splits) -> list[Problem]:
    """Test inputs whose embedding is within the threshold of a train input (paraphrase-level leakage)."""
    threshold = spec.data.near_duplicate_threshold
    if threshold is None or not splits.train or not splits.test:
        return []
    from advisor.spec import EMBEDDED_EMBEDDER
    from baselines.embedding import Embedder

    embedder = Embedder(EMBEDDED_EMBEDDER)
    similarity = embedder.embed([e.input for e in splits.test]) @ embedder.embed([e.input for e in splits.train]).T
    best = similarity.argmax(axis=1)
    hits = [(ex, splits.train[j], float(similarity[i, j])) for i, (ex, j) in enumerate(zip(splits.test, best))
            if similarity[i, j] >= threshold]
    if not hits:
        return []
    shown = "; ".join(f"test line {t.line} ~ train line {r.line} ({s:.2f})" for t, r, s in hits[:5])
    return [Problem(str(spec.resolve(spec.data.test)), None, spec.data.input,
                    f"{len(hits)} test input(s) are near-duplicates of train inputs (cosine >= {threshold}): {shown}"
                    + (" ..." if len(hits) > 5 else ""), "warning")]


def too_long(spec, splits: Splits, model_path: str) -> list[Problem]:
    """Inputs that alone exceed the model's context; the engine keeps their end (where the question is)."""
    import json
    from pathlib import Path

    from transformers import AutoTokenizer

    config = Path(model_path) / "config.json"
    context = json.loads(config.read_text()).get("max_position_embeddings") if config.exists() else None
    if not context:
        return []
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    problems = []
    for split in ("train", "test"):
        long = [ex for ex in getattr(splits, split) if len(tokenizer(ex.input, add_special_tokens=False).input_ids) > context]
        if long:
            problems.append(Problem(str(spec.resolve(getattr(spec.data, split))), None, spec.data.input,
                                    f"{len(long)} input(s) longer than the model's context of {context} tokens "
                                    f"(lines {', '.join(str(e.line) for e in long[:5])}); their start is cut to fit", "warning"))
    return problems
