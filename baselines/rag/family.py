"""The rag family: chunk a corpus, embed it, index it, retrieve per question, answer.

A trial is one (chunker, chunk size, index) combination. The plan sweeps only the knobs a chunker or
index actually reads, so no two trials differ by a setting that was never applied; each trial records
what its knobs changed (chunk count and length, a hash of the chunk boundaries, the index parameters).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from contracts.registry import UnknownName
from contracts.records import Example, Prediction
from contracts.spec import EMBEDDED_EMBEDDER, Strict
from baselines.registry import strategies
from baselines.base import Strategy
from baselines.budget import BUDGET_HELP
from baselines.models import fingerprint
from baselines.rag.chunking import Chunk, ChunkParams, chunkers
from baselines.rag.corpus import load_corpus
from baselines.rag.index import IndexParams, indexes
from baselines.templates import fill, resolve_templates

_CHUNK_FIELDS = {"size": "chunk_size", "overlap": "chunk_overlap", "sentences": "sentences_per_chunk",
                 "percentile": "breakpoint_percentile"}
"""ChunkParams field -> the option that sets it."""


def _known(registry, names: list[str]) -> list[str]:
    if not names:
        raise ValueError(f"list at least one {registry.kind}")
    for name in names:
        try:
            registry.get(name)
        except UnknownName as exc:
            raise ValueError(str(exc)) from None
    return list(dict.fromkeys(names))


class RagOptions(Strict):
    chunking: list[str] = Field(["fixed", "sentence"], description=f"Chunkers to compare: {', '.join(chunkers.names())}.")
    chunk_size: list[int] = Field([256], description="Tokens per chunk (fixed, recursive); one trial per value.")
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by neighbouring fixed-size chunks.")
    sentences_per_chunk: int = Field(3, ge=1, description="Sentences per chunk (sentence chunker).")
    breakpoint_percentile: float = Field(80.0, gt=0, lt=100, description="Semantic chunker: split at neighbour distances above this percentile.")
    index: list[str] = Field(["flat", "hnsw"], description=f"faiss indexes to compare: {', '.join(indexes.names())}.")
    index_params: IndexParams = Field(default_factory=IndexParams)
    k: int = Field(4, ge=1, description="Chunks retrieved per question.")
    embedder: str = Field(EMBEDDED_EMBEDDER, description="Embedded default, or a sentence-transformers folder / hub id.")
    context_tokens: int = Field(512, ge=16, description="Budget (generator tokens) for retrieved text in the prompt.")
    template: str | None = Field(None, description="Built-in 'context' (the default), or a .txt file with {context} and {input}.")
    max_documents: int = Field(50000, ge=1, description="Larger corpora are sampled down (seeded) with a warning.")
    gold_field: str = Field("doc", description="Test-set field naming the gold document, for retrieval recall@k and MRR.")
    max_new_tokens: int | None = Field(None, ge=1, description=BUDGET_HELP)
    batch_size: int = Field(8, ge=1)

    @field_validator("chunking")
    @classmethod
    def _chunkers(cls, names: list[str]) -> list[str]:
        return _known(chunkers, names)

    @field_validator("index")
    @classmethod
    def _indexes(cls, names: list[str]) -> list[str]:
        return _known(indexes, names)

    @field_validator("chunk_size")
    @classmethod
    def _sizes(cls, sizes: list[int]) -> list[int]:
        if not sizes or any(s < 1 for s in sizes):
            raise ValueError("chunk_size must be a non-empty list of token counts >= 1")
        return sorted(set(sizes))

    @model_validator(mode="after")
    def _overlap_below_size(self):
        if "fixed" in self.chunking and self.chunk_overlap >= min(self.chunk_size):
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than every chunk_size ({min(self.chunk_size)})")
        return self


def resolve_template(name: str | None, spec) -> str:
    """The prompt with retrieved context: a built-in (the task type's own by default) or a .txt file."""
    found = resolve_templates([name] if name else None, spec, kind="rag", placeholders=("{context}", "{input}"))
    return next(iter(found.values()))


def corpus_path(spec) -> Path:
    if spec.knowledge is None:
        raise ValueError("rag needs a knowledge corpus: add 'knowledge: {corpus: docs/}' to task.yaml")
    return spec.resolve(spec.knowledge.corpus)


def _digest(values) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]



