"""faiss vector indexes (the `indexes` registry), and how good and fast each is against exact search.

Vectors are unit length, so inner product = cosine. Each index declares which IndexParams fields it
uses: a trial's settings hold only those, so changing an HNSW knob does not re-run a Flat trial.
Parameters left as None are chosen from the corpus size, and `build` returns what was chosen.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from pydantic import Field

from contracts.registry import Registry
from contracts.spec import Strict

MIN_PER_LIST = 39
"""faiss's k-means wants about 39 training vectors per centroid; fewer and it warns of poor clusters."""


class IndexParams(Strict):
    hnsw_m: int = Field(32, ge=2, description="HNSW: neighbours per node.")
    ef_construction: int = Field(64, ge=1, description="HNSW: candidate list size while building.")
    ef_search: int = Field(64, ge=1, description="HNSW: candidate list size while searching.")
    nlist: int | None = Field(None, ge=1, description="IVF: number of lists (default ~sqrt(n), at most n/39).")
    nprobe: int | None = Field(None, ge=1, description="IVF: lists searched per query (default nlist/4).")
    pq_m: int | None = Field(None, ge=1, description="IVF-PQ: sub-quantizers (default: dim/8, a divisor of dim).")
    pq_bits: int | None = Field(None, ge=1, le=8, description="IVF-PQ: bits per code (default 8, fewer on tiny corpora).")
    lsh_bits: int | None = Field(None, ge=8, description="LSH: hash bits (default 4 x dim).")


@dataclass(frozen=True)
class IndexKind:
    build: Callable[[np.ndarray, IndexParams], tuple[Any, dict[str, Any]]]
    """(vectors, params) -> (trained faiss index holding the vectors, the parameters actually used)."""
    uses: tuple[str, ...]


indexes: Registry[IndexKind] = Registry("index")


def index_kind(name: str, uses: tuple[str, ...] = ()):
    def add(build):
        indexes.register(name)(IndexKind(build, uses))
        return build

    return add


def _filled(vectors: np.ndarray, index) -> Any:
    if not index.is_trained:
        index.train(vectors)
    index.add(vectors)
    return index


def _ivf_lists(n: int, p: IndexParams) -> tuple[int, int]:
    nlist = p.nlist or max(1, min(round(math.sqrt(n)), n // MIN_PER_LIST))
    nlist = min(nlist, n)
    return nlist, min(nlist, p.nprobe or max(1, nlist // 4))


@index_kind("flat")
def flat(vectors: np.ndarray, p: IndexParams):
    import faiss

    return _filled(vectors, faiss.IndexFlatIP(vectors.shape[1])), {}


@index_kind("hnsw", ("hnsw_m", "ef_construction", "ef_search"))
def hnsw(vectors: np.ndarray, p: IndexParams):
    import faiss

    index = faiss.IndexHNSWFlat(vectors.shape[1], p.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction, index.hnsw.efSearch = p.ef_construction, p.ef_search
    return _filled(vectors, index), {"M": p.hnsw_m, "efConstruction": p.ef_construction, "efSearch": p.ef_search}


@index_kind("ivf-flat", ("nlist", "nprobe"))
def ivf_flat(vectors: np.ndarray, p: IndexParams):
    import faiss

    nlist, nprobe = _ivf_lists(len(vectors), p)
    d = vectors.shape[1]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    _filled(vectors, index).nprobe = nprobe
    return index, {"nlist": nlist, "nprobe": nprobe, "nlist_rule": "given" if p.nlist else f"~sqrt(n), at most n/{MIN_PER_LIST}"}


@index_kind("ivf-pq", ("nlist", "nprobe", "pq_m", "pq_bits"))
def ivf_pq(vectors: np.ndarray, p: IndexParams):
    import faiss

    n, d = vectors.shape
    nlist, nprobe = _ivf_lists(n, p)
    m = p.pq_m or max((k for k in range(1, d // 8 + 1) if d % k == 0), default=1)
    if d % m:
        raise ValueError(f"ivf-pq: pq_m={m} must divide the embedding dimension {d}")
    bits = p.pq_bits or max(1, min(8, int(math.log2(max(2, n // 4)))))  # 2**bits centroids need training vectors
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, m, bits, faiss.METRIC_INNER_PRODUCT)
    _filled(vectors, index).nprobe = nprobe
    return index, {"nlist": nlist, "nprobe": nprobe, "pq_m": m, "pq_bits": bits,
                   "nlist_rule": "given" if p.nlist else f"~sqrt(n), at most n/{MIN_PER_LIST}"}


@index_kind("lsh", ("lsh_bits",))
def lsh(vectors: np.ndarray, p: IndexParams):
    import faiss

    bits = p.lsh_bits or 4 * vectors.shape[1]
    return _filled(vectors, faiss.IndexLSH(vectors.shape[1], bits)), {"nbits": bits}


@dataclass
class Built:
    index: Any
    params: dict[str, Any]
    build_s: float


def build(name: str, vectors: np.ndarray, params: IndexParams) -> Built:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    began = time.perf_counter()
    index, chosen = indexes.get(name).build(vectors, params)
    return Built(index, chosen, time.perf_counter() - began)


def search(index, queries: np.ndarray, k: int) -> np.ndarray:
    """Row i: ids of the k nearest vectors to query i, best first (-1 pads when fewer exist)."""
    _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, index.ntotal))
    return ids


def index_bytes(index) -> int:
    import faiss

    return int(faiss.serialize_index(index).size)


def round_trip(index):
    import faiss

    return faiss.deserialize_index(faiss.serialize_index(index))


def recall_against(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k that the index also returned (1.0 = same neighbours)."""
    if not len(exact):
        return 1.0
    hits = [len(set(f[f >= 0]) & set(e[e >= 0])) / max(1, int((e >= 0).sum())) for f, e in zip(found, exact)]
    return float(np.mean(hits))


def latency_ms(index, queries: np.ndarray, k: int) -> dict[str, float]:
    """p50 / p95 of one-query searches, the way a serving system sees them."""
    times = []
    for q in np.ascontiguousarray(queries, dtype=np.float32):
        began = time.perf_counter()
        index.search(q[None, :], min(k, index.ntotal))
        times.append((time.perf_counter() - began) * 1000)
    if not times:
        return {"query_ms_p50": None, "query_ms_p95": None}
    return {"query_ms_p50": round(float(np.percentile(times, 50)), 4), "query_ms_p95": round(float(np.percentile(times, 95)), 4)}
