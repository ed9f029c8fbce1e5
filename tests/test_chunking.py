"""Sentence-aware chunking: exact offsets, nothing dropped, sizes, overlap, one article per chunk."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rag.chunking import ChunkingConfig, chunk_document
from rag.ingest import load_bytes, load_file
from rag.text import CleanText, clean, split_sentences
from rag.types import Chunk, Document

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SEED_FILES = sorted(SEEDS.glob("*.txt"))
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # old Mac files end lines with CR alone
CONFIGS = [ChunkingConfig(300, 60), ChunkingConfig(120, 30), ChunkingConfig(80, 0)]


def clean_spans(cleaned: CleanText, chunks: list[Chunk]) -> list[tuple[int, int]]:
    """Each chunk's span in the cleaned text, found through the offset map (not through the chunker)."""
    position = {cleaned.to_original(i, i + 1)[0]: i for i in range(len(cleaned.text))}
    return [(position[c.start], position[c.end - 1] + 1) for c in chunks]


def sentence_spans(cleaned: CleanText, config: ChunkingConfig) -> list[tuple[int, int]]:
    """Sentences of every block; a sentence over twice the chunk size is expected in chunk-size pieces."""
    spans = []
    for block in cleaned.blocks:
        for s, e in split_sentences(cleaned.text[block.start : block.end]):
            s, e = block.start + s, block.start + e
            s += len(cleaned.text[s:e]) - len(cleaned.text[s:e].lstrip())
            if e - s > 2 * config.chunk_size:
                pieces = ((p, min(p + config.chunk_size, e)) for p in range(s, e, config.chunk_size))
                spans.extend(_strip(cleaned.text, p, q) for p, q in pieces)  # a chunk never starts or ends in spaces
            else:
                spans.append((s, e))
    return spans


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    return start + len(piece) - len(piece.lstrip()), end - len(piece) + len(piece.rstrip())


def sections(cleaned: CleanText) -> list[tuple[int, str]]:
    """(start, title) of each article: a run of headline blocks starts one."""
    found: list[tuple[int, str]] = [(0, "")]
    previous = None
    for block in cleaned.blocks:
        if block.kind == "headline":
            text = cleaned.text[block.start : block.end]
            if previous is not None and previous.kind == "headline":
                found[-1] = (found[-1][0], f"{found[-1][1]} {text}")
            else:
                found.append((block.start, text))
        previous = block
    return found


def check_chunks(document: Document, chunks: list[Chunk], config: ChunkingConfig) -> None:
    """Every property a chunking of ``document`` must have."""
    cleaned = clean(document.text)
    assert chunks, "no chunks"
    for n, chunk in enumerate(chunks):
        assert chunk.id == f"{document.id}-{n:04d}"
        assert (chunk.doc_id, chunk.source) == (document.id, document.source)
        assert document.text[chunk.start : chunk.end] == chunk.text
        assert chunk.line_start == len(_LINE_BREAK.findall(document.text, 0, chunk.start)) + 1
        assert chunk.line_end == len(_LINE_BREAK.findall(document.text, 0, chunk.end - 1)) + 1
        assert chunk.text[0] == chunk.clean[0] and chunk.text[-1] == chunk.clean[-1]

    spans = clean_spans(cleaned, chunks)
    for chunk, (s, e) in zip(chunks, spans):
        assert cleaned.text[s:e] == chunk.clean

    # Nothing dropped: every non-whitespace cleaned character is inside some chunk.
    covered = bytearray(len(cleaned.text))
    for s, e in spans:
        covered[s:e] = b"\x01" * (e - s)
    lost = [i for i, ch in enumerate(cleaned.text) if not ch.isspace() and not covered[i]]
    assert not lost, cleaned.text[lost[0] : lost[0] + 40]

    # Sentence-aware: chunks start and end on sentence boundaries (pieces only for overlong sentences).
    sentence = sentence_spans(cleaned, config)
    starts, ends = {s for s, _ in sentence}, {e for _, e in sentence}
    for s, e in spans:
        assert s in starts, cleaned.text[s : s + 30]
        assert e in ends, cleaned.text[e - 30 : e]
        if e - s > config.chunk_size:
            assert (s, e) in sentence and e - s <= 2 * config.chunk_size  # one long sentence, kept whole

    # One article per chunk, titled by its headline(s).
    article = sections(cleaned)
    for chunk, (s, e) in zip(chunks, spans):
        assert not any(s < start < e for start, _ in article), chunk.clean[:60]
        assert chunk.title == [title for start, title in article if start <= s][-1]

    # Overlap: consecutive chunks of an article repeat at most ``chunk_overlap`` characters and move on.
    for (previous, (ps, pe)), (chunk, (s, e)) in zip(zip(chunks, spans), zip(chunks[1:], spans[1:])):
        assert s > ps and e > pe
        if previous.title == chunk.title:
            assert pe - s <= config.chunk_overlap


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.chunk_size}-{c.chunk_overlap}")
@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name[:3])
def test_seed_chunks_round_trip_and_cover_everything(path: Path, config: ChunkingConfig) -> None:
    document = load_file(path)
    check_chunks(document, chunk_document(document, clean(document.text), config), config)


