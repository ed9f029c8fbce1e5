"""Sentence-aware chunking of cleaned documents, with exact offsets into the original text.

A headline starts a new section; chunks never span two sections and carry the section's
headline as ``title``. Sentences are packed up to ``chunk_size`` characters; a sentence longer
than twice that is cut into ``chunk_size`` pieces (the only place a sentence is cut). The next
chunk repeats trailing sentences of the previous one up to ``chunk_overlap`` characters.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from .text import CleanText, normalize, split_sentences
from .types import Chunk, Document, PageBox, boxes_between


@dataclass(frozen=True)
class ChunkingConfig:
    chunk_size: int = 300
    chunk_overlap: int = 0

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError("need chunk_size >= 1 and 0 <= chunk_overlap < chunk_size")


@dataclass(frozen=True)
class _Section:
    title: str
    spans: list[tuple[int, int]]  # sentence spans in the cleaned text


def _sections(cleaned: CleanText, max_sentence: int, piece: int) -> list[_Section]:
    sections: list[_Section] = []
    title_parts: list[str] = []
    spans: list[tuple[int, int]] = []
    previous_was_headline = False
    for block in cleaned.blocks:
        if block.kind == "headline":
            if not previous_was_headline:
                if spans:
                    sections.append(_Section(" ".join(title_parts), spans))
                title_parts, spans = [], []
            title_parts.append(cleaned.text[block.start : block.end])
        previous_was_headline = block.kind == "headline"
        for start, end in split_sentences(cleaned.text[block.start : block.end]):
            start, end = block.start + start, block.start + end
            sentence = cleaned.text[start:end]
            start += len(sentence) - len(sentence.lstrip())  # pieces are cut from the first visible character
            if end - start <= max_sentence:
                spans.append((start, end))
            else:  # an overlong "sentence" (tables, run-on OCR): cut into pieces
                spans.extend((s, min(s + piece, end)) for s in range(start, end, piece))
    if spans:
        sections.append(_Section(" ".join(title_parts), spans))
    return sections


def _pack(spans: list[tuple[int, int]], config: ChunkingConfig) -> list[list[tuple[int, int]]]:
    groups: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for span in spans:
        if current and span[1] - current[0][0] > config.chunk_size:
            groups.append(current)
            overlap: list[tuple[int, int]] = []
            for previous in reversed(current[1:]):  # never repeat the whole previous chunk
                if current[-1][1] - previous[0] > config.chunk_overlap or span[1] - previous[0] > config.chunk_size:
                    break
                overlap.insert(0, previous)
            current = overlap
        current.append(span)
    if current:
        groups.append(current)
    return groups


def chunk_document(document: Document, cleaned: CleanText, config: ChunkingConfig) -> list[Chunk]:
    """Split a cleaned document into chunks whose original span is ``document.text[start:end]``."""
    chunks: list[Chunk] = []
    page_ends = [p.end for p in document.pages]
    for section in _sections(cleaned, max_sentence=2 * config.chunk_size, piece=config.chunk_size):
        for group in _pack(section.spans, config):
            clean_start, clean_end = group[0][0], group[-1][1]
            clean_text = cleaned.text[clean_start:clean_end].strip()
            if not clean_text:
                continue
            lead = len(cleaned.text[clean_start:clean_end]) - len(cleaned.text[clean_start:clean_end].lstrip())
            clean_start += lead
            clean_end = clean_start + len(clean_text)
            start, end = cleaned.to_original(clean_start, clean_end)
            title = section.title
            first = bisect_right(page_ends, start)  # lines (in text order) that end after the chunk starts
            boxes = boxes_between(_until(document.pages[first:], end), start, end)
            matched = clean_text if clean_text.startswith(title) else f"{title}\n{clean_text}"
            chunks.append(
                Chunk(
                    id=f"{document.id}-{len(chunks):04d}",
                    doc_id=document.id,
                    source=document.source,
                    text=document.text[start:end],
                    clean=clean_text,
                    normalized=normalize(matched),
                    title=title,
                    start=start,
                    end=end,
                    line_start=cleaned.line_of(start),
                    line_end=cleaned.line_of(end - 1),
                    page=boxes[0].page if boxes else 0,
                    boxes=tuple(boxes),
                )
            )
    return chunks


def _until(pages: tuple[PageBox, ...], end: int) -> list[PageBox]:
    taken: list[PageBox] = []
    for box in pages:
        if box.start >= end:
            break
        taken.append(box)
    return taken
