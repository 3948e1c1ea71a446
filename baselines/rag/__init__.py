"""Retrieval-augmented generation: the family is in family.py; corpus.py reads the knowledge, chunking.py
and index.py hold the `chunkers` and `indexes` registries it sweeps."""

from baselines.rag.family import Rag, RagOptions, corpus_path  # registers "rag"

__all__ = ["Rag", "RagOptions", "corpus_path"]