@strategies.register("rag")
class Rag(Strategy):
    """Retrieval-augmented generation: chunkers x vector indexes over a knowledge corpus."""

    Options = RagOptions
    simplicity_rank = 1
    retrieves = True

    @classmethod
    def expand(cls, options: RagOptions, spec) -> list[tuple[str, dict[str, Any]]]:
        # an empty corpus is a plan error, seen by `advisor validate`
        corpus = load_corpus(corpus_path(spec), options.max_documents, spec.seed)
        common = {
            "corpus_sha256": corpus.fingerprint, "embedder": options.embedder, "embedder_files": fingerprint(options.embedder), "k": options.k,
            "context_tokens": options.context_tokens, "template": resolve_template(options.template, spec),
            "gold_field": options.gold_field, "max_new_tokens": options.max_new_tokens, "batch_size": options.batch_size,
            "max_documents": options.max_documents,
        }
        trials = []
        for chunker in options.chunking:
            uses = chunkers.get(chunker).uses
            for size in options.chunk_size if "size" in uses else [None]:
                chunk_params = {f: size if f == "size" else getattr(options, _CHUNK_FIELDS[f]) for f in uses}
                label = f"{chunker}-{size}" if size else chunker
                for index in options.index:
                    index_params = {f: getattr(options.index_params, f) for f in indexes.get(index).uses}
                    trials.append((f"rag/{label}/{index}", {**common, "chunker": chunker, "chunk_params": chunk_params,
                                                          "index": index, "index_params": index_params}))
        return trials

    def prepare(self) -> None:
        from baselines.embedding import Embedder
        from baselines.rag.chunking import Tools
        from baselines.rag.index import build, index_bytes

        s = self.settings
        self.corpus = load_corpus(corpus_path(self.ctx.spec), self.settings["max_documents"], self.ctx.spec.seed)
        self.embedder = Embedder(s["embedder"], device=self.ctx.device)
        self.ctx.progress(0, 3, "chunking")
        chunker = chunkers.get(s["chunker"])(ChunkParams(**s["chunk_params"]), Tools(self.embedder.token_spans, self.embedder.embed))
        self.chunks: list[Chunk] = chunker.split_all(self.corpus.documents)
        if not self.chunks:
            raise ValueError(f"chunker '{s['chunker']}' produced no chunks from {self.corpus.path}")
        self.chunk_tokens = [len(self.embedder.token_spans(c.text)) for c in self.chunks]
        budget = self.embedder.text_budget
        over = sum(n > budget for n in self.chunk_tokens)
        self.warnings = [f"{over} of {len(self.chunks)} chunks are longer than the embedder reads ({budget} tokens): "
                         "only their beginning is embedded, so retrieval cannot match the rest; use a smaller chunk_size"] if over else []
        self.ctx.progress(1, 3, f"embedding {len(self.chunks)} chunks")
        began = time.perf_counter()
        vectors, self.embed_s = self.embedder.embed_timed([c.text for c in self.chunks])  # cached vectors at their original time
        self.embed_wall_s = time.perf_counter() - began
        self.ctx.progress(2, 3, f"building {s['index']} index")
        self.built = build(s["index"], vectors, IndexParams(**s["index_params"]))
        self.exact = build("flat", vectors, IndexParams()).index
        self.index_bytes = index_bytes(self.built.index)
        self._save()

    def _save(self) -> None:
        import faiss

        from contracts.io import write_jsonl

        self.ctx.trial_dir.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.built.index, str(self.ctx.trial_dir / "index.faiss"))
        write_jsonl(self.ctx.trial_dir / "chunks.jsonl",
                    [{"id": c.id, "doc_id": c.doc_id, "start": c.start, "end": c.end, "text": c.text} for c in self.chunks])

    def _context(self, ranked: list[Chunk]) -> tuple[str, list[Chunk], int, bool]:
        """(context, chunks used, tokens used, whether a chunk was cut): chunks in rank order, each as "[doc_id] text",
        until `context_tokens` is spent; the chunk that overflows is cut to fit and ends the context."""
        lm, budget = self.ctx.lm, self.settings["context_tokens"]
        parts, used, cut = [], [], False
        for chunk in ranked:
            text = f"[{chunk.doc_id}] {chunk.text}"
            ids = lm.tokenizer(text + "\n\n", add_special_tokens=False).input_ids
            if len(ids) > budget:
                if budget >= 16:
                    parts.append(lm.tokenizer.decode(ids[:budget], skip_special_tokens=True).strip())
                    used.append(chunk)
                    cut = True
                break
            parts.append(text)
            used.append(chunk)
            budget -= len(ids)
        return "\n\n".join(parts), used, self.settings["context_tokens"] - budget, cut

    def predict(self, examples: list[Example]) -> list[Prediction]:
        from baselines.rag.index import latency_ms, recall_against, search
        from baselines.rag.scores import retrieval_scores
        from contracts.io import write_jsonl

        s, k = self.settings, self.settings["k"]
        began = time.perf_counter()
        queries = self.embedder.embed([e.input for e in examples], cache=False)  # served queries are in no cache: timed for real
        found = search(self.built.index, queries, k)
        retrieve_ms = 1000 * (time.perf_counter() - began) / max(len(examples), 1)
        self.ranked = {ex.id: [self.chunks[i] for i in row if i >= 0] for ex, row in zip(examples, found)}
        write_jsonl(self.ctx.trial_dir / "retrieved.jsonl",  # per question: the ranked chunks and its gold document (the report's drill-down)
                    [{"id": ex.id, "gold": ex.extra.get(s["gold_field"]), "ranked": [c.id for c in self.ranked[ex.id]]} for ex in examples])
        self.latency = latency_ms(self.built.index, queries, k)
        self.index_recall = recall_against(found, search(self.exact, queries, k))
        self.retrieval = retrieval_scores(examples, {i: [c.doc_id for c in r] for i, r in self.ranked.items()}, s["gold_field"], k,
                                          self.ctx.spec.seed)
        contexts = [self._context(self.ranked[ex.id]) for ex in examples]
        self.context_text = {ex.id: c[0] for ex, c in zip(examples, contexts)}
        self.context_tokens_used, self.truncated = [c[2] for c in contexts], sum(c[3] for c in contexts)
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            self.ctx.progress(done, len(examples), "answering")

        # each answer also carries its share of query embedding and search, so throughput covers the whole path
        return [replace(p, latency_ms=round(p.latency_ms + retrieve_ms, 2)) for p in self._answer(examples, contexts, tick)]

    def _answer(self, examples: list[Example], contexts: list[tuple], progress=None) -> list[Prediction]:
        from baselines.answer import answer

        s, labels = self.settings, self.ctx.splits.labels
        prompts = [[{"role": "user", "content": fill(s["template"], ex.input, labels, c[0])}] for ex, c in zip(examples, contexts)]
        return answer(self.ctx.lm, examples, prompts, task_type=self.ctx.spec.task.type, labels=labels,
                      max_new_tokens=self.ctx.max_new_tokens(s["max_new_tokens"], self.ctx.lm), batch_size=s["batch_size"],
                      progress=progress, sources=[[c.id for c in used] for _, used, *_ in contexts])

    def answer_one(self, example: Example) -> Prediction:
        """Served alone: the query embedded afresh (a served query is in no cache), searched, answered at batch 1."""
        from baselines.rag.index import search

        found = search(self.built.index, self.embedder.embed([example.input], cache=False), self.settings["k"])
        return self._answer([example], [self._context([self.chunks[i] for i in found[0] if i >= 0])])[0]

    def extra_metrics(self, examples: list[Example], predictions: list[Prediction]) -> dict[str, Any]:
        from baselines.rag.scores import grounding_scores

        grounded = grounding_scores(predictions, self.context_text, self.ctx.spec.seed) if self.ctx.spec.task.type != "classification" else {}
        return {**self.retrieval, **grounded}

    def resources(self) -> dict[str, Any]:
        # embeddings found in the cache (another trial's work) are charged at their original time: reused_setup_s
        return {"embed_corpus_s": round(self.embed_s, 3), "embed_corpus_wall_s": round(self.embed_wall_s, 3),
                "reused_setup_s": round(max(0.0, self.embed_s - self.embed_wall_s), 3), "index_build_s": round(self.built.build_s, 4),
                "index_bytes": self.index_bytes, **self.latency, "index_recall_at_k": round(self.index_recall, 4)}

    def details(self) -> dict[str, Any]:
        import faiss

        s = self.settings
        lengths, tokens = [len(c.text) for c in self.chunks], self.chunk_tokens
        knobs = ", ".join(f"{k}={v}" for k, v in self.built.params.items() if k != "nlist_rule")
        return {
            "summary": f"{len(self.chunks)} chunks of ~{np.mean(tokens):.0f} tokens; {s['index']}"
                       + (f" ({knobs})" if knobs else "") + f"; index recall@{s['k']} vs flat {self.index_recall:.2f}"
                       + (f"; retrieval recall@{s['k']} {self.retrieval['recall_at_k']:.2f}, MRR {self.retrieval['mrr']:.2f}"
                          if self.retrieval else "")
                       + (f"; {len(self.corpus.warnings)} corpus warning(s), see details" if self.corpus.warnings else ""),
            "warnings": self.warnings,
            "corpus": {"path": str(self.corpus.path), "documents": len(self.corpus.documents),
                       "sha256": s["corpus_sha256"], "warnings": self.corpus.warnings},
            "chunking": {"chunker": s["chunker"], "params": s["chunk_params"], "chunks": len(self.chunks),
                         "mean_chars": round(float(np.mean(lengths)), 1), "mean_tokens": round(float(np.mean(tokens)), 1),
                         "max_tokens": max(tokens), "boundaries_sha": _digest([(c.doc_id, c.start, c.end) for c in self.chunks])},
            "index": {"type": s["index"], "params": self.built.params, "vectors": int(self.built.index.ntotal),
                      "sha": hashlib.sha256(faiss.serialize_index(self.built.index).tobytes()).hexdigest()[:16]},
            "retrieval": {"k": s["k"], "embedder": s["embedder"], "context_tokens": s["context_tokens"],
                          "mean_context_tokens": round(float(np.mean(self.context_tokens_used)), 1) if self.context_tokens_used else 0,
                          "chunks_cut_to_fit": self.truncated},
        }
