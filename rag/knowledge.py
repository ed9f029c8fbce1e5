"""The knowledge base: an index on disk plus the settings and embeddings it needs.

It opens the index (building it from the default corpus when missing, rebuilding it from the
stored documents when it was made with other settings), adds and removes files, and searches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .embeddings import DenseEmbeddings, load_embeddings
from .ingest import IngestError, load_bytes, load_paths
from .retrieval import Retriever
from .settings import DEFAULT_KB, RetrievalMode, Settings
from .store import (
    DocumentRecord,
    Index,
    IndexMismatchError,
    IndexNotFoundError,
    UpdateReport,
    read_documents,
)
from .types import Document, Hit
from .validation import InputError, check_question

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    """What happened to each file of a batch."""

    update: UpdateReport = field(default_factory=UpdateReport)
    errors: list[IngestError] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # doc id -> source

    def summary(self) -> str:
        parts = [f"added {len(self.update.added)} document(s) ({self.update.chunks_added} chunks)"]
        if self.update.unchanged:
            parts.append(f"{len(self.update.unchanged)} unchanged")
        if self.update.removed:
            parts.append(f"{len(self.update.removed)} earlier version(s) replaced")
        if self.errors:
            parts.append(f"{len(self.errors)} failed")
        return ", ".join(parts)


class NothingToIndexError(ValueError):
    """None of the files could be read: an existing index is not replaced by an empty one, none is created."""

    def __init__(self, path: Path, errors: list[IngestError]) -> None:
        if Index.exists(path):
            message = f"none of the files could be read; the index at {path} is unchanged"
        else:
            message = f"nothing to index: no readable file (.txt, .md, .html, .pdf, .docx) found; no index was created at {path}"
        super().__init__(message)
        self.errors = errors


class KnowledgeBaseNotFoundError(IndexNotFoundError):
    """A named knowledge base that was never created."""

    def __init__(self, name: str) -> None:
        super().__init__(f"知识库“{name}”不存在（用 `rag kb create {name}` 创建，或 `rag kb list` 查看已有的）")


class EmptyKnowledgeBaseError(InputError):
    """The knowledge base has no documents, so no question can be answered from it."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"知识库“{name}”中还没有文档，无法回答问题。请先添加文件"
            f"（网页的“知识库”页上传，或 `rag add --kb {name} 文件`）。"
        )


class KnowledgeBase:
    def __init__(self, index: Index, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        self.retriever = Retriever(index, settings)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        embeddings: DenseEmbeddings | None = None,
        build_if_missing: bool = True,
        progress: bool = False,
    ) -> "KnowledgeBase":
        """Open the knowledge base ``settings.kb`` (its index at ``settings.index_path``).

        The default one is built from ``settings.corpus`` when missing; another name must have been created
        (:class:`KnowledgeBaseNotFoundError`). An index made with other settings is rebuilt from its documents."""
        settings = settings or Settings()
        path = settings.index_path
        if not Index.exists(path) and settings.kb != DEFAULT_KB:
            raise KnowledgeBaseNotFoundError(settings.kb)
        embeddings = embeddings or load_embeddings(settings)
        if Index.exists(path):
            try:
                return cls(Index.open(path, settings, embeddings), settings)
            except IndexMismatchError as mismatch:
                log.warning("%s — rebuilding from the documents stored in the index", mismatch)
                documents = read_documents(path)
                index = Index.create(path, settings, embeddings)
                index.add(documents, progress=progress)
                return cls(index, settings)
        if not build_if_missing:
            return cls(Index.open(path, settings, embeddings), settings)  # raises IndexNotFoundError
        documents, errors = load_paths(settings.corpus, settings.max_file_bytes, settings.ocr_options)
        if not documents:  # no empty index that would refuse every question
            raise NothingToIndexError(path, errors)
        knowledge = cls(Index.create(path, settings, embeddings), settings)
        report = knowledge.add_documents(documents, errors, progress=progress)
        for error in report.errors:
            log.warning("skipped %s", error)
        return knowledge

    @classmethod
    def build(
        cls, paths: Iterable[str | Path], settings: Settings | None = None, *, progress: bool = False
    ) -> tuple["KnowledgeBase", IngestReport]:
        """A new index from ``paths``, replacing any index at ``settings.index_path`` in one atomic step.

        Raises :class:`NothingToIndexError`, and leaves everything as it was, when no file is readable."""
        settings = settings or Settings()
        documents, errors = load_paths(paths, settings.max_file_bytes, settings.ocr_options)
        if not documents:
            raise NothingToIndexError(settings.index_path, errors)
        knowledge = cls(Index.create(settings.index_path, settings, load_embeddings(settings)), settings)
        return knowledge, knowledge.add_documents(documents, errors, progress=progress)

    # ------------------------------------------------------------------ changing
    def add_paths(self, paths: Iterable[str | Path], *, progress: bool = False) -> IngestReport:
        documents, errors = load_paths(paths, self.settings.max_file_bytes, self.settings.ocr_options)
        return self.add_documents(documents, errors, progress=progress)

    def add_bytes(self, data: bytes, source: str, name: str = "") -> IngestReport:
        """Add one uploaded file (``name``: the name to show for it); an :class:`IngestError` is reported, never raised."""
        try:
            document = replace(load_bytes(data, source, self.settings.max_file_bytes, self.settings.ocr_options), name=name)
        except IngestError as error:
            return IngestReport(errors=[error])
        return self.add_documents([document], [])

    def add_documents(
        self, documents: list[Document], errors: list[IngestError] | None = None, *, progress: bool = False
    ) -> IngestReport:
        report = IngestReport(errors=list(errors or []))
        report.update = self.index.add(documents, progress=progress)
        report.sources = {d.id: d.source for d in documents}
        return report

    def remove(self, ref: str) -> UpdateReport:
        """Remove documents named by id, id prefix or source path; raises ``KeyError`` if none match."""
        doc_ids = self.index.find_documents(ref)
        if not doc_ids:
            raise KeyError(f"no document matches {ref!r} (use `rag list` to see ids and sources)")
        return self.index.remove(doc_ids)

    # ------------------------------------------------------------------ reading
    @property
    def name(self) -> str:
        return self.settings.kb

    @property
    def documents(self) -> list[DocumentRecord]:
        return list(self.index.snapshot.documents.values())

    def check_not_empty(self) -> None:
        """:class:`EmptyKnowledgeBaseError` (an ``InputError``) when there is nothing to search."""
        self.index.refresh()  # another process may have added or removed documents
        if not self.index.snapshot.documents:
            raise EmptyKnowledgeBaseError(self.name)

    def search(self, question: str, k: int | None = None, mode: RetrievalMode | None = None) -> list[Hit]:
        """The best passages for ``question``; :class:`~rag.validation.InputError` for unusable input
        or an empty knowledge base."""
        question = check_question(question, self.settings.max_question_chars)
        self.check_not_empty()
        return self.retriever.search(question, k=k, mode=mode)
