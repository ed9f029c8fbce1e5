"""What a storage backend offers: two small search interfaces and the rows it is given to keep.

A backend keeps documents and their chunks, a dense vector and a lexical (BM25) entry per chunk, and
publishes each change atomically. It is handed finished rows (:class:`Addition`): chunking, embedding
and tokenising happen before, in :mod:`rag.indexing`. Searches go through :class:`VectorStore` (dense)
and :class:`LexicalStore` (BM25), both addressed by the integer key of a chunk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..types import Chunk, Document

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "Addition",
    "Change",
    "DocumentRecord",
    "DocumentRecords",
    "EmbeddingSpec",
    "LexicalStore",
    "Store",
    "StoreView",
    "VectorStore",
    "key_tail",
    "source_key",
    "source_tail",
]


def source_key(source: str, name: str) -> str:
    """What makes two documents versions of one source: an upload's name as the user gave it, else its path."""
    return f"upload:{name}" if name else os.path.abspath(source)


def key_tail(key: str) -> str:
    """The cheap part of a :func:`source_key` (or of a stored source) to look it up by, without making every
    stored path absolute: the file's name (a path and its absolute form end alike), or an upload's whole
    key; odd endings (``.``, ``..``, ``/``) give ``""``, which every lookup also has to check."""
    if key.startswith("upload:"):
        return key
    tail = key.rpartition("/")[2]
    return "" if tail in (".", "..") else tail


def source_tail(source: str, name: str) -> str:
    """:func:`key_tail` of a stored document's source key."""
    return key_tail(f"upload:{name}" if name else source)


class VectorStore(Protocol):
    """Inner-product search over unit vectors, addressed by integer keys (a backend never reuses a key).

    What a view searches; how rows get in is the backend's own (:meth:`Store.update`): the local one adds and
    removes keys in FAISS, a server engine writes whole rows."""

    dimension: int

    def __len__(self) -> int: ...

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, scores)`` of the ``k`` nearest vectors, best first (fewer if the store is smaller)."""
        ...


class LexicalStore(Protocol):
    """BM25 over our own tokens (t2s-normalised, stopwords removed, jieba), addressed by integer keys."""

    def __len__(self) -> int: ...

    def top(self, query: list[str], n: int) -> list[tuple[int, float]]:
        """``(key, score)`` of the ``n`` best chunks with a positive score, best first."""
        ...

    def idf(self, term: str) -> float: ...


class EmbeddingSpec(Protocol):
    """What a backend records of the embedding model: its identity (a change needs a rebuild) and size."""

    model_id: str
    dimension: int


@dataclass(frozen=True)
class DocumentRecord:
    document: Document
    added_at: str
    chunk_ids: tuple[str, ...]
    updated: bool = False  # it replaced an earlier version from the same source


class DocumentRecords(Mapping[str, DocumentRecord]):
    """The stored documents by id, as a write's plan sees them."""

    def by_source(self, keys: Collection[str]) -> dict[str, str]:
        """The id of the stored document of each :func:`source_key` in ``keys`` that has one.

        This reads every record; a backend that can look sources up answers it without the scan."""
        wanted = set(keys)
        found = {}
        for doc_id, record in self.items():
            key = source_key(record.document.source, record.document.name)
            if key in wanted:
                found[key] = doc_id
        return found


@dataclass(frozen=True)
class Addition:
    """One document ready to store: its chunks with their BM25 tokens and dense vectors (one row each)."""

    document: Document
    chunks: tuple[Chunk, ...]
    tokens: tuple[list[str], ...]
    vectors: np.ndarray  # float32, (len(chunks), dimension)
    updated: bool = False

    def __post_init__(self) -> None:
        if not len(self.chunks) == len(self.tokens) == len(self.vectors):
            raise ValueError(f"{len(self.chunks)} chunks, {len(self.tokens)} token lists, {len(self.vectors)} vectors")


@dataclass
class Change:
    """One atomic update: documents removed (by id) and documents added, published as one version."""

    remove: set[str] = field(default_factory=set)
    add: list[Addition] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.remove or self.add)


class StoreView(Protocol):
    """One published state of a store: what a search reads, unchanged by later writes."""

    version: int
    documents: DocumentRecords
    chunks: Sequence[Chunk]
    vectors: VectorStore
    lexical: LexicalStore

    def chunk(self, key: int) -> Chunk: ...


class Store(Protocol):
    """A backend: where one knowledge base's documents, chunks, vectors and BM25 entries are kept.

    Every write is one :meth:`update`, all or nothing, also when the process is killed; readers keep the
    view they have until :meth:`refresh` picks up what was published (by this process or another)."""

    path: Path
    embeddings: EmbeddingSpec

    @property
    def snapshot(self) -> StoreView: ...

    @classmethod
    def exists(cls, path: Path) -> bool: ...

    @classmethod
    def open(cls, path: Path, settings: Settings, embeddings: EmbeddingSpec) -> Store:
        """The published store; ``IndexNotFoundError``, ``IndexCorruptError``, or ``IndexMismatchError`` when it
        was built with other settings (its documents can still be read: :meth:`read_documents`)."""
        ...

    @classmethod
    def create(cls, path: Path, settings: Settings, embeddings: EmbeddingSpec) -> Store:
        """A new, empty store; its first update replaces whatever was at ``path``."""
        ...

    @staticmethod
    def read_documents(path: Path) -> list[Document]: ...

    @classmethod
    def document_count(cls, path: Path, settings: Settings) -> int:
        """How many documents the published version at ``path`` holds (without opening the whole store)."""
        ...

    @classmethod
    def destroy(cls, path: Path, settings: Settings) -> None:
        """Remove the knowledge base at ``path``: its folder and whatever it keeps elsewhere (a server's data)."""
        ...

    def refresh(self) -> bool: ...

    def update(self, plan: Callable[[DocumentRecords], Change]) -> Change:
        """Publish ``plan(the latest published documents)``, decided and applied under the write lock."""
        ...

    def remove(self, doc_ids: Iterable[str]) -> list[str]: ...

    def close(self) -> None:
        """Let go of what the store holds open (a server connection; milvus-lite's one-process file)."""
        ...
