"""Every faiss index type on a real corpus: build time, memory, queries/s and recall@5 against Flat.

    .venv/bin/python benchmarks/rag_indexes.py [--corpus covid_qa] [--chunk-size 64]

Reads ../shared/data/<corpus> (never copied), re-chunks it with the fixed chunker into thousands of
chunks, embeds them with the embedded embedder (cached on disk, so a second run skips that), and
queries with the corpus's test questions. Prints a table; writes benchmarks/results/rag_indexes.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


from contracts.spec import EMBEDDED_EMBEDDER
from baselines.embedding import Embedder
from baselines.rag.chunking import ChunkParams, Tools, chunkers
from baselines.rag.corpus import Document
from baselines.rag.index import IndexParams, build, index_bytes, indexes, latency_ms, recall_against, search

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
K = 5


def load(corpus: str) -> tuple[list[Document], list[str]]:
    """Documents and test questions; each corpus row becomes one document."""
    folder = DATA / corpus
    rows = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    docs = [Document(str(r.get("chunk_id") or r.get("pubid") or i), r["text"] if "text" in r else " ".join(r["CONTEXTS"]))
            for i, r in enumerate(rows)]
    tests = [json.loads(line) for line in (folder / "test.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return docs, [t.get("question") or t.get("QUESTION") for t in tests]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="covid_qa", choices=["covid_qa", "pubmedqa"])
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5, help="batch searches timed per index (best is kept)")
    args = parser.parse_args()

    docs, questions = load(args.corpus)
    embedder = Embedder(EMBEDDED_EMBEDDER)
    params = ChunkParams(size=args.chunk_size, overlap=args.chunk_size // 8)
    chunks = chunkers.get("fixed")(params, Tools(embedder.token_spans)).split_all(docs)
    began = time.perf_counter()
    vectors = embedder.embed([c.text for c in chunks])
    embed_s = time.perf_counter() - began
    queries = embedder.embed(questions)
    exact = search(build("flat", vectors, IndexParams()).index, queries, K)

    rows = []
    for name in indexes.names():
        built = build(name, vectors, IndexParams())
        found = search(built.index, queries, K)
        best = min(_timed(lambda: search(built.index, queries, K)) for _ in range(args.repeat))
        rows.append({"index": name, "params": built.params, "build_s": round(built.build_s, 4),
                     "bytes": index_bytes(built.index), "queries_per_s": round(len(queries) / best, 1),
                     **latency_ms(built.index, queries, K), f"recall@{K}_vs_flat": round(recall_against(found, exact), 4)})

    print(f"{args.corpus}: {len(docs)} documents -> {len(chunks)} chunks (fixed-{args.chunk_size}), dim {vectors.shape[1]}, "
          f"{len(queries)} queries, k={K}; embedding took {embed_s:.1f} s (0 if cached)")
    print(f"{'index':<9} {'build s':>8} {'MiB':>7} {'queries/s':>10} {'p50 ms':>7} {'p95 ms':>7} {'recall@5':>9}  params")
    for r in rows:
        knobs = ", ".join(f"{k}={v}" for k, v in r["params"].items() if k != "nlist_rule")
        print(f"{r['index']:<9} {r['build_s']:>8.3f} {r['bytes'] / 2**20:>7.2f} {r['queries_per_s']:>10.0f} "
              f"{r['query_ms_p50']:>7.3f} {r['query_ms_p95']:>7.3f} {r[f'recall@{K}_vs_flat']:>9.3f}  {knobs}")
    out = ROOT / "benchmarks" / "results" / "rag_indexes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"corpus": args.corpus, "documents": len(docs), "chunks": len(chunks), "chunk_size": args.chunk_size,
                               "dim": int(vectors.shape[1]), "queries": len(queries), "k": K, "machine": platform.processor() or platform.machine(),
                               "indexes": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


def _timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
