"""Chunkers (the `chunkers` registry): split Documents into Chunks that keep their document id and offsets.

Every chunk is a slice of its document, `doc.text[start:end] == chunk.text`, so a retrieved chunk can
always be traced back to the exact place it came from. Token counts come from a `TokenSpans` function
(the embedder's tokenizer in a real run), so "256 tokens" means what the embedder will see.

    chunker = chunkers.get("fixed")(ChunkParams(size=256, overlap=32), tools)
    chunks = chunker.split_all(documents)
"""

from __future__ import annotations

import bisect
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from contracts.registry import Registry
from baselines.rag.corpus import Document

TokenSpans = Callable[[str], list[tuple[int, int]]]
"""text -> (start, end) character span of every token."""
Embed = Callable[[list[str]], np.ndarray]
"""texts -> unit-length vectors, one row per text."""


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    start: int
    end: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc_id}:{self.start}-{self.end}"


@dataclass(frozen=True)
class ChunkParams:
    size: int = 256
    """Tokens per chunk (fixed, recursive)."""
    overlap: int = 32
    """Tokens shared by neighbouring fixed-size chunks."""
    sentences: int = 3
    """Sentences per chunk (sentence)."""
    percentile: float = 80.0
    """Split where the neighbour distance is above this percentile of the document's distances (semantic)."""


@dataclass(frozen=True)
class Tools:
    tokens: TokenSpans
    embed: Embed | None = None


def whitespace_tokens(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_PARAGRAPH_END = re.compile(r"\n\s*\n")


def _spans_between(text: str, start: int, end: int, boundary: re.Pattern) -> list[tuple[int, int]]:
    """The non-blank pieces of text[start:end] between boundary matches, trimmed of whitespace."""
    out, pos = [], start
    for m in list(boundary.finditer(text, start, end)) + [None]:
        stop = m.start() if m else end
        piece = text[pos:stop]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((pos + lead, pos + len(piece.rstrip())))
        if m:
            pos = m.end()
    return out


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentences: split after . ! ? followed by space, and at line breaks (headings, list items)."""
    return _spans_between(text, start, len(text) if end is None else end, _SENTENCE_END)


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    return _spans_between(text, start, len(text) if end is None else end, _PARAGRAPH_END)


chunkers: Registry[type[Chunker]] = Registry("chunker")


class Chunker(ABC):
    """Implementation requirements: `split(doc)` returns chunks in document order, each a slice of
    doc.text; `uses` names the ChunkParams fields that change the output (the plan sweeps only those)."""

    uses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: ChunkParams, tools: Tools):
        self.params = params
        self.tools = tools

    @abstractmethod
    def split(self, doc: Document) -> list[Chunk]: ...

    def split_all(self, docs: list[Document]) -> list[Chunk]:
        return [chunk for doc in docs for chunk in self.split(doc)]

    @staticmethod
    def _chunk(doc: Document, start: int, end: int) -> Chunk:
        return Chunk(doc.id, start, end, doc.text[start:end])


def _windows(spans: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans of windows of `size` tokens, each starting `size - overlap` tokens after the last."""
    out, step = [], size - overlap
    for i in range(0, len(spans), step):
        window = spans[i : i + size]
        out.append((window[0][0], window[-1][1]))
        if i + size >= len(spans):
            break
    return out


@chunkers.register("fixed")
class Fixed(Chunker):
    """Windows of `size` tokens with `overlap` tokens shared by neighbours: the usual baseline."""

    uses = ("size", "overlap")

    def split(self, doc: Document) -> list[Chunk]:
        spans = self.tools.tokens(doc.text)
        return [self._chunk(doc, s, e) for s, e in _windows(spans, self.params.size, self.params.overlap)]


@chunkers.register("sentence")
class Sentence(Chunker):
    """Groups of `sentences` consecutive sentences: chunks never cut a sentence."""

    uses = ("sentences",)

    def split(self, doc: Document) -> list[Chunk]:
        sents, n = sentence_spans(doc.text), self.params.sentences
        return [self._chunk(doc, sents[i][0], sents[min(i + n, len(sents)) - 1][1]) for i in range(0, len(sents), n)]


@chunkers.register("recursive")
class Recursive(Chunker):
    """Paragraphs, then sentences, then token windows, each level used only for pieces still over
    `size` tokens; neighbouring small pieces are merged back up to `size` (the "recursive character"
    splitter, counted in tokens)."""

    uses = ("size",)

    def split(self, doc: Document) -> list[Chunk]:
        spans = self.tools.tokens(doc.text)
        starts = [s for s, _ in spans]

        def count(start: int, end: int) -> int:
            return bisect.bisect_left(starts, end) - bisect.bisect_left(starts, start)

        def pieces(start: int, end: int, level: int) -> list[tuple[int, int]]:
            if count(start, end) <= self.params.size:
                return [(start, end)]
            if level == 2:
                inside = spans[bisect.bisect_left(starts, start) : bisect.bisect_left(starts, end)]
                return _windows(inside, self.params.size, 0)
            parts = (paragraph_spans, sentence_spans)[level](doc.text, start, end)
            return [p for s, e in parts for p in pieces(s, e, level + 1)]

        merged: list[tuple[int, int]] = []
        for s, e in pieces(0, len(doc.text), 0):
            if merged and count(merged[-1][0], e) <= self.params.size:
                merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        return [self._chunk(doc, s, e) for s, e in merged if doc.text[s:e].strip()]


@chunkers.register("semantic")
class Semantic(Chunker):
    """Sentences grouped until the embedding similarity of neighbouring sentences drops: a split
    wherever their cosine distance is above the document's `percentile`-th percentile."""

    uses = ("percentile",)

    def split(self, doc: Document) -> list[Chunk]:
        sents = sentence_spans(doc.text)
        if len(sents) < 3:
            return [self._chunk(doc, sents[0][0], sents[-1][1])] if sents else []
        vecs = self.tools.embed([doc.text[s:e] for s, e in sents])
        distance = 1 - np.sum(vecs[:-1] * vecs[1:], axis=1)
        cut = np.percentile(distance, self.params.percentile)
        out, first = [], 0
        for i, d in enumerate(distance):
            if d > cut:
                out.append(self._chunk(doc, sents[first][0], sents[i][1]))
                first = i + 1
        out.append(self._chunk(doc, sents[first][0], sents[-1][1]))
        return out
