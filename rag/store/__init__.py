"""Storage backends: persist, publish and verify chunks with their dense vectors and BM25 entries.

The backend is handed finished rows (:mod:`rag.indexing` builds them) and searched through two small
interfaces, :class:`VectorStore` (dense) and :class:`LexicalStore` (BM25). The local backend
(:class:`Index`) keeps them in immutable segments published by an atomically swapped manifest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .backend import Addition, Change, DocumentRecord, EmbeddingSpec, LexicalStore, Store, StoreView, VectorStore
from .bm25 import BM25
from .index import (
    Index,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexStoreError,
    read_documents,
    read_manifest,
)
from .vectors import FaissVectorStore
from .view import Snapshot

if TYPE_CHECKING:
    from ..settings import Settings


def backend(settings: Settings) -> type[Store]:
    """The storage backend that ``settings.store`` names."""
    if settings.store == "milvus":
        from .milvus import MilvusStore  # imports pymilvus only when it is chosen

        return MilvusStore
    return Index


__all__ = [
    "BM25",
    "Addition",
    "Change",
    "DocumentRecord",
    "EmbeddingSpec",
    "FaissVectorStore",
    "Index",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexStoreError",
    "LexicalStore",
    "Snapshot",
    "Store",
    "StoreView",
    "VectorStore",
    "backend",
    "read_documents",
    "read_manifest",
]
