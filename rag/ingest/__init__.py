"""Loading files into :class:`~rag.types.Document` objects: one reader per format."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

from ..text import clean
from ..types import Document
from .docx import read_docx
from .errors import IngestError
from .html import read_html
from .pdf import read_pdf
from .plain import read_plain

READERS: dict[str, Callable[[bytes, str], str]] = {
    ".txt": read_plain,
    ".md": read_plain,
    ".markdown": read_plain,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
    ".docx": read_docx,
}
SUPPORTED_SUFFIXES = tuple(READERS)


def content_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def load_bytes(data: bytes, source: str) -> Document:
    """Turn a file's bytes into a document, or raise :class:`IngestError` saying why not."""
    suffix = Path(source).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise IngestError(source, f"unsupported file type {suffix or '(none)'}; supported: {', '.join(READERS)}")
    if not data.strip():
        raise IngestError(source, "the file is empty")
    text = reader(data, source)
    cleaned = clean(text)
    if not cleaned.text.strip():
        raise IngestError(source, "no readable text in the file")
    headlines = tuple(cleaned.text[b.start : b.end] for b in cleaned.blocks if b.kind == "headline")
    return Document(id=content_id(data), source=source, text=text, headlines=headlines)


def load_file(path: str | Path) -> Document:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise IngestError(str(path), f"cannot read file ({error.strerror or error})") from error
    return load_bytes(data, str(path))


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus supported files found under named folders (sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in READERS))
        else:
            files.append(path)
    return files


def load_paths(paths: Iterable[str | Path]) -> tuple[list[Document], list[IngestError]]:
    """Load every file; failures are collected, not raised, so one bad file does not stop the batch."""
    documents: list[Document] = []
    errors: list[IngestError] = []
    for path in expand_paths(paths):
        try:
            documents.append(load_file(path))
        except IngestError as error:
            errors.append(error)
    return documents, errors


__all__ = ["IngestError", "SUPPORTED_SUFFIXES", "content_id", "expand_paths", "load_bytes", "load_file", "load_paths"]
