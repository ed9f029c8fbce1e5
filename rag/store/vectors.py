"""Dense vectors in one in-memory FAISS index (the naive evaluation baseline's; the local backend searches
its segments' vectors with the same kernel, rag.store.view)."""

from __future__ import annotations

import faiss
import numpy as np


class FaissVectorStore:
    """Exact inner-product search (``IndexFlatIP``) with explicit int64 keys: a :class:`~rag.store.backend.VectorStore`."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got shape {vectors.shape}")
        self._index.add_with_ids(vectors, np.ascontiguousarray(keys, dtype=np.int64))

    def remove(self, keys: np.ndarray) -> int:
        return int(self._index.remove_ids(np.ascontiguousarray(keys, dtype=np.int64)))

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        # One query: OpenMP threads only add start-up and contention (measured 4-13x slower with two threads on
        # a busy machine). The setting belongs to the calling thread, so it is made on each search.
        faiss.omp_set_num_threads(1)
        scores, keys = self._index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), k)
        found = keys[0] >= 0
        return keys[0][found], scores[0][found]
