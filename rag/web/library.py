"""The knowledge-base tab: list, delete and rebuild, on top of :class:`~rag.knowledge.KnowledgeBase`."""

from __future__ import annotations

from datetime import datetime

from ..knowledge import IngestReport, KnowledgeBase

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
            _local_time(r.added_at) + ("（已更新）" if r.updated else ""),
            r.document.id,
        ]
        for r in records
    ]


def document_choices(knowledge: KnowledgeBase) -> list[tuple[str, str]]:
    """(label, doc id) pairs for the delete selector."""
    return [(f"{row[1]} — {row[0][:30]}", row[4]) for row in document_rows(knowledge)]


def delete_document(knowledge: KnowledgeBase, doc_id: str) -> str:
    """Remove a document (and its saved upload, so a rebuild does not bring it back); a Chinese message."""
    record = knowledge.document(doc_id)
    if record is None:
        return "该文档已不在知识库中"
    try:
        knowledge.remove(doc_id)
    except KeyError:  # removed by another process meanwhile
        return "该文档已不在知识库中"
    return f"已删除 {record.document.display_name}（{len(record.chunk_ids)} 个段落）"


def rebuild(knowledge: KnowledgeBase, *, progress: bool = False) -> IngestReport:
    """:meth:`KnowledgeBase.rebuild`: the corpus folders (the default knowledge base only) and the saved
    uploads, read again; searches keep using the old version until the new one is published."""
    return knowledge.rebuild(progress=progress)
