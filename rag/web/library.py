"""The knowledge-base tab: list, delete and rebuild, on top of :class:`~rag.knowledge.KnowledgeBase`."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

from ..ingest import load_paths
from ..knowledge import IngestReport, KnowledgeBase, NothingToIndexError
from ..settings import DEFAULT_KB
from ..store import Index
from .uploads import UPLOADS_DIR

COLUMNS = ["标题", "文件", "段落数", "添加时间", "文档 ID"]


def _local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def document_rows(knowledge: KnowledgeBase) -> list[list]:
    """One row per document (see :data:`COLUMNS`), newest first."""
    records = sorted(knowledge.documents, key=lambda r: r.added_at, reverse=True)
    return [
        [
            r.document.headlines[0] if r.document.headlines else "（无标题）",
            r.document.display_name,
            len(r.chunk_ids),
            _local_time(r.added_at),
            r.document.id,
        ]
        for r in records
    ]


def document_choices(knowledge: KnowledgeBase) -> list[tuple[str, str]]:
    """(label, doc id) pairs for the delete selector."""
    return [(f"{row[1]} — {row[0][:30]}", row[4]) for row in document_rows(knowledge)]


def _upload_file(knowledge: KnowledgeBase, source: str) -> Path | None:
    """The saved copy of an uploaded document, if ``source`` names one."""
    path = Path(source)
    if path.parent.name != UPLOADS_DIR:
        return None
    return knowledge.index.path / UPLOADS_DIR / path.name


def delete_document(knowledge: KnowledgeBase, doc_id: str) -> str:
    """Remove a document (and its saved upload, so a rebuild does not bring it back); a Chinese message."""
    record = knowledge.index.snapshot.documents.get(doc_id)
    if record is None:
        return "该文档已不在知识库中"
    knowledge.remove(doc_id)
    saved = _upload_file(knowledge, record.document.source)
    if saved is not None:
        saved.unlink(missing_ok=True)
    return f"已删除 {record.document.display_name}（{len(record.chunk_ids)} 个段落）"


def rebuild(knowledge: KnowledgeBase, *, progress: bool = False) -> IngestReport:
    """Re-read the corpus folders (the default knowledge base only) and the saved uploads and replace the
    index with a new one, atomically. Uploads keep the names they are shown under.

    Searches keep using the old version until the new one is published; the knowledge base's own
    index picks the new version up at once."""
    corpus = knowledge.settings.corpus if knowledge.name == DEFAULT_KB else []
    missing = [str(p) for p in corpus if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"找不到语料：{'、'.join(missing)}")
    documents, errors = load_paths(corpus) if corpus else ([], [])
    uploads = knowledge.index.path / UPLOADS_DIR
    if uploads.is_dir():
        names = {r.document.source: r.document.name for r in knowledge.documents}
        uploaded, upload_errors = load_paths([uploads])
        for document in uploaded:
            source = f"{UPLOADS_DIR}/{Path(document.source).name}"
            documents.append(dataclasses.replace(document, source=source, name=names.get(source, "")))
        errors += upload_errors
    if not documents:  # an empty corpus folder must not wipe the knowledge base
        raise NothingToIndexError(knowledge.index.path, errors)
    fresh = Index.create(knowledge.index.path, knowledge.settings, knowledge.index.embeddings)
    report = IngestReport(errors=errors)
    report.update = fresh.add(documents, progress=progress)
    knowledge.index.refresh()
    return report
