"""One published state of the local index, read from its segments on demand.

A :class:`Snapshot` is a list of parts (a segment and which of its documents are live); it offers the
:class:`~rag.store.backend.StoreView` interface: ``documents`` and ``chunks`` are lazy collections
(text read when asked for), ``vectors`` searches the segments' memory-mapped vectors (exactly, or
through a large segment's approximate index), and ``lexical`` scores BM25 over their postings with the
statistics of all live chunks, so scores are the same as over one table of them.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import Counter
from collections.abc import Collection, ItemsView, Iterator, Sequence, ValuesView
from dataclasses import dataclass, field, fields
from functools import cached_property, partial
from typing import Any

import faiss
import numpy as np

from ..types import Chunk, Document, PageBox
from .backend import DocumentRecord, DocumentRecords
from .segment import Segment

__all__ = ["Part", "Snapshot", "StoredDocument", "StoredRecord"]


@dataclass(frozen=True, eq=False)
class Part:
    """A segment as one version sees it: the rows of ``removed`` documents are tombstoned."""

    segment: Segment
    removed: frozenset[int] = frozenset()  # document rows of the segment

    @cached_property
    def live_documents(self) -> np.ndarray:
        live = np.ones(len(self.segment.ids), dtype=bool)
        live[list(self.removed)] = False
        return live

    @property
    def documents(self) -> int:
        return len(self.segment.ids) - len(self.removed)

    @cached_property
    def live_rows(self) -> np.ndarray:
        live = np.ones(self.segment.rows, dtype=bool)
        for doc_row in self.removed:
            first = int(self.segment.first_rows[doc_row])
            live[first : first + int(self.segment.chunk_counts[doc_row])] = False
        return live

    @cached_property
    def live_bitmap(self) -> np.ndarray | None:
        """The live rows packed a bit each (an approximate index's filter); None when every row is live."""
        return np.packbits(self.live_rows, bitorder="little") if self.removed else None

    @cached_property
    def live_row_numbers(self) -> np.ndarray:
        return np.flatnonzero(self.live_rows)

    @property
    def live(self) -> int:
        return len(self.live_row_numbers)


class StoredDocument(Document):
    """A stored :class:`Document`; its text, headlines and pages are read from the segment on first use."""

    def __init__(
        self, id: str, source: str, text: str | None = None, headlines=(), name: str = "", pages=(), *, load=None
    ) -> None:
        data = None if load else {"text": text, "headlines": list(headlines), "pages": list(pages)}
        self.__dict__.update(id=id, source=source, name=name, _data=data, _load=load)

    def _row(self) -> dict[str, Any]:
        if self._data is None:
            self.__dict__["_data"] = self._load()
        return self._data

    @property  # type: ignore[override]
    def text(self) -> str:
        return self._row()["text"]

    @property  # type: ignore[override]
    def headlines(self) -> tuple[str, ...]:
        return tuple(self._row()["headlines"])

    @property  # type: ignore[override]
    def pages(self) -> tuple[PageBox, ...]:
        return tuple(PageBox.of(p) for p in self._row().get("pages", ()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Document):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(Document))

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"StoredDocument(id={self.id!r}, source={self.source!r})"


class StoredRecord(DocumentRecord):
    """A :class:`DocumentRecord` whose chunk ids are read with the document's text."""

    def __init__(self, document: StoredDocument, added_at: str, updated: bool) -> None:
        self.__dict__.update(document=document, added_at=added_at, updated=updated)

    @property  # type: ignore[override]
    def chunk_ids(self) -> tuple[str, ...]:
        return tuple(self.document._row()["chunk_ids"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DocumentRecord):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(DocumentRecord))

    def __hash__(self) -> int:
        return hash(self.document.id)


def _record(segment: Segment, row: int) -> StoredRecord:
    load = partial(segment.document_data, row)
    document = StoredDocument(segment.ids[row], segment.sources[row], name=segment.names[row], load=load)
    return StoredRecord(document, segment.added_at[row], bool(segment.updated[row]))


class _Documents(DocumentRecords):
    """The live documents, looked up in each segment's id table (no table of all of them is built)."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self._parts = parts

    def where(self, doc_id: str) -> tuple[int, int]:
        """``(part number, document row)`` of a live document."""
        for number, part in enumerate(self._parts):
            row = part.segment.doc_row.get(doc_id)
            if row is not None and (not part.removed or row not in part.removed):
                return number, row
        raise KeyError(doc_id)

    def by_source(self, keys: Collection[str]) -> dict[str, str]:
        found = {}
        for key in keys:
            live = (
                (part, row)
                for part in reversed(self._parts)
                for row in reversed(part.segment.source_rows(key))
                if row not in part.removed
            )
            newest = next(live, None)  # the one a scan in key order would see last
            if newest is not None:
                found[key] = newest[0].segment.ids[newest[1]]
        return found

    def __getitem__(self, doc_id: str) -> DocumentRecord:
        number, row = self.where(doc_id)
        return _record(self._parts[number].segment, row)

    def __contains__(self, doc_id: object) -> bool:
        try:
            self.where(doc_id)  # type: ignore[arg-type]
        except (KeyError, TypeError):
            return False
        return True

    def _rows(self) -> Iterator[tuple[Segment, int]]:
        for part in self._parts:
            rows = range(len(part.segment.ids))
            yield from ((part.segment, row) for row in rows if row not in part.removed)

    def __iter__(self) -> Iterator[str]:
        for part in self._parts:
            if part.removed:
                yield from (doc_id for row, doc_id in enumerate(part.segment.ids) if row not in part.removed)
            else:
                yield from part.segment.ids

    def __len__(self) -> int:
        return sum(part.documents for part in self._parts)

    def items(self) -> ItemsView[str, DocumentRecord]:
        return _Items(self)

    def values(self) -> ValuesView[DocumentRecord]:
        return _Values(self)


class _Items(ItemsView):
    def __iter__(self):  # one lookup per document, not two
        for segment, row in self._mapping._rows():
            yield segment.ids[row], _record(segment, row)


class _Values(ValuesView):
    def __iter__(self):
        for segment, row in self._mapping._rows():
            yield _record(segment, row)


class _Chunks(Sequence[Chunk]):
    """The live chunks in key order."""

    def __init__(self, parts: Sequence[Part]) -> None:
        self._parts = parts
        self._starts = np.cumsum([0] + [part.live for part in parts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        number = bisect.bisect_right(self._starts, index) - 1
        part = self._parts[number]
        return part.segment.chunk_at(int(part.live_row_numbers[index - self._starts[number]]))

    def __iter__(self) -> Iterator[Chunk]:
        for part in self._parts:
            for row in part.live_row_numbers:
                yield part.segment.chunk_at(int(row))


class SegmentVectors:
    """Inner-product search over the parts: exact over the memory-mapped vectors (the same kernel as
    ``IndexFlatIP``), or through a large segment's approximate index (:mod:`rag.store.ann`)."""

    def __init__(self, parts: Sequence[Part], dimension: int) -> None:
        self._parts = [part for part in parts if part.live]
        self.dimension = dimension

    def __len__(self) -> int:
        return sum(part.live for part in self._parts)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        # One query: OpenMP threads only add start-up and contention (measured 4-13x slower with two threads on
        # a busy machine). The setting belongs to the calling thread, so it is made on each search.
        faiss.omp_set_num_threads(1)
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        all_keys, all_scores = [], []
        for part in self._parts:
            segment = part.segment
            ann = segment.ann
            if ann is not None:
                rows, scores = ann.search(query, min(k, part.live), segment.vectors, part.live_bitmap)
            else:
                dead = segment.rows - part.live
                scores, rows = faiss.knn(query, segment.vectors, min(k + dead, segment.rows), metric=faiss.METRIC_INNER_PRODUCT)
                rows, scores = rows[0], scores[0]
                found = rows >= 0
                rows, scores = rows[found], scores[found]
                alive = part.live_rows[rows]
                rows, scores = rows[alive], scores[alive]
            all_keys.append(np.asarray(segment.keys)[rows])
            all_scores.append(scores)
        keys, scores = np.concatenate(all_keys), np.concatenate(all_scores)
        best = np.argsort(-scores, kind="stable")[:k]
        return keys[best], scores[best]


class SegmentLexical:
    """Okapi BM25 over the parts' postings; IDF and average length over all live chunks (as one table)."""

    def __init__(self, parts: Sequence[Part], k1: float = 1.2, b: float = 0.75) -> None:
        self._parts = [part for part in parts if part.live]
        self.k1, self.b = k1, b
        self._lock = threading.Lock()
        self._tables: tuple[np.ndarray, list[np.ndarray], list[int]] | None = None

    def __len__(self) -> int:
        return sum(part.live for part in self._parts)

    def _built(self) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
        """Length normalisation of each live row (in key order), each part's row → live row, part offsets."""
        with self._lock:
            if self._tables is None:
                lengths = np.concatenate([p.segment.lengths[p.live_rows] for p in self._parts] or [np.zeros(0, np.float32)])
                average = float(lengths.mean()) if len(lengths) else 0.0
                norm = self.k1 * (1 - self.b + self.b * lengths / max(average, 1e-9))
                positions, offset, offsets = [], 0, []
                for part in self._parts:
                    positions.append(np.cumsum(part.live_rows) - 1 + offset)
                    offsets.append(offset)
                    offset += part.live
                self._tables = norm, positions, offsets
            return self._tables

    def _postings(self, term: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per part, the live rows (numbered over all live rows) holding ``term`` and its frequency there."""
        positions = self._built()[1]
        found = []
        for part, position in zip(self._parts, positions):
            posting = part.segment.postings(term)
            if posting is not None:
                rows, tfs = posting
                alive = part.live_rows[rows]
                found.append((position[rows[alive]], tfs[alive]))
        return found

    def _idf(self, postings: list[tuple[np.ndarray, np.ndarray]]) -> float:
        df = sum(len(rows) for rows, _ in postings)
        return math.log(1 + (len(self) - df + 0.5) / (df + 0.5))

    def idf(self, term: str) -> float:
        return self._idf(self._postings(term))

    def top(self, query: list[str], n: int) -> list[tuple[int, float]]:
        """Keys and scores of the ``n`` best chunks with a positive score, best first."""
        norm = self._built()[0]
        scores = np.zeros(len(norm), dtype=np.float32)
        for term, count in Counter(query).items():
            postings = self._postings(term)
            if not postings:
                continue
            idf = self._idf(postings)
            for rows, tf in postings:
                scores[rows] += count * idf * tf * (self.k1 + 1) / (tf + norm[rows])
        n = min(n, int((scores > 0).sum()))
        if n <= 0:
            return []
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self._key(int(row)), float(scores[row])) for row in best]

    def _key(self, live_row: int) -> int:
        offsets = self._built()[2]
        number = bisect.bisect_right(offsets, live_row) - 1
        part = self._parts[number]
        return int(part.segment.keys[part.live_row_numbers[live_row - offsets[number]]])


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One consistent state of the index; searches read a snapshot, writes publish a new one."""

    version: int
    parts: tuple[Part, ...]
    next_key: int
    dimension: int
    documents: _Documents = field(init=False)
    chunks: _Chunks = field(init=False)
    vectors: SegmentVectors = field(init=False)
    lexical: SegmentLexical = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "documents", _Documents(self.parts))
        object.__setattr__(self, "chunks", _Chunks(self.parts))
        object.__setattr__(self, "vectors", SegmentVectors(self.parts, self.dimension))
        object.__setattr__(self, "lexical", SegmentLexical(self.parts))
        object.__setattr__(self, "_first_keys", [p.segment.first_key for p in self.parts if p.segment.rows])
        object.__setattr__(self, "_with_rows", [p for p in self.parts if p.segment.rows])

    @property
    def keys(self) -> np.ndarray:
        """The key of each live chunk, in order."""
        keys = [np.asarray(p.segment.keys)[p.live_rows] for p in self.parts]
        return np.concatenate(keys) if keys else np.zeros(0, np.int64)

    def chunk(self, key: int) -> Chunk:
        number = bisect.bisect_right(self._first_keys, key) - 1  # type: ignore[attr-defined]
        if number >= 0:
            part = self._with_rows[number]  # type: ignore[attr-defined]
            row = part.segment.row_of(key)
            if row is not None and part.live_rows[row]:
                return part.segment.chunk_at(row)
        raise KeyError(key)
