"""Vector storage behind a small interface, so a distributed engine can stand in for FAISS later."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import faiss
import numpy as np


class VectorStore(Protocol):
    """Inner-product search over unit vectors, addressed by integer keys."""

    dimension: int

    def __len__(self) -> int: ...

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, keys: np.ndarray) -> int: ...

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, scores)`` of the ``k`` nearest vectors, best first (fewer if the store is smaller)."""
        ...

    def copy(self) -> "VectorStore": ...

    def save(self, path: Path) -> None: ...


class FaissVectorStore:
    """Exact inner-product search (``IndexFlatIP``) with explicit int64 keys; saved with ``faiss.write_index``."""

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
        scores, keys = self._index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), k)
        found = keys[0] >= 0
        return keys[0][found], scores[0][found]

    def copy(self) -> "FaissVectorStore":
        return FaissVectorStore(self.dimension, faiss.clone_index(self._index))

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> "FaissVectorStore":
        index = faiss.read_index(str(path))
        return cls(index.d, index)
