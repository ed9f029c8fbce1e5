"""The indexing pipeline: documents in, the rows a store keeps out.

Each new document is cleaned once and chunked; its chunks are embedded (the first ``dense_max_chars``
of their normalised text; a text embedded before by the same model comes from the embedding cache) and
tokenised for BM25. Against what is stored, documents are deduplicated
by content (the same id is stored once) and by source: a document from the same source as a stored
one — the same file path, or the same upload name — replaces it, in the same atomic change.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field

import numpy as np

from .chunking import ChunkingConfig, chunk_document
from .embeddings import DenseEmbeddings
from .embeddings.cache import CACHE_FILE, EmbeddingCache
from .progress import bar
from .settings import Settings
from .store.backend import Addition, Change, DocumentRecords, source_key
from .text import clean, tokenize
from .types import Chunk, Document

__all__ = ["Indexer", "UpdateReport", "split_document"]


@dataclass
class UpdateReport:
    added: list[str] = field(default_factory=list)  # doc ids
    unchanged: list[str] = field(default_factory=list)  # doc ids already present
    removed: list[str] = field(default_factory=list)  # doc ids gone (deleted, or replaced by a newer version)
    updated: list[str] = field(default_factory=list)  # added doc ids that replaced an earlier version
    chunks_added: int = 0


def split_document(document: Document, config: ChunkingConfig) -> list[Chunk]:
    return chunk_document(document, clean(document.text), config)


class Indexer:
    """Turns documents into a :class:`~rag.store.backend.Change` against the stored documents."""

    def __init__(self, settings: Settings, embeddings: DenseEmbeddings) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.chunking = ChunkingConfig(settings.chunk_size, settings.chunk_overlap)
        self.cache = EmbeddingCache(settings.data_dir / CACHE_FILE, settings.embedding_cache_mb * 1024 * 1024)

    def plan(
        self,
        documents: list[Document],
        stored: DocumentRecords,
        *,
        replace_all: bool = False,
        progress: bool = False,
    ) -> tuple[Change, UpdateReport]:
        """The change that adds ``documents`` to ``stored`` (``replace_all``: that replaces all of ``stored``
        with them), and its report. Only the documents to add are chunked and embedded."""
        report = UpdateReport()
        fresh: dict[str, Document] = {}  # by source; a later document of a source wins
        fresh_ids: set[str] = set()  # the ids in ``fresh`` (a rebuild passes thousands of documents)
        for document in documents:
            if (document.id in stored and not replace_all) or document.id in fresh_ids:
                report.unchanged.append(document.id)
            else:
                key = source_key(document.source, document.name)
                earlier = fresh.pop(key, None)
                if earlier is not None:
                    fresh_ids.discard(earlier.id)
                fresh[key] = document
                fresh_ids.add(document.id)
        by_source = stored.by_source(fresh.keys())
        replaced = set(stored) if replace_all else {by_source[key] for key in fresh if key in by_source}
        updated = {
            d.id
            for key, d in fresh.items()
            if (key in by_source and by_source[key] != d.id) or (d.id in stored and stored[d.id].updated)
        }
        additions = self.prepare(list(fresh.values()), updated, progress=progress)
        report.added = [a.document.id for a in additions]
        report.updated = [doc_id for doc_id in report.added if doc_id in updated]
        report.removed = sorted(replaced - set(report.added))
        report.chunks_added = sum(len(a.chunks) for a in additions)
        return Change(remove=replaced, add=additions), report

    def prepare(
        self, documents: list[Document], updated: Set[str] = frozenset(), *, progress: bool = False
    ) -> list[Addition]:
        """Clean, chunk, embed and tokenise ``documents`` (embedding all their chunks in one batch)."""
        chunked = []
        with bar("chunking", len(documents), "doc", show=progress and len(documents) > 1) as chunking:
            for document in documents:
                chunked.append(split_document(document, self.chunking))
                chunking.update()
        texts = [self._dense_text(chunk) for chunks in chunked for chunk in chunks]
        vectors = self._vectors(texts, progress)
        additions, row = [], 0
        for document, chunks in zip(documents, chunked):
            additions.append(
                Addition(
                    document,
                    tuple(chunks),
                    tuple(tokenize(c.normalized) for c in chunks),
                    np.asarray(vectors[row : row + len(chunks)], dtype=np.float32),
                    document.id in updated,
                )
            )
            row += len(chunks)
        return additions

    def _vectors(self, texts: list[str], progress: bool) -> np.ndarray:
        """The vectors of ``texts``: from the cache where it has them, the others embedded (each once) and cached."""
        dimension = self.embeddings.dimension
        vectors = np.zeros((len(texts), dimension), np.float32)
        if not texts:
            return vectors
        model_id = self.embeddings.model_id
        cached = self.cache.get(model_id, texts, dimension) if self.settings.embedding_cache_mb else [None] * len(texts)
        missing: dict[str, list[int]] = {}  # text -> its rows
        for row, (text, vector) in enumerate(zip(texts, cached)):
            if vector is None:
                missing.setdefault(text, []).append(row)
            else:
                vectors[row] = vector
        if missing:
            fresh = self.embeddings.embed_passages(list(missing), progress=progress)
            for rows, vector in zip(missing.values(), fresh):
                vectors[rows] = vector
            if self.settings.embedding_cache_mb:
                self.cache.put(model_id, list(missing), fresh)
        return vectors

    def _dense_text(self, chunk: Chunk) -> str:
        limit = self.settings.dense_max_chars
        return chunk.normalized[:limit] if limit else chunk.normalized
