"""Plain data types passed between the stages. No logic beyond small conveniences."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One source file as loaded. ``text`` is the decoded file exactly, so offsets index into it."""

    id: str  # content hash
    source: str  # path as given (or the upload's safe name)
    text: str
    headlines: tuple[str, ...] = ()
    name: str = ""  # the name to show, when not the source's file name (an upload's name as the user gave it)

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
