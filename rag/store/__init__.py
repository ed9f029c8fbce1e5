"""Index storage: FAISS vectors and BM25 behind a versioned, atomically updated directory."""

from .bm25 import BM25
from .index import (
    DocumentRecord,
    Index,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexStoreError,
    Snapshot,
    UpdateReport,
    read_documents,
    read_manifest,
)
from .vectors import FaissVectorStore, VectorStore

__all__ = [
    "BM25",
    "DocumentRecord",
    "FaissVectorStore",
    "Index",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IndexStoreError",
    "Snapshot",
    "UpdateReport",
    "VectorStore",
    "read_documents",
    "read_manifest",
]
