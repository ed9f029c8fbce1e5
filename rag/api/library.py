"""Knowledge-base endpoints beyond chat: ``POST /v1/retrieve`` and document management.

They reuse the page's code paths: uploads go through :func:`rag.web.uploads.add_upload` (type and
size checks, a safe stored name, the index unchanged when a file fails) and deletions through
:func:`rag.web.library.delete_document`. ``kb`` names the knowledge base (default ``default``).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, UploadFile
from pydantic import BaseModel, ConfigDict

from ..knowledge import KnowledgeBase
from ..validation import InputError, apply_overrides
from ..web.library import delete_document
from ..web.uploads import add_upload
from .context import Context
from .errors import ApiError
from .provider import DEFAULT_KB


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    kb: str = DEFAULT_KB
    k: Any = None  # checked by the library, which says what is wrong with it
    mode: Any = None


def document_rows(knowledge: KnowledgeBase) -> list[dict[str, Any]]:
    """One entry per document, newest first (the fields of ``rag list --json``)."""
    knowledge.refresh()  # another process may have changed the index
    records = sorted(knowledge.documents, key=lambda r: r.added_at, reverse=True)
    return [
        {
            "id": r.document.id,
            "object": "document",
            "source": r.document.source,
            "name": Path(r.document.source).name,
            "title": r.document.headlines[0] if r.document.headlines else "",
            "chunks": len(r.chunk_ids),
            "added_at": r.added_at,
        }
        for r in records
    ]


def search(knowledge: KnowledgeBase, query: str, k: Any, mode: Any) -> list[dict[str, Any]]:
    """The passages for ``query`` as dicts, best first (as ``rag search --json``)."""
    settings = knowledge.settings
    if k is not None or mode is not None:
        settings = apply_overrides(settings, {"k": k, "mode": mode})
    return [hit.to_dict() for hit in knowledge.search(query, k=settings.k, mode=settings.mode)]


def _has_document(knowledge: KnowledgeBase, doc_id: str) -> bool:
    return knowledge.document(doc_id) is not None  # it may have been added or removed by another process


def _save(upload: UploadFile, folder: Path) -> Path:
    path = folder / "upload"
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out)
    return path


def router(context: Context) -> APIRouter:
    api = APIRouter(dependencies=[Depends(context.reader)])

    @api.post("/v1/retrieve")
    async def retrieve(body: RetrieveRequest) -> dict[str, Any]:
        """Passages for ``query`` from knowledge base ``kb``, best first, with their offsets and scores."""
        knowledge = context.assistant(body.kb).knowledge
        try:
            hits = await context.workers.run(context.workers.cpu, search, knowledge, body.query, body.k, body.mode)
        except InputError as error:
            raise ApiError(400, str(error), code="invalid_input") from error
        return {"object": "list", "kb": body.kb, "query": body.query, "data": hits}

    @api.get("/v1/documents")
    async def list_documents(kb: str = DEFAULT_KB) -> dict[str, Any]:
        """The documents of knowledge base ``kb``, newest first."""
        knowledge = context.assistant(kb).knowledge
        return {
            "object": "list",
            "kb": kb,
            "data": await context.workers.run(context.workers.cpu, document_rows, knowledge),
        }

    @api.post("/v1/documents", dependencies=[Depends(context.writer)])
    async def upload(files: Annotated[list[UploadFile], File()], kb: str = DEFAULT_KB) -> dict[str, Any]:
        """Add files (multipart field ``files``, one or more); each gets its own result.

        200 when at least one file was added (or was already there); otherwise the first failure's
        message (413 for a file over ``RAG_MAX_FILE_MB``, else 400). A failed file changes nothing."""
        knowledge = context.assistant(kb).knowledge
        results = []
        for item in files:
            name = item.filename or "upload"  # as the user named it; the stored name is made safe
            with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
                path = await context.workers.run(context.workers.writes, _save, item, Path(folder))
                size = path.stat().st_size
                result = await context.workers.run(context.workers.writes, add_upload, knowledge, path, name)
            results.append(
                {
                    "name": result.name,
                    "ok": result.ok,
                    "message": result.message,
                    "id": result.doc_id,
                    "chunks": result.chunks,
                    "bytes": size,
                }
            )
        if not any(r["ok"] for r in results):
            status = 413 if all(r["bytes"] > knowledge.settings.max_file_bytes for r in results) else 400
            message = "；".join(f"{r['name']}：{r['message']}" for r in results)
            raise ApiError(status, message, code="upload_failed", param="files")
        return {"object": "list", "kb": kb, "data": results}

    @api.delete("/v1/documents/{doc_id}", dependencies=[Depends(context.writer)])
    async def delete(doc_id: str, kb: str = DEFAULT_KB) -> dict[str, Any]:
        """Remove a document by its id (and its saved upload)."""
        knowledge = context.assistant(kb).knowledge
        if not await context.workers.run(context.workers.cpu, _has_document, knowledge, doc_id):
            raise ApiError(
                404,
                f"No document with id {doc_id!r} in knowledge base {kb!r}.",
                code="document_not_found",
                param="doc_id",
            )
        message = await context.workers.run(context.workers.writes, delete_document, knowledge, doc_id)
        return {"id": doc_id, "object": "document.deleted", "deleted": True, "message": message}

    return api
