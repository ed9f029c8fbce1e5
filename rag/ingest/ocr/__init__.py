"""OCR of scanned pages: page images in, the document's text with each line's page and box out.

The engines sit behind :class:`~rag.ingest.ocr.engine.OcrEngine` (one backend per module): RapidOCR by default,
Tesseract as the alternative. :mod:`.layout` orders the recognised lines; :func:`ocr_pages` writes them out as
text — headlines as ``# `` lines (the cleaning's headline marker, so they become chunk titles), paragraphs as
blank-line separated lines — and records where each piece of text is on which page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from PIL.Image import Image

from ...types import PageBox
from .engine import Budget, OcrCancelled, OcrEngine, OcrStopped, OcrTimeout, OcrUnavailable, TextBox
from .layout import LayoutBlock, reading_order

EngineName = Literal["rapidocr", "tesseract"]


@dataclass(frozen=True)
class OcrOptions:
    """The OCR knobs (from :class:`~rag.settings.Settings`: ``ocr_engine``, ``ocr_max_pages`` …)."""

    engine: EngineName = "rapidocr"
    max_pages: int = 100  # pages to OCR per file
    max_pixels: int = 60_000_000  # per page image: an A2 sheet at 300 dpi is 35 Mpx
    pdf_dpi: int = 200  # scanned PDF pages are rendered at this resolution
    tesseract_languages: str = "chi_sim+chi_tra"
    page_seconds: float = 120.0  # OCR time per page; over it the file is refused (an A3 page takes ~10 s)
    threads: int = 2  # worker threads of the RapidOCR engine
    nice: int = 5  # how much lower their scheduling priority is than the process's (0: the same)
    second_reader: bool = True  # RapidOCR on traditional pages: Tesseract chi_tra fills in what it cannot read


@dataclass
class PagedText:
    """A reader's result for paged input: the text, where each piece of it is printed, and a note per page."""

    text: str = ""
    pages: list[PageBox] = field(default_factory=list)
    ocr_pages: int = 0  # pages that went through OCR

    def add(self, piece: str, page: int, box: tuple[float, float, float, float] | None = None, vertical: bool = False) -> None:
        start = len(self.text)
        self.text += piece
        self.pages.append(PageBox(start, len(self.text), page, box, vertical))

    def gap(self, separator: str = "\n\n") -> None:
        if self.text and not self.text.endswith(separator):
            self.text += separator


@lru_cache(maxsize=4)
def get_engine(
    name: EngineName = "rapidocr",
    tesseract_languages: str = "chi_sim+chi_tra",
    threads: int = 2,
    nice: int = 5,
    second_reader: bool = True,
) -> OcrEngine:
    """The named backend, loaded once per process (RapidOCR's sessions take ~1 s to build)."""
    if name == "tesseract":
        from .tesseract import TesseractEngine

        return TesseractEngine(tesseract_languages)
    from .rapid import RapidEngine

    return RapidEngine(threads, nice, second_reader)


def _edges(block: LayoutBlock) -> tuple[float, float]:
    """The column's left and right edges: quartiles, not extremes — detectors stretch a box into the gutter
    now and then (a line that starts with a full stop), which would make every other line look indented."""
    starts = sorted(line.box[0] for line in block.lines)
    ends = sorted(line.box[2] for line in block.lines)
    return starts[len(starts) // 4], ends[(3 * len(ends)) // 4]


def _paragraphs(block: LayoutBlock, body: float) -> Iterator[list[TextBox]]:
    """A body block's lines grouped into paragraphs: a new one starts at an indented line after a short one."""
    if block.vertical:
        yield list(block.lines)
        return
    left, right = _edges(block)
    current: list[TextBox] = []
    for line in block.lines:
        indented = line.box[0] - left > 0.9 * body
        if current and (indented or current[-1].box[2] < right - 1.5 * body):
            yield current
            current = []
        current.append(line)
    if current:
        yield current


def write_page(result: PagedText, blocks: list[LayoutBlock], page: int, size: tuple[int, int]) -> None:
    """Append one page's blocks to ``result``: ``# headline``, then paragraphs, each piece with its box."""
    width, height = size
    heights = [line.height for b in blocks if b.kind == "body" for line in b.lines if not line.vertical]
    body = sorted(heights)[len(heights) // 2] if heights else 20.0

    def add_line(line: TextBox) -> None:
        x0, y0, x1, y1 = line.box
        box = (round(x0 / width, 5), round(y0 / height, 5), round(x1 / width, 5), round(y1 / height, 5))
        result.add(line.text, page, box, line.vertical)

    for block in blocks:
        if block.kind == "headline":
            result.gap()
            result.text += "# "
            for line in block.lines:
                add_line(line)
            result.gap()
            continue
        for number, paragraph in enumerate(_paragraphs(block, body)):
            # A column's first line continues the previous column's paragraph unless it is indented.
            if number or result.text.endswith("\n") or paragraph[0].box[0] - _edges(block)[0] > 0.9 * body:
                result.gap()
            for line in paragraph:
                add_line(line)
    result.gap()


def ocr_pages(pages: Iterable[tuple[int, Image | str]], total: int, options: OcrOptions, source: str) -> PagedText:
    """OCR ``(page number, image)`` pairs in order, with a progress bar on the terminal (pages done/total, ETA)
    and an ``"ocr"`` :class:`~rag.progress.Step` per page for observers (the page's upload indicator).

    A ``(page number, text)`` pair is a page that has its own text (a PDF's text layer): kept as it is.
    Each page gets ``options.page_seconds``; over it the file is refused (``ocr_timeout``). A cancel
    (:func:`rag.progress.cancellable`) raises :class:`OcrCancelled`."""
    from tqdm import tqdm

    from ...progress import bar, cancel_event
    from ..errors import IngestError

    try:
        engine = (
            get_engine(options.engine, options.tesseract_languages, options.threads, options.nice, options.second_reader)
            if total
            else None
        )
    except OcrUnavailable as error:
        raise IngestError(source, "ocr_missing", str(error)) from error
    result = PagedText()
    name = source.replace("\\", "/").rsplit("/", 1)[-1]
    cancel = cancel_event()
    steps = bar("ocr", total, "page") if total else None
    with tqdm(total=total, desc=f"OCR {name}", unit="页", disable=None if total else True, leave=False) as terminal:
        for page, content in pages:
            if isinstance(content, str):
                result.gap()
                result.add(content, page)
                continue
            assert engine is not None
            budget = Budget.starting_now(options.page_seconds, cancel)
            try:
                budget.check()  # cancelled between pages
                lines = engine.recognize(content, budget)
            except OcrTimeout as error:
                raise IngestError(source, "ocr_timeout", f"page {page}: {error} (RAG_OCR_PAGE_SECONDS)", page=page,
                                  limit=options.page_seconds) from error
            write_page(result, reading_order(lines), page, content.size)
            result.ocr_pages += 1
            terminal.update(1)
            if steps is not None:
                steps.update(1)
    result.text = result.text.rstrip("\n")
    return result


__all__ = [
    "Budget",
    "EngineName",
    "OcrCancelled",
    "OcrEngine",
    "OcrOptions",
    "OcrStopped",
    "OcrTimeout",
    "OcrUnavailable",
    "PagedText",
    "TextBox",
    "get_engine",
    "ocr_pages",
    "reading_order",
    "write_page",
]
