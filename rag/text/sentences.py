"""Chinese-aware sentence splitting that keeps offsets."""

from __future__ import annotations

import re

# A sentence ends at 。！？!?；; or an ellipsis, plus any closing quotes/brackets right after it,
# or at a line break (paragraph boundary in cleaned text).
_SENTENCE_END = re.compile(r"(?:[。！？!?；;…]+|\.{3,})[”’」』\"'）)》】]*|\n+")  # "？……" is one end


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` spans covering ``text`` without gaps; whitespace-only spans are dropped."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if text[start:end].strip():
            spans.append((start, end))
        start = end
    if start < len(text) and text[start:].strip():
        spans.append((start, len(text)))
    return spans


def sentences(text: str) -> list[str]:
    return [text[s:e].strip() for s, e in split_sentences(text)]