def test_overlap_is_used_and_zero_overlap_means_none() -> None:
    document = load_file(SEED_FILES[1])
    cleaned = clean(document.text)
    with_overlap = chunk_document(document, cleaned, ChunkingConfig(120, 40))
    spans = clean_spans(cleaned, with_overlap)
    assert any(s < pe for (_, pe), (s, _) in zip(spans, spans[1:]))
    without = chunk_document(document, cleaned, ChunkingConfig(120, 0))
    spans = clean_spans(cleaned, without)
    assert all(s >= pe for (_, pe), (s, _) in zip(spans, spans[1:]))
    assert len(without) < len(with_overlap)


def test_chunks_carry_their_article_headline() -> None:
    document = load_file(SEED_FILES[0])
    chunks = chunk_document(document, clean(document.text), ChunkingConfig())
    assert chunks[0].title == "李強在京調研新質生產力發展情況"
    assert chunks[0].clean.startswith("李強在京調研新質生產力發展情況")
    assert any(c.title == "東北大項目建設熱火朝天" for c in chunks)
    # The title is searchable even in chunks that do not repeat it; matching text is simplified.
    later = next(c for c in chunks if c.title == "李強在京調研新質生產力發展情況" and not c.clean.startswith(c.title))
    assert later.normalized.startswith("李强在京调研新质生产力发展情况\n")


def test_an_overlong_sentence_is_cut_into_chunk_size_pieces() -> None:
    run_on = "这是一段没有任何标点符号的表格文字" * 40  # 680 characters, more than twice the chunk size
    text = f"表格说明如下所示\n\n{run_on}。\n\n后面还有一句正常的话。"
    config = ChunkingConfig(100, 20)
    document = load_bytes(text.encode("utf-8"), "table.txt")
    chunks = chunk_document(document, clean(text), config)
    check_chunks(document, chunks, config)
    pieces = [c for c in chunks if "没有任何标点" in c.clean]
    assert [c.clean for c in pieces[:6]] == [run_on[i : i + 100] for i in range(0, 600, 100)]
    assert pieces[6].clean == run_on[600:] + "。\n后面还有一句正常的话。"  # the last piece packs like a sentence
    assert all(c.title == "表格说明如下所示" for c in chunks)


def test_a_long_sentence_under_twice_the_size_stays_whole() -> None:
    sentence = "这句话很长" * 30 + "。"  # 151 characters
    text = f"短句一。{sentence}短句二。"
    config = ChunkingConfig(100, 20)
    document = load_bytes(text.encode("utf-8"), "long.txt")
    chunks = chunk_document(document, clean(text), config)
    check_chunks(document, chunks, config)
    assert sentence in [c.clean for c in chunks]


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        ChunkingConfig(100, 100)
    with pytest.raises(ValueError):
        ChunkingConfig(0, 0)


# ---------------------------------------------------------------------------- any text
# Newspaper-like material: headlines, datelines, OCR breaks inside words, stray Latin words, broken
# characters, Markdown, every line ending, and runs long enough to need splitting.
_PIECES = st.sampled_from(
    ["新华社北京电", "记者", "李強", "调研", "进一", "步", "加快", "，", "。", "！", "？", "“", "”", "（", "）", "▲",
     "## ", "# ", " ", "\t", "\n", "\n\n", "\r\n", "\r", "\ufffd", "\u200b", "Deep", "Seek", "3.5", "万人",
     "……", "一二三四五六七八九十" * 3, "没有标点的长表格文字" * 12]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_PIECES, min_size=1, max_size=80).map("".join),
    st.integers(50, 200),
    st.integers(0, 49),
)
def test_any_news_like_text_chunks_back_to_the_original(text: str, size: int, overlap: int) -> None:
    assume(clean(text).text.strip())
    config = ChunkingConfig(size, overlap)
    document = Document("d", "any.txt", text, ())
    check_chunks(document, chunk_document(document, clean(text), config), config)


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=600), st.integers(50, 120))
def test_arbitrary_unicode_chunks_exactly_and_drops_nothing(text: str, size: int) -> None:
    cleaned = clean(text)
    assume(cleaned.text.strip())
    document = Document("d", "any.txt", text, ())
    chunks = chunk_document(document, cleaned, ChunkingConfig(size, 0))
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
    covered = bytearray(len(cleaned.text))
    for s, e in clean_spans(cleaned, chunks):
        covered[s:e] = b"\x01" * (e - s)
    assert all(covered[i] or ch.isspace() for i, ch in enumerate(cleaned.text))
