"""Loading files into :class:`~rag.types.Document` objects: one reader per format."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

from ..text import clean
from ..types import Document
from .docx import read_docx
from .errors import IngestError, IngestProblem
from .html import read_html
from .image import IMAGE_SUFFIXES, read_image
from .ocr import OcrOptions, PagedText
from .pdf import read_pdf
from .plain import read_plain

#: Formats read as text.
TEXT_READERS: dict[str, Callable[[bytes, str], str]] = {
    ".txt": read_plain,
    ".md": read_plain,
    ".markdown": read_plain,
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
}
#: Formats read page by page, OCR'd where they have no text (their characters keep page and box).
PAGED_READERS: dict[str, Callable[[bytes, str, OcrOptions], PagedText]] = {
    ".pdf": read_pdf,
    **{suffix: read_image for suffix in IMAGE_SUFFIXES},
}
READERS = {**TEXT_READERS, **PAGED_READERS}
SUPPORTED_SUFFIXES = tuple(READERS)


def content_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def check_file(source: str, size: int, max_bytes: int | None = None) -> None:
    """Refuse a file by its name and size alone, before reading it."""
    suffix = Path(source).suffix.lower()
    if suffix not in READERS:
        raise IngestError(
            source,
            "unsupported_type",
            f"unsupported file type {suffix or '(none)'}; supported: {', '.join(READERS)}",
            suffix=suffix or "（无扩展名）",
            supported="、".join(READERS),
        )
    if size == 0:
        raise IngestError(source, "empty", "the file is empty")
    if max_bytes is not None and size > max_bytes:
        # Size matters beyond memory: embedding a 50 MB text takes hours on a laptop CPU.
        raise IngestError(
            source,
            "too_large",
            f"the file is {size / 1024 / 1024:.1f} MB, over the {max_bytes / 1024 / 1024:g} MB limit (RAG_MAX_FILE_MB)",
            size_mb=size / 1024 / 1024,
            limit_mb=max_bytes / 1024 / 1024,
        )


def load_bytes(data: bytes, source: str, max_bytes: int | None = None, ocr: OcrOptions | None = None) -> Document:
    """Turn a file's bytes into a document, or raise :class:`IngestError` saying why not.

    ``ocr`` configures page images and scanned PDF pages (defaults: :class:`OcrOptions`)."""
    check_file(source, len(data), max_bytes)
    if not data.strip():
        raise IngestError(source, "empty", "the file holds only whitespace")
    suffix = Path(source).suffix.lower()
    if suffix in PAGED_READERS:
        paged = PAGED_READERS[suffix](data, source, ocr or OcrOptions())
        text, pages = paged.text, tuple(paged.pages)
    else:
        text, pages = TEXT_READERS[suffix](data, source), ()
    cleaned = clean(text)
    if not cleaned.text.strip():
        raise IngestError(source, "no_text", "no readable text in the file")
    headlines = tuple(cleaned.text[b.start : b.end] for b in cleaned.blocks if b.kind == "headline")
    return Document(id=content_id(data), source=source, text=text, headlines=headlines, pages=pages)


def load_file(path: str | Path, max_bytes: int | None = None, ocr: OcrOptions | None = None) -> Document:
    path = Path(path)
    try:
        check_file(str(path), path.stat().st_size, max_bytes)
        data = path.read_bytes()
    except OSError as error:
        detail = error.strerror or str(error)
        raise IngestError(str(path), "unreadable", f"cannot read file ({detail})", detail=detail) from error
    return load_bytes(data, str(path), max_bytes, ocr)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus supported files found under named folders (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in READERS))
        else:
            files.append(path)
    return files


def load_paths(
    paths: Iterable[str | Path], max_bytes: int | None = None, ocr: OcrOptions | None = None
) -> tuple[list[Document], list[IngestError]]:
    """Load every file; failures are collected, not raised, so one bad file does not stop the batch."""
    documents: list[Document] = []
    errors: list[IngestError] = []
    for path in expand_paths(paths):
        try:
            documents.append(load_file(path, max_bytes, ocr))
        except IngestError as error:
            errors.append(error)
    return documents, errors


__all__ = [
    "IngestError",
    "IngestProblem",
    "OcrOptions",
    "SUPPORTED_SUFFIXES",
    "check_file",
    "content_id",
    "expand_paths",
    "load_bytes",
    "load_file",
    "load_paths",
]
