"""The knowledge base: a store on disk plus the settings, embeddings and indexing pipeline it needs.

It opens the store (building the default knowledge base from the bundled pages when missing,
rebuilding one made with other settings), adds, replaces and removes documents, rebuilds, and
searches. The faces (page, CLI, API, MCP, eval) use only this class, never the store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .embeddings import DenseEmbeddings, load_embeddings
from .indexing import Indexer, UpdateReport
from .ingest import IngestError, load_bytes, load_paths
from .retrieval import Retriever
from .settings import DEFAULT_KB, RetrievalMode, Settings
from .store import DocumentRecord, IndexMismatchError, IndexNotFoundError, IndexStoreError, Store, backend
from .types import Chunk, Document, Hit
from .validation import InputError, check_question

__all__ = [
    "UPLOADS_DIR",
    "EmptyKnowledgeBaseError",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeBaseNotFoundError",
    "KnowledgeStats",
    "NothingToIndexError",
    "UpdateReport",
]

log = logging.getLogger(__name__)
#: Uploaded files are saved in this folder of the knowledge base, so that a rebuild can read them again.
UPLOADS_DIR = "uploads"


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
        if self.update.updated:
            parts.append(f"{len(self.update.updated)} updated (earlier version replaced)")
        if self.errors:
            parts.append(f"{len(self.errors)} failed")
        return ", ".join(parts)


@dataclass(frozen=True)
class KnowledgeStats:
    name: str
    path: Path
    version: int  # of the published state searched now
    documents: int
    chunks: int


class NothingToIndexError(ValueError):
    """None of the files could be read: an existing index is not replaced by an empty one, none is created."""

    def __init__(self, path: Path, errors: list[IngestError], exists: bool) -> None:
        if exists:
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
    def __init__(self, index: Store, settings: Settings, embeddings: DenseEmbeddings | None = None) -> None:
        self.index = index  # the store; the faces use the methods below instead
        self.settings = settings
        self.embeddings: DenseEmbeddings = embeddings or index.embeddings  # type: ignore[assignment]
        self.indexer = Indexer(settings, self.embeddings)
        self.retriever = Retriever(index, self.embeddings, settings)

    # ------------------------------------------------------------------ opening
    @staticmethod
    def exists(settings: Settings) -> bool:
        """Whether the knowledge base ``settings.kb`` has a published index."""
        return backend(settings).exists(settings.index_path)

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
        (:class:`KnowledgeBaseNotFoundError`). One made with other settings is rebuilt (:meth:`rebuild`,
        keeping every stored document)."""
        settings = settings or Settings()
        path, store = settings.index_path, backend(settings)
        if not store.exists(path) and settings.kb != DEFAULT_KB:
            raise KnowledgeBaseNotFoundError(settings.kb)
        embeddings = embeddings or load_embeddings(settings)
        if store.exists(path):
            try:
                return cls(store.open(path, settings, embeddings), settings, embeddings)
            except IndexMismatchError as mismatch:
                log.warning("%s — rebuilding from the documents stored in the index", mismatch)
                stored = store.read_documents(path)
                knowledge = cls(store.create(path, settings, embeddings), settings, embeddings)
                knowledge._rebuild([], stored, keep_stored=True, progress=progress)
                return knowledge
        if not build_if_missing:
            return cls(store.open(path, settings, embeddings), settings, embeddings)  # raises IndexNotFoundError
        knowledge = cls(store.create(path, settings, embeddings), settings, embeddings)
        report = knowledge._rebuild(None, [], keep_stored=False, progress=progress)
        for error in report.errors:
            log.warning("skipped %s", error)
        return knowledge

    @classmethod
    def build(
        cls, paths: Iterable[str | Path] | None, settings: Settings | None = None, *, progress: bool = False
    ) -> tuple["KnowledgeBase", IngestReport]:
        """The knowledge base rebuilt from ``paths`` (see :meth:`rebuild`), replacing any index at
        ``settings.index_path`` — a damaged one too — in one atomic step.

        Raises :class:`NothingToIndexError`, and leaves everything as it was, when no file is readable."""
        settings = settings or Settings()
        embeddings, store = load_embeddings(settings), backend(settings)
        stored = _readable_documents(store, settings.index_path)  # the uploads' names; none if missing or damaged
        knowledge = cls(store.create(settings.index_path, settings, embeddings), settings, embeddings)
        return knowledge, knowledge._rebuild(paths, stored, keep_stored=False, progress=progress)

    @classmethod
    def create(cls, settings: Settings, *, embeddings: DenseEmbeddings | None = None) -> "KnowledgeBase":
        """A new, empty knowledge base at ``settings.index_path`` (replacing any index there), published."""
        embeddings = embeddings or load_embeddings(settings)
        knowledge = cls(backend(settings).create(settings.index_path, settings, embeddings), settings, embeddings)
        knowledge.add_documents([])  # publishes an empty first version
        return knowledge

    def with_settings(self, settings: Settings) -> "KnowledgeBase":
        """This knowledge base searched and answered with other settings; ``ValueError`` if they would need
        another index (:meth:`Settings.index_fingerprint`)."""
        if settings.index_fingerprint() != self.settings.index_fingerprint():
            raise ValueError("these settings need another index; open the knowledge base with them instead")
        return KnowledgeBase(self.index, settings, self.embeddings.for_queries_of(settings))

    # ------------------------------------------------------------------ changing
    def add_paths(self, paths: Iterable[str | Path], *, progress: bool = False) -> IngestReport:
        documents, errors = load_paths(paths, self.settings.max_file_bytes, self.settings.ocr_options)
        return self.add_documents(documents, errors, progress=progress)

    def add_bytes(self, data: bytes, source: str, name: str = "") -> IngestReport:
        """Add one uploaded file (``name``: the name to show for it); an :class:`IngestError` is reported, never raised.

        An upload with the same ``name`` as a stored one replaces it (an edited file uploaded again)."""
        try:
            document = replace(load_bytes(data, source, self.settings.max_file_bytes, self.settings.ocr_options), name=name)
        except IngestError as error:
            return IngestReport(errors=[error])
        return self.add_documents([document], [])

    def add_documents(
        self, documents: list[Document], errors: list[IngestError] | None = None, *, progress: bool = False
    ) -> IngestReport:
        """Add what is new; a document from the same source (path, or upload name) as a stored one replaces it,
        in the same new version. Unchanged documents are skipped (nothing embedded, nothing written)."""
        return self._update(documents, errors or [], replace_all=False, progress=progress)

    def remove(self, ref: str) -> UpdateReport:
        """Remove documents named by id, id prefix or source path, and their saved uploads; ``KeyError`` if none."""
        doc_ids = self.find(ref)
        if not doc_ids:
            raise KeyError(f"no document matches {ref!r} (use `rag list` to see ids and sources)")
        documents = self.index.snapshot.documents
        # Read before removing: a server backend's older views lose removed rows once they are deleted.
        records = {doc_id: documents[doc_id] for doc_id in doc_ids if doc_id in documents}
        gone = self.index.remove(doc_ids)
        self._delete_uploads(records[doc_id] for doc_id in gone if doc_id in records)
        return UpdateReport(removed=gone)

    def rebuild(self, paths: Iterable[str | Path] | None = None, *, progress: bool = False) -> IngestReport:
        """Replace the index, in one atomic step, with one built anew from the files at ``paths`` (default: the
        corpus folders for the default knowledge base, none for another) and the uploads, read again from their
        saved copies under the names they are shown under. Every file passes the limits of an add.

        ``FileNotFoundError`` (Chinese) for a missing corpus folder; :class:`NothingToIndexError`, with the index
        unchanged, when nothing is readable."""
        if paths is None:
            paths = self.settings.corpus if self.name == DEFAULT_KB else []
            missing = [str(p) for p in paths if not Path(p).exists()]
            if missing:
                raise FileNotFoundError(f"找不到语料：{'、'.join(missing)}")
        stored = [record.document for record in self.documents]
        return self._rebuild(paths, stored, keep_stored=False, progress=progress)

    def _rebuild(
        self, paths: Iterable[str | Path] | None, stored: list[Document], *, keep_stored: bool, progress: bool
    ) -> IngestReport:
        """The one rebuild. ``stored``: the documents stored now (for upload names); ``keep_stored``: keep those not
        read again from a file as stored (a settings change re-indexes everything and must lose nothing)."""
        if paths is None:
            paths = self.settings.corpus if self.name == DEFAULT_KB else []
        limit, ocr = self.settings.max_file_bytes, self.settings.ocr_options
        documents, errors = load_paths(list(paths), limit, ocr)
        uploads = self.path / UPLOADS_DIR
        if uploads.is_dir():
            names = {d.source: d.name for d in stored}
            uploaded, upload_errors = load_paths([uploads], limit, ocr)
            for document in uploaded:
                source = f"{UPLOADS_DIR}/{Path(document.source).name}"
                documents.append(replace(document, source=source, name=names.get(source, "")))
            errors += upload_errors
        if keep_stored:
            read = {os.path.abspath(d.source) for d in documents} | {d.source for d in documents}
            documents += [d for d in stored if d.source not in read and os.path.abspath(d.source) not in read]
        elif not documents:  # an empty corpus folder must not wipe the knowledge base
            raise NothingToIndexError(self.path, errors, exists=type(self.index).exists(self.path))
        return self._update(documents, errors, replace_all=True, progress=progress)

    def _update(
        self, documents: list[Document], errors: list[IngestError], *, replace_all: bool, progress: bool
    ) -> IngestReport:
        report = IngestReport(errors=list(errors), sources={d.id: d.source for d in documents})
        replaced: list[DocumentRecord] = []

        def plan(stored: Mapping[str, DocumentRecord]):
            change, report.update = self.indexer.plan(documents, stored, replace_all=replace_all, progress=progress)
            replaced[:] = [stored[doc_id] for doc_id in report.update.removed]
            return change

        self.index.update(plan)
        if not replace_all:  # replaced by a newer version (a rebuild may only have failed to read one again)
            self._delete_uploads(replaced)
        return report

    def _delete_uploads(self, records: Iterable[DocumentRecord]) -> None:
        """Delete the saved copies of uploads no longer stored, so that a rebuild does not bring them back."""
        for record in records:
            source = Path(record.document.source)
            if source.parent.name == UPLOADS_DIR:
                (self.path / UPLOADS_DIR / source.name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading
    @property
    def name(self) -> str:
        return self.settings.kb

    @property
    def path(self) -> Path:
        """The knowledge base's folder (its index versions and its saved uploads)."""
        return self.index.path

    def refresh(self) -> bool:
        """Pick up what another process published; True when something changed."""
        return self.index.refresh()

    @property
    def documents(self) -> list[DocumentRecord]:
        return list(self.index.snapshot.documents.values())

    def document(self, doc_id: str) -> DocumentRecord | None:
        """The document ``doc_id`` as published now (another process may have added or removed it)."""
        self.refresh()
        return self.index.snapshot.documents.get(doc_id)

    def find(self, ref: str) -> list[str]:
        """Document ids matching an id, an id prefix (≥ 6 chars) or a source path."""
        documents = self.index.snapshot.documents
        if ref in documents:
            return [ref]
        matches = [doc_id for doc_id in documents if len(ref) >= 6 and doc_id.startswith(ref)]
        if matches:
            return matches
        target = os.path.abspath(ref)  # "seeds/x.txt" and "/work/main/seeds/x.txt" name the same file
        return [
            doc_id
            for doc_id, record in documents.items()
            if os.path.abspath(record.document.source) == target or Path(record.document.source).name == ref
        ]

    def chunks(self) -> list[Chunk]:
        """Every stored chunk (the evaluation judges hits against them)."""
        return list(self.index.snapshot.chunks)

    def idf(self, term: str) -> float:
        """BM25 inverse document frequency of a (normalised) term over the stored chunks."""
        return self.index.snapshot.lexical.idf(term)

    def stats(self) -> KnowledgeStats:
        snapshot = self.index.snapshot
        return KnowledgeStats(self.name, self.path, snapshot.version, len(snapshot.documents), len(snapshot.chunks))

    def check_not_empty(self) -> None:
        """:class:`EmptyKnowledgeBaseError` (an ``InputError``) when there is nothing to search."""
        self.refresh()  # another process may have added or removed documents
        if not self.index.snapshot.documents:
            raise EmptyKnowledgeBaseError(self.name)

    def retriever_for(self, settings: Settings, reranker=None) -> Retriever:
        """A retriever over this knowledge base with other retrieval settings (``reranker``: one already loaded)."""
        return Retriever(self.index, self.embeddings.for_queries_of(settings), settings, reranker=reranker)

    def search(self, question: str, k: int | None = None, mode: RetrievalMode | None = None) -> list[Hit]:
        """The best passages for ``question``; :class:`~rag.validation.InputError` for unusable input
        or an empty knowledge base."""
        question = check_question(question, self.settings.max_question_chars)
        self.check_not_empty()
        return self.retriever.search(question, k=k, mode=mode)


def _readable_documents(store: type[Store], path: Path) -> list[Document]:
    """The documents of the index at ``path`` when it can be read, whatever its settings; else none."""
    try:
        return store.read_documents(path)
    except (IndexStoreError, OSError, ValueError):
        return []
