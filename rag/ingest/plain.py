"""Plain text and Markdown: the decoded file is the document text."""

from __future__ import annotations

from .encoding import decode


def read_plain(data: bytes, source: str) -> str:
    return decode(data, source)[0]
