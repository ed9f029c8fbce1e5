"""Approximate dense search for large segments: HNSW or IVF-PQ beside a segment's exact vectors.

Exact (flat) search reads every vector: ~130 ms a query at 1 M vectors on one thread, past the 30 ms a
hybrid search may take. A segment with at least ``vector_index_min_rows`` rows therefore gets an
approximate index when it is written (``ann.faiss`` in its folder); smaller segments, where exact search
costs a few milliseconds, are searched exactly whatever the setting. ``bench/bench_archive.py`` measures
the kinds at 1 M chunks (build time, query time, recall@10 against exact search, memory).

- ``hnsw``: a graph over a copy of the vectors (FAISS ``IndexHNSWFlat``); scores are exact inner products.
  Opened with the vectors memory-mapped, so memory grows with the pages queries touch.
- ``ivfpq``: 48-byte product-quantised codes in inverted lists (a few % of the vectors' size); the
  candidates it finds are re-scored exactly against the segment's memory-mapped vectors.

Removed documents' rows are excluded inside the search (a bitmap selector), so tombstones cost no recall.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from ..settings import VectorIndexKind

__all__ = ["ANN_FILE", "AnnIndex", "build", "choose"]

ANN_FILE = "ann.faiss"
#: What ``auto`` picks for a large segment. At 1 M chunks (bench/bench_archive.py) IVF-PQ found the exact
#: top 10 with 1,000 re-scored candidates in under 1 ms, built in 135 s against HNSW's 255 s, and keeps a
#: few % of the vectors' size in memory; HNSW needed efSearch 512 for recall 0.935 there.
AUTO_KIND = "ivfpq"
HNSW_M = 32  # links per node; memory 256 B a vector beside its copy of the vectors
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 512  # recall@10 0.81 / 0.90 / 0.935 at 128 / 256 / 512 (1 M chunks), each under 1 ms
IVF_LISTS_PER_SQRT = 4  # nlist = 4·√n, FAISS's usual range (4–16·√n)
IVF_NPROBE = 32
PQ_BYTES = 48  # 8 dimensions a byte at 384 dimensions
#: An IVF-PQ search re-scores this many candidates exactly (or 16 per result, if more): recall@10 at 1 M
#: chunks was 0.61 with 80 of them, 0.80 with 160, 1.0 with 800; PQ's own ranking is what loses recall.
REFINE_CANDIDATES = 1000
REFINE_PER_RESULT = 16
TRAINING_ROWS = 100_000  # k-means on a sample (at least the 39 a list FAISS asks for); more adds time, not recall
#: Fewest rows each kind is built for: IVF-PQ's 16 four-bit centroids need 16 rows each to train.
MIN_ROWS = {"hnsw": 1, "ivfpq": 256}


def choose(kind: VectorIndexKind, rows: int, min_rows: int) -> str | None:
    """The approximate index a segment of ``rows`` rows gets (None: exact search only)."""
    chosen = AUTO_KIND if kind == "auto" else kind
    if chosen == "flat" or rows < max(min_rows, MIN_ROWS[chosen]):
        return None
    return chosen


def build(kind: str, vectors: np.ndarray) -> faiss.Index:
    """An approximate index of ``kind`` over ``vectors`` (unit rows); its ids are the row numbers."""
    rows, dimension = vectors.shape
    # Every core: searches cap this thread to one (rag.store.view), a build is worth them all.
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    elif kind == "ivfpq":
        lists = max(1, min(int(IVF_LISTS_PER_SQRT * math.sqrt(rows)), rows // 39))  # ≥ 39 training rows a list
        bits = 8 if rows >= 256 * 39 else 4  # PQ codebooks need ≥ 39 rows per centroid
        parts = math.gcd(dimension, PQ_BYTES)  # sub-vectors must divide the dimension
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dimension), dimension, lists, parts, bits, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(rows, min(rows, max(TRAINING_ROWS, 39 * lists)), replace=False)
        index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
    else:
        raise ValueError(f"unknown vector index kind {kind!r} (flat, hnsw or ivfpq)")
    for start in range(0, rows, 100_000):  # in blocks: a memory-mapped 1 M × 384 array is 1.5 GB
        index.add(np.ascontiguousarray(vectors[start : start + 100_000], dtype=np.float32))
    return index


@dataclass(frozen=True, eq=False)
class AnnIndex:
    """A segment's approximate index, read from ``path``."""

    kind: str
    index: faiss.Index

    @classmethod
    def read(cls, path: Path, kind: str) -> AnnIndex:
        # MMAP_IFC maps the stored vectors (HNSW's copy, IVF's codes) instead of reading them into memory.
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        if kind not in ("hnsw", "ivfpq"):
            raise ValueError(f"unknown vector index kind {kind!r}")
        return cls(kind, index)

    def search(
        self, query: np.ndarray, k: int, vectors: np.ndarray, live: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and inner products of the ``k`` nearest live rows, best first.

        ``query`` is a (1, dimension) float32 array; ``vectors`` the segment's exact vectors (IVF-PQ
        candidates are re-scored against them); ``live`` a packed little-endian bitmap of the rows that may be
        returned (None: all)."""
        selector = faiss.IDSelectorBitmap(self.index.ntotal, faiss.swig_ptr(live)) if live is not None else None
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k), sel=selector)
            scores, rows = self.index.search(query, k, params=params)
            found = rows[0] >= 0
            return rows[0][found], scores[0][found]
        params = faiss.SearchParametersIVF(nprobe=IVF_NPROBE, sel=selector)
        _, rows = self.index.search(query, max(REFINE_CANDIDATES, k * REFINE_PER_RESULT), params=params)
        candidates = np.sort(rows[0][rows[0] >= 0])  # ascending: the memory-mapped reads go forward
        exact = np.asarray(vectors[candidates], dtype=np.float32) @ query[0]
        best = np.argsort(-exact, kind="stable")[:k]
        return candidates[best], exact[best]
