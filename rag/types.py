"""Plain data types passed between the stages. No logic beyond small conveniences."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PageBox:
    """Where ``text[start:end]`` of a document is printed: its page (1-based) and, for OCR'd pages, its line's box.

    ``box`` is ``(x0, y0, x1, y1)`` as fractions of the page's width and height (independent of the scan's dpi);
    ``None`` for text taken from a PDF's text layer. ``vertical`` lines run top to bottom.
    """

    start: int
    end: int
    page: int
    box: tuple[float, float, float, float] | None = None
    vertical: bool = False

    @classmethod
    def of(cls, value: PageBox | dict[str, Any] | list[Any]) -> PageBox:
        """From its stored form (``asdict`` output read back from JSON)."""
        if isinstance(value, PageBox):
            return value
        if isinstance(value, dict):
            box = value.get("box")
            return cls(value["start"], value["end"], value["page"], tuple(box) if box else None, value.get("vertical", False))
        raise TypeError(f"not a PageBox: {value!r}")

    def clip(self, start: int, end: int) -> PageBox | None:
        """The part of this line holding ``[start, end)``; its box narrowed in proportion to the characters."""
        lo, hi = max(start, self.start), min(end, self.end)
        if lo >= hi:
            return None
        if self.box is None or (lo, hi) == (self.start, self.end):
            return PageBox(lo, hi, self.page, self.box, self.vertical)
        x0, y0, x1, y1 = self.box
        n = self.end - self.start
        a, b = (lo - self.start) / n, (hi - self.start) / n
        if self.vertical:
            box = (x0, y0 + a * (y1 - y0), x1, y0 + b * (y1 - y0))
        else:
            box = (x0 + a * (x1 - x0), y0, x0 + b * (x1 - x0), y1)
        return PageBox(lo, hi, self.page, tuple(round(v, 5) for v in box), self.vertical)  # type: ignore[arg-type]


def boxes_between(boxes: Iterable[PageBox], start: int, end: int) -> list[PageBox]:
    """The (clipped) boxes covering the document span ``[start, end)``, e.g. a cited sentence."""
    return [part for box in boxes if (part := box.clip(start, end)) is not None]


@dataclass(frozen=True)
class Document:
    """One source file as loaded. ``text`` is the decoded file exactly, so offsets index into it.

    For an OCR'd image or PDF, ``text`` is the recognised text in reading order (headlines as ``# `` lines)
    and ``pages`` says where each line of it is printed."""

    id: str  # content hash
    source: str  # path as given (or the upload's safe name)
    text: str
    headlines: tuple[str, ...] = ()
    name: str = ""  # the name to show, when not the source's file name (an upload's name as the user gave it)
    pages: tuple[PageBox, ...] = ()  # in text order; empty for files without pages

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", tuple(PageBox.of(p) for p in self.pages))

    @property
    def display_name(self) -> str:
        return self.name or self.source.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Chunk:
    """A passage. ``text == document.text[start:end]``; ``clean`` is the rejoined, cleaned form."""

    id: str
    doc_id: str
    source: str
    text: str
    clean: str
    normalized: str  # t2s + NFKC + lower-case form of ``title`` and ``clean``, used for lexical matching
    title: str
    start: int
    end: int
    line_start: int  # 1-based, inclusive
    line_end: int
    page: int = 0  # 1-based page of the chunk's first character; 0 for files without pages
    boxes: tuple[PageBox, ...] = ()  # the chunk's lines on the page(s), clipped to the chunk

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", tuple(PageBox.of(b) for b in self.boxes))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def passage_dict(self) -> dict[str, Any]:
        """The fields that locate this passage in its source, as answers and search results show them."""
        return {
            "text": self.text,
            "clean": self.clean,
            "source": self.source,
            "title": self.title,
            "doc_id": self.doc_id,
            "chunk_id": self.id,
            "start": self.start,
            "end": self.end,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "page": self.page,
            "boxes": [asdict(b) for b in self.boxes],
        }


@dataclass
class Hit:
    """A retrieved chunk with its fused score and rank (1-based)."""

    chunk: Chunk
    score: float
    rank: int = 0
    also_in: list[str] = field(default_factory=list)  # ids of near-duplicate chunks collapsed into this one
    scores: dict[str, float] = field(default_factory=dict)  # per-retriever scores, for inspection

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            **self.chunk.passage_dict(),
            "also_in": list(self.also_in),
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
        }


@dataclass
class Citation:
    """Marker ``[n]`` in an answer, pointing at a shown passage and the sentence that supports the claim."""

    n: int
    chunk: Chunk
    quote: str = ""  # the supporting sentence as it reads in ``chunk.clean``
    quote_start: int = -1  # offsets of the quote in the original document (-1 when unknown)
    quote_end: int = -1

    @property
    def source(self) -> str:
        """The cited file (``chunk.source``)."""
        return self.chunk.source

    @property
    def title(self) -> str:
        return self.chunk.title

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            **self.chunk.passage_dict(),
            "quote": self.quote,
            "quote_start": self.quote_start,
            "quote_end": self.quote_end,
        }


@dataclass
class Answer:
    """What ``Assistant.ask`` returns."""

    question: str
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)
    rewritten_question: str | None = None  # set when a follow-up was made standalone
    generator: str = "extractive"
    note: str | None = None  # e.g. "LLM unavailable, extractive fallback"
    span: str | None = None  # the short answer that leads the text (a number, name, date …), when there is one
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [h.to_dict() for h in self.passages],
            "rewritten_question": self.rewritten_question,
            "generator": self.generator,
            "note": self.note,
            "span": self.span,
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }

    # Jupyter shows these instead of the dataclass repr: the answer and a numbered source list.
    def _repr_markdown_(self) -> str:
        from .answer.render import to_markdown

        return to_markdown(self)

    def _repr_html_(self) -> str:
        from .answer.render import to_html

        return to_html(self)
