"""Uploaded files: checked (type, size), saved under ``<index_dir>/uploads/`` with a safe name, indexed.

Each file is handled on its own, so one bad file gets its own message and does not stop the
others; a file that fails leaves the index as it was (the index publishes a new version only
after a successful add) and leaves no copy in the uploads folder.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..ingest import SUPPORTED_SUFFIXES, IngestError
from ..knowledge import KnowledgeBase

log = logging.getLogger(__name__)

UPLOADS_DIR = "uploads"
#: Types offered in the upload dialog (the loader reads a few aliases too, e.g. .htm, .markdown).
UPLOAD_TYPES = (".txt", ".md", ".html", ".pdf", ".docx")

_UNSAFE = re.compile(r"[^\w\-]+", re.UNICODE)
_MAX_STEM = 60

# The loader's reasons (English, for logs and the CLI) as the page says them.
_REASONS_ZH = (
    ("unsupported file type", "不支持的文件类型"),
    ("the file is empty", "文件是空的"),
    ("no readable text", "文件中没有可读的文字"),
    ("the document contains no text", "文件中没有可读的文字"),
    ("looks like a binary file", "这不是文本文件（看起来是二进制文件）"),
    ("unknown text encoding", "无法识别文件的文字编码（已尝试 UTF-8、GB18030、Big5）"),
    ("invalid ", "文件的文字编码有误"),
    ("not a valid .docx", "不是有效的 .docx 文件"),
    ("refused: unpacks to", "文件解压后过大，已拒绝"),
    ("not a readable PDF", "无法读取这个 PDF 文件"),
    ("the PDF has no text layer", "PDF 没有文字层（可能是扫描件），请先做文字识别（OCR）"),
)


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


def reason_zh(error: IngestError) -> str:
    for prefix, message in _REASONS_ZH:
        if error.reason.startswith(prefix):
            return message
    return f"无法读取（{error.reason}）"


def check_upload(name: str, size: int, max_mb: float) -> str | None:
    """Why this file is refused before it is read (Chinese), or None."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        return f"不支持的文件类型 {suffix or '（无扩展名）'}；支持：{'、'.join(UPLOAD_TYPES)}"
    if size > max_mb * 1024 * 1024:
        return f"文件过大（{size / 1024 / 1024:.1f} MB），上限为 {max_mb:g} MB"
    if size == 0:
        return "文件是空的"
    return None


def add_upload(knowledge: KnowledgeBase, path: str | Path, name: str | None = None) -> UploadResult:
    """Check, save and index one uploaded file (``path`` is where the web server put it)."""
    path = Path(path)
    name = name or path.name
    try:
        size = path.stat().st_size
    except OSError:
        return UploadResult(name, False, "上传的文件已丢失，请重新上传")
    refused = check_upload(name, size, knowledge.settings.max_upload_mb)
    if refused:
        return UploadResult(name, False, refused)
    data = path.read_bytes()
    folder = knowledge.index.path / UPLOADS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stored = safe_name(name, data)
    target = folder / stored
    existed = target.exists()
    target.write_bytes(data)
    try:
        report = knowledge.add_bytes(data, f"{UPLOADS_DIR}/{stored}")
    except Exception:  # an indexing failure (embeddings, disk): the index keeps its previous version
        log.exception("indexing upload %s failed", stored)
        report = None
    if report is None or report.errors:
        if not existed:
            target.unlink(missing_ok=True)
        message = reason_zh(report.errors[0]) if report else "建立索引时出错，知识库未改变"
        return UploadResult(name, False, message)
    if report.update.unchanged:
        if not existed:  # the same content is already indexed under another name
            target.unlink(missing_ok=True)
        return UploadResult(name, True, "内容相同的文件已在知识库中，未重复添加", report.update.unchanged[0])
    doc_id = report.update.added[0]
    return UploadResult(
        name, True, f"已添加（{report.update.chunks_added} 个段落）", doc_id, report.update.chunks_added
    )
