"""Uploaded files: checked (type, size), saved under ``<index>/uploads/`` with a safe name, indexed.

The safe name is internal: the document records the name the user gave (:func:`display_name`), which
the page shows.

Each file is handled on its own, so one bad file gets its own message and does not stop the
others; a file that fails leaves the index as it was (the index publishes a new version only
after a successful add) and leaves no copy in the uploads folder. A file uploaded again under the same
name with other content replaces the earlier version (its saved copy too): the result says “已更新”.

:func:`add_upload_steps` runs one file's add in a worker thread and passes on its OCR progress (pages
done/total) for the page's upload indicator; setting its cancel event stops the OCR within a line's
recognition, and the file is then not added (the index is unchanged).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import queue
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..ingest import IngestError, check_file
from ..ingest.ocr import OcrCancelled
from ..knowledge import UPLOADS_DIR, KnowledgeBase
from ..progress import Step, cancellable, observe

log = logging.getLogger(__name__)

#: Types offered in the upload dialog (the loader reads a few aliases too, e.g. .htm, .markdown).
UPLOAD_TYPES = (".txt", ".md", ".html", ".pdf", ".docx", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")

CANCELLED = "已取消，未加入知识库"
_UNSAFE = re.compile(r"[^\w\-]+", re.UNICODE)
_MAX_STEM = 60


@dataclass
class UploadResult:
    name: str  # the name the user uploaded
    ok: bool
    message: str  # Chinese, for the page
    doc_id: str | None = None
    chunks: int = 0


def safe_name(original: str, data: bytes) -> str:
    """A file name without folders or odd characters, with its extension and a short content hash.

    ``../../etc/passwd.txt`` becomes ``passwd_1a2b3c4d.txt``; two different files with the same
    name get different names, the same file the same name."""
    base = re.split(r"[\\/]", original)[-1]
    base = unicodedata.normalize("NFKC", base)
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem).strip("_.")[:_MAX_STEM] or "file"
    suffix = re.sub(r"[^a-z0-9]", "", suffix.lower())[:10]
    digest = hashlib.sha256(data).hexdigest()[:8]
    return f"{stem}_{digest}" + (f".{suffix}" if suffix else "")


def display_name(original: str) -> str:
    """The name an upload is shown under: as the user gave it, without control characters, at most 200 characters.

    (Only shown, always escaped; the file is stored under :func:`safe_name`.)"""
    name = "".join(ch for ch in unicodedata.normalize("NFC", original) if unicodedata.category(ch)[0] != "C")
    return name.strip()[:200]


def uploaded_files(files: list | None) -> list[tuple[str, str]]:
    """(path on the server, the name the user gave) of each file of a Gradio upload event.

    The page's upload event skips Gradio's preprocessing to see ``orig_name`` (Gradio's stored copy drops
    characters such as ``<>/``); Gradio has already checked that each path is one of its own uploads."""
    items = []
    for item in files or []:
        if isinstance(item, dict):
            items.append((item["path"], item.get("orig_name") or Path(item["path"]).name))
        else:  # a plain path
            items.append((str(item), Path(str(item)).name))
    return items


def add_upload(knowledge: KnowledgeBase, path: str | Path, name: str | None = None) -> UploadResult:
    """Check, save and index one uploaded file (``path`` is where the web server put it)."""
    path = Path(path)
    name = name or path.name
    try:
        size = path.stat().st_size
    except OSError:
        return UploadResult(name, False, "上传的文件已丢失，请重新上传")
    try:
        check_file(name, size, knowledge.settings.max_file_bytes)
    except IngestError as error:
        return UploadResult(name, False, error.message_zh)
    data = path.read_bytes()
    folder = knowledge.path / UPLOADS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stored = safe_name(name, data)
    target = folder / stored
    existed = target.exists()
    target.write_bytes(data)
    try:
        report = knowledge.add_bytes(data, f"{UPLOADS_DIR}/{stored}", display_name(name))
    except OcrCancelled:
        if not existed:
            target.unlink(missing_ok=True)
        return UploadResult(name, False, CANCELLED)
    except Exception:  # an indexing failure (embeddings, disk): the index keeps its previous version
        log.exception("indexing upload %s failed", stored)
        report = None
    if report is None or report.errors:
        if not existed:
            target.unlink(missing_ok=True)
        message = report.errors[0].message_zh if report else "建立索引时出错，知识库未改变"
        return UploadResult(name, False, message)
    if report.update.unchanged:
        if not existed:  # the same content is already indexed under another name
            target.unlink(missing_ok=True)
        return UploadResult(name, True, "内容相同的文件已在知识库中，未重复添加", report.update.unchanged[0])
    doc_id = report.update.added[0]
    done = "已更新（替换了同名文件的旧版本，" if report.update.updated else "已添加（"
    return UploadResult(name, True, f"{done}{report.update.chunks_added} 个段落）", doc_id, report.update.chunks_added)


def add_upload_steps(
    knowledge: KnowledgeBase, path: str | Path, name: str, cancel: threading.Event, interval: float = 0.3
) -> Iterator[Step | UploadResult]:
    """:func:`add_upload` in a worker thread: yields its latest OCR :class:`Step` (at most every ``interval``
    seconds, only when it moved), then the :class:`UploadResult`. ``cancel`` stops it (see module doc)."""
    steps: queue.Queue[Step] = queue.Queue()
    outcome: list[UploadResult] = []

    def work() -> None:
        with observe(lambda step: steps.put(step) if step.stage == "ocr" else None), cancellable(cancel):
            try:
                outcome.append(add_upload(knowledge, path, name))
            except Exception:  # add_upload reports errors; this is a bug, logged, and the file is reported failed
                log.exception("upload %s failed", name)
                outcome.append(UploadResult(name, False, "建立索引时出错，知识库未改变"))

    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), name="rag-upload", daemon=True)
    worker.start()
    shown: Step | None = None
    while worker.is_alive():
        worker.join(interval)
        latest = shown
        while not steps.empty():
            latest = steps.get_nowait()
        if latest is not None and latest != shown and worker.is_alive():
            shown = latest
            yield latest
    yield outcome[0]
