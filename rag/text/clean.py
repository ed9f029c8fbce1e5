"""Cleaning of OCR'd news pages with an exact map back to the original characters.

What it fixes, as seen in the seeds:
- paragraphs split mid-word or mid-sentence across blank lines ("进一\\n\\n步", "成\\n\\n效");
- broken characters (U+FFFD) and zero-width/control characters;
- headlines (short lines without terminal punctuation, Markdown ``#`` lines), bylines and captions,
  which are recognised so that chunks can carry the current headline.

The cleaned text is a sequence of blocks joined by ``\\n``; every cleaned character remembers
the index of the original character it came from, so any cleaned span maps back to
``original[start:end]`` exactly.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["headline", "paragraph", "byline", "caption"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_DROP = re.compile(r"[\ufffd\u200b-\u200f\u2060\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TERMINAL = re.compile(r"[。！？!?；;…\.][”’」』\"'）)》】]*$")
_CLAUSE_PUNCT = re.compile(r"[，,、：:“「（(]")
_SENTENCE_PUNCT = re.compile(r"[。！？!?；;]")
_MD_HEADING = re.compile(r"^#{1,6}\s+")
_CAPTION = re.compile(r"^[▲△▼◆●]")
_BYLINE = re.compile(
    r"^[□■◎]|记者|記者|通讯员|通訊員|本报讯|本報訊|特约|特約|摄$|攝$|^(?:本版|责任|責任)?(?:编辑|編輯)"
    r"|\d{1,2}月\d{1,2}日(?:专|專)?[电電][)）]?$"  # dateline: "(新华社北京12月16日电)"
    r"|^[\u4e00-\u9fff]{2,3}(?:\s+[\u4e00-\u9fff]{2,3})+$"  # author names only: "张欣宇 郑锦波"
)
_ASCII_WORD_END = re.compile(r"[A-Za-z0-9]$")
_ASCII_WORD_START = re.compile(r"^[A-Za-z0-9]")

HEADLINE_MIN_CHARS = 6
HEADLINE_MAX_CHARS = 40
WRAPPED_LINE_MIN_CHARS = 40  # a line this long without end punctuation was cut by the page layout


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    start: int  # span in the cleaned text
    end: int


@dataclass
class _Line:
    text: str
    offsets: list[int]  # original index of each character of ``text``
    md_heading: bool
    broken_end: bool  # the line ended in a broken character: a truncated line, not a wrapped one


class CleanText:
    """Cleaned text, its blocks, and the map back to the original string."""

    def __init__(self, original: str, text: str, index: array, blocks: list[Block]) -> None:
        self.original = original
        self.text = text
        self._index = index  # original position of each cleaned character
        self.blocks = blocks
        self._line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(original)]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the cleaned span ``[start, end)`` to the original span covering the same characters."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"bad span [{start}, {end}) for cleaned text of length {len(self.text)}")
        return self._index[start], self._index[end - 1] + 1

    def line_of(self, original_offset: int) -> int:
        """1-based line number of an original character offset."""
        return bisect_right(self._line_starts, original_offset)


def _read_lines(original: str) -> list[_Line | None]:
    """Stripped, filtered lines with their character offsets; ``None`` marks a blank line."""
    lines: list[_Line | None] = []
    position = 0
    for match in [*_LINE_BREAK.finditer(original), None]:
        end = match.start() if match else len(original)
        raw = original[position:end]
        kept = [(ch, position + i) for i, ch in enumerate(raw) if not _DROP.match(ch)]
        broken_end = bool(raw.rstrip()) and raw.rstrip()[-1] == "\ufffd"
        while kept and kept[0][0].isspace():
            kept.pop(0)
        while kept and kept[-1][0].isspace():
            kept.pop()
        text = "".join(ch for ch, _ in kept)
        heading = _MD_HEADING.match(text)
        if heading:
            kept = kept[heading.end():]
            text = text[heading.end():]
        lines.append(_Line(text, [i for _, i in kept], bool(heading), broken_end) if text else None)
        position = match.end() if match else len(original)
    return lines


def _classify(line: _Line) -> BlockKind:
    if line.md_heading:
        return "headline"
    if _CAPTION.match(line.text):
        return "caption"
    if _TERMINAL.search(line.text):
        return "paragraph"
    if len(line.text) <= HEADLINE_MAX_CHARS and _BYLINE.search(line.text):
        return "byline"
    if (
        HEADLINE_MIN_CHARS <= len(line.text) <= HEADLINE_MAX_CHARS
        and not _CLAUSE_PUNCT.search(line.text)
        and not _SENTENCE_PUNCT.search(line.text)
    ):
        return "headline"
    return "paragraph"


def _continues(line: _Line, kind: BlockKind, following: _Line) -> bool:
    """Whether ``line`` is the first part of a paragraph that ``following`` completes."""
    if kind != "paragraph" or following.md_heading or line.broken_end:
        return False
    if _TERMINAL.search(line.text):
        return False
    if _CAPTION.match(following.text):
        return False
    return len(line.text) >= WRAPPED_LINE_MIN_CHARS or bool(_CLAUSE_PUNCT.search(line.text))


def clean(original: str) -> CleanText:
    """Clean ``original`` into blocks, rejoining paragraphs split across (blank) lines."""
    lines = [line for line in _read_lines(original) if line is not None]
    text_parts: list[str] = []
    index = array("q")
    blocks: list[Block] = []
    cursor = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        kind = _classify(line)
        parts, offsets = [line.text], list(line.offsets)
        while i + 1 < len(lines) and _continues(lines[i], kind, lines[i + 1]):
            following = lines[i + 1]
            if _ASCII_WORD_END.search(parts[-1]) and _ASCII_WORD_START.match(following.text):
                parts.append(" ")  # a Latin word wrapped at the line end: keep the words apart
                offsets.append(offsets[-1] + 1)  # points at the line break it replaces
            parts.append(following.text)
            offsets.extend(following.offsets)
            i += 1
        if blocks:
            text_parts.append("\n")
            index.append(index[-1] + 1)
            cursor += 1
        block_text = "".join(parts)
        text_parts.append(block_text)
        index.extend(offsets)
        blocks.append(Block(kind, cursor, cursor + len(block_text)))
        cursor += len(block_text)
        i += 1
    return CleanText(original, "".join(text_parts), index, blocks)
