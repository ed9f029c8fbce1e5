"""Immutable segments of the local index: one write's documents and chunks, read in place.

A segment is a directory written once and never changed. Opening one reads its small catalogue (one
row per document) and maps its arrays; chunk and document text is read from disk when asked for.
Removals are not written into a segment: the version manifest lists the removed documents
(tombstones), and a merge writes the live rows of several segments as one new segment.

Files (all safe formats: JSON, JSON Lines and ``.npy`` without pickle)::

    segment.json            counts and the size and SHA-256 of every file below
    catalogue.json          per document (in columns): id, source, name, added time, updated flag, first row,
                            chunk count
    documents.jsonl         per document: text, headlines, pages, chunk ids (one line each)
    documents.offsets.npy   int64 byte offset of each line, and the file size
    chunks.jsonl            per chunk (row): its fields
    chunks.offsets.npy      int64 byte offset of each line, and the file size
    keys.npy                int64 key of each row, ascending
    vectors.npy             float32 (rows, dimension) unit vectors
    lengths.npy             float32 BM25 token count of each row
    terms.json              the segment's BM25 vocabulary (term id = position)
    postings.offsets.npy    int64 start of each term's postings, and their total
    postings.rows.npy       int32 row of each posting, grouped by term
    postings.tfs.npy        float32 term frequency of each posting
    ann.faiss               (large segments only) an approximate index of the vectors (rag.store.ann)
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ..types import Chunk
from .ann import ANN_FILE, AnnIndex, build
from .backend import Addition, key_tail, source_key, source_tail
from .files import fsync_path, sha256_file, write_text

__all__ = ["Segment", "SegmentData", "SegmentError"]

#: Segments up to this size are checksummed in full when opened; larger ones are checked for size
#: and structure only (hashing a 200 k-chunk segment would cost most of the open).
VERIFY_BYTES = 64 << 20
_ARRAYS = (
    "documents.offsets.npy",
    "chunks.offsets.npy",
    "keys.npy",
    "vectors.npy",
    "lengths.npy",
    "postings.offsets.npy",
    "postings.rows.npy",
    "postings.tfs.npy",
)
#: The catalogue's columns (a row of ``SegmentData.catalogue`` holds them in this order).
CATALOGUE = ("id", "source", "name", "added_at", "updated", "first_row", "chunks")
FILES = ("catalogue.json", "documents.jsonl", "chunks.jsonl", "terms.json", *_ARRAYS)


class SegmentError(RuntimeError):
    """A segment's files are missing, damaged or inconsistent (the message names the file)."""


@dataclass
class SegmentData:
    """The content of a segment before it is written."""

    catalogue: list[list[Any]]  # [id, source, name, added_at, updated, first_row, chunk count]
    documents: list[bytes]  # one JSON line each
    chunks: list[bytes]
    keys: np.ndarray
    vectors: np.ndarray
    lengths: np.ndarray
    terms: list[str]
    term_offsets: np.ndarray
    rows: np.ndarray
    tfs: np.ndarray

    @classmethod
    def from_additions(cls, additions: Sequence[Addition], first_key: int, added_at: str, dimension: int) -> SegmentData:
        catalogue, documents, chunks, tokens = [], [], [], []
        for addition in additions:
            document = addition.document
            updated = int(addition.updated)
            catalogue.append([document.id, document.source, document.name, added_at, updated, len(chunks), len(addition.chunks)])
            documents.append(_document_line(document.text, document.headlines, document.pages, [c.id for c in addition.chunks]))
            chunks.extend(_line(chunk.to_dict()) for chunk in addition.chunks)
            tokens.extend(addition.tokens)
        vectors = [a.vectors for a in additions if len(a.chunks)]
        return cls(
            catalogue,
            documents,
            chunks,
            np.arange(first_key, first_key + len(chunks), dtype=np.int64),
            np.concatenate(vectors).astype(np.float32) if vectors else np.zeros((0, dimension), np.float32),
            *postings_of(tokens),
        )

    @property
    def size(self) -> int:
        return len(self.chunks)

    def write(self, directory: Path, ann: str | None = None) -> str:
        """Write the files (and an approximate index of kind ``ann``) and fsync them; the SHA-256 of
        ``segment.json``, which vouches for the rest."""
        directory.mkdir()
        _write_lines(directory / "documents.jsonl", self.documents)
        _write_lines(directory / "chunks.jsonl", self.chunks)
        columns = list(zip(*self.catalogue)) or [()] * len(CATALOGUE)
        _write_json(directory / "catalogue.json", {name: list(column) for name, column in zip(CATALOGUE, columns)})
        _write_json(directory / "terms.json", self.terms)
        arrays = {
            "documents.offsets.npy": _offsets(self.documents),
            "chunks.offsets.npy": _offsets(self.chunks),
            "keys.npy": self.keys.astype(np.int64),
            "vectors.npy": np.ascontiguousarray(self.vectors, dtype=np.float32),
            "lengths.npy": self.lengths.astype(np.float32),
            "postings.offsets.npy": self.term_offsets.astype(np.int64),
            "postings.rows.npy": self.rows.astype(np.int32),
            "postings.tfs.npy": self.tfs.astype(np.float32),
        }
        for name, array in arrays.items():
            with open(directory / name, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
        names = FILES
        if ann is not None:
            faiss.write_index(build(ann, arrays["vectors.npy"]), str(directory / ANN_FILE))
            fsync_path(directory / ANN_FILE)
            names += (ANN_FILE,)
        files = {name: [(directory / name).stat().st_size, sha256_file(directory / name)] for name in names}
        info = {"rows": self.size, "documents": len(self.catalogue), "dimension": int(self.vectors.shape[1]), "files": files}
        if ann is not None:
            info["ann"] = ann
        write_text(directory / "segment.json", json.dumps(info, indent=1))
        fsync_path(directory)
        return sha256_file(directory / "segment.json")


def postings_of(tokens: Sequence[list[str]]) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``lengths, terms, term_offsets, rows, tfs`` of BM25 postings over token lists (row = position)."""
    vocabulary: dict[str, int] = {}
    term_ids: list[int] = []
    rows: list[int] = []
    tfs: list[int] = []
    for row, terms in enumerate(tokens):
        for term, tf in Counter(terms).items():
            term_ids.append(vocabulary.setdefault(term, len(vocabulary)))
            rows.append(row)
            tfs.append(tf)
    lengths = np.array([len(terms) for terms in tokens], dtype=np.float32)
    return (lengths, *_grouped(list(vocabulary), np.array(term_ids, np.int64), np.array(rows, np.int64), np.array(tfs, np.float32)))


def _grouped(terms: list[str], term_ids: np.ndarray, rows: np.ndarray, tfs: np.ndarray):
    order = np.argsort(term_ids, kind="stable")  # postings of a term keep their row order
    counts = np.bincount(term_ids, minlength=len(terms))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return terms, offsets, rows[order].astype(np.int32), tfs[order].astype(np.float32)


def _line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")


def _document_line(text: str, headlines, pages, chunk_ids: list[str]) -> bytes:
    row: dict[str, Any] = {"text": text, "headlines": list(headlines), "chunk_ids": chunk_ids}
    if pages:
        row["pages"] = [asdict(p) for p in pages]
    return _line(row)


def _offsets(lines: list[bytes]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([len(line) for line in lines], dtype=np.int64)]).astype(np.int64)


def _write_lines(path: Path, lines: list[bytes]) -> None:
    with open(path, "wb") as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(value, ensure_ascii=False, separators=(",", ":")))


class Segment:
    """An opened segment: catalogue in memory, arrays memory-mapped, text read on demand.

    It keeps its two text files open, so a reader still holding it can read them after a writer has
    deleted the segment (merged into another): the files live until the last reader closes them."""

    def __init__(self, path: Path, digest: str, verify_bytes: int = VERIFY_BYTES) -> None:
        self.path = path
        self.name = path.name
        self.digest = digest
        info_path = path / "segment.json"
        if not info_path.is_file() or sha256_file(info_path) != digest:
            raise SegmentError(f"{info_path} is missing or does not match the checksum in the manifest")
        info = json.loads(info_path.read_text(encoding="utf-8"))
        files = info["files"]
        self.ann_kind: str | None = info.get("ann")
        total = sum(size for size, _ in files.values())
        for name in FILES + ((ANN_FILE,) if self.ann_kind else ()):
            file = path / name
            size, expected = files[name]
            if not file.is_file() or file.stat().st_size != size:
                raise SegmentError(f"{file} is missing or has the wrong size")
            if total <= verify_bytes and sha256_file(file) != expected:
                raise SegmentError(f"{file} is damaged (checksum mismatch)")
        self.rows: int = info["rows"]
        self.dimension: int = info["dimension"]
        try:
            catalogue = json.loads((path / "catalogue.json").read_text(encoding="utf-8"))
            self.ids: list[str] = catalogue["id"]
            self.sources: list[str] = catalogue["source"]
            self.names: list[str] = catalogue["name"]
            self.added_at: list[str] = catalogue["added_at"]
            self.updated: list[int] = catalogue["updated"]
            self.first_rows = np.array(catalogue["first_row"], dtype=np.int64)
            self.chunk_counts = np.array(catalogue["chunks"], dtype=np.int64)
            terms: list[str] = json.loads((path / "terms.json").read_text(encoding="utf-8"))
            arrays = {name: _load_array(path / name) for name in _ARRAYS}
        except (ValueError, OSError, KeyError, TypeError) as error:
            raise SegmentError(f"{path} cannot be read ({error!r})") from error
        self.document_offsets = arrays["documents.offsets.npy"]
        self.chunk_offsets = arrays["chunks.offsets.npy"]
        self.keys = arrays["keys.npy"]
        self.vectors = arrays["vectors.npy"]
        self.lengths = np.asarray(arrays["lengths.npy"])
        self.term_offsets = arrays["postings.offsets.npy"]
        self.posting_rows = arrays["postings.rows.npy"]
        self.posting_tfs = arrays["postings.tfs.npy"]
        self.term_ids = {term: n for n, term in enumerate(terms)}
        shapes = (
            len(self.ids) + 1 == len(self.document_offsets)
            and len(self.ids) == len(self.sources) == len(self.names) == len(self.added_at) == len(self.updated)
            and len(self.ids) == len(self.first_rows) == len(self.chunk_counts),
            self.rows + 1 == len(self.chunk_offsets) and self.rows == len(self.keys) == len(self.lengths),
            self.vectors.shape == (self.rows, self.dimension),
            len(terms) + 1 == len(self.term_offsets) and len(self.posting_rows) == len(self.posting_tfs),
            self.chunk_offsets[-1] == files["chunks.jsonl"][0] and self.document_offsets[-1] == files["documents.jsonl"][0],
        )
        if not all(shapes):
            raise SegmentError(f"{path}: its files do not agree with each other")
        self.first_key = int(self.keys[0]) if self.rows else None
        self.doc_row = dict(zip(self.ids, range(len(self.ids))))  # document id -> its row in the catalogue
        self._documents = open(path / "documents.jsonl", "rb")  # noqa: SIM115 - held for the segment's life
        self._chunks = open(path / "chunks.jsonl", "rb")  # noqa: SIM115
        self.chunk_at = lru_cache(maxsize=4096)(self._chunk_at)
        self._ann: AnnIndex | None = None
        self._ann_lock = threading.Lock()

    @property
    def ann(self) -> AnnIndex | None:
        """The segment's approximate index, read on first use (None: the segment is searched exactly)."""
        if self.ann_kind is None:
            return None
        with self._ann_lock:
            if self._ann is None:
                try:
                    self._ann = AnnIndex.read(self.path / ANN_FILE, self.ann_kind)
                except (RuntimeError, ValueError) as error:
                    raise SegmentError(f"{self.path / ANN_FILE} cannot be read ({error})") from error
            return self._ann

    def close(self) -> None:
        self._documents.close()
        self._chunks.close()

    def __del__(self) -> None:
        for handle in (getattr(self, "_documents", None), getattr(self, "_chunks", None)):
            if handle is not None:
                handle.close()

    @cached_property
    def _rows_by_tail(self) -> dict[str, list[int]]:
        """Catalogue rows by the cheap part of their source key (:func:`~rag.store.backend.source_tail`)."""
        rows: dict[str, list[int]] = {}
        for row, (source, name) in enumerate(zip(self.sources, self.names)):
            rows.setdefault(source_tail(source, name), []).append(row)
        return rows

    def source_rows(self, key: str) -> list[int]:
        """The catalogue rows whose :func:`~rag.store.backend.source_key` is ``key`` (several only in indexes
        built before a new version of a source replaced the old one), without making every path absolute."""
        candidates = self._rows_by_tail.get(key_tail(key), []) + self._rows_by_tail.get("", [])
        return sorted(row for row in candidates if source_key(self.sources[row], self.names[row]) == key)

    @property
    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.iterdir()) if self.path.exists() else 0

    def row_of(self, key: int) -> int | None:
        row = int(np.searchsorted(self.keys, key))
        return row if row < self.rows and int(self.keys[row]) == key else None

    def _chunk_at(self, row: int) -> Chunk:
        return Chunk(**self._read(self._chunks, self.chunk_offsets, row))

    def document_data(self, doc_row: int) -> dict[str, Any]:
        return self._read(self._documents, self.document_offsets, doc_row)

    def _read(self, handle, offsets: np.ndarray, row: int) -> dict[str, Any]:
        start, end = int(offsets[row]), int(offsets[row + 1])
        try:
            return json.loads(os.pread(handle.fileno(), end - start, start))
        except ValueError as error:  # damage inside a segment too large to checksum on open
            raise SegmentError(f"{handle.name}: row {row} is damaged ({error})") from error

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        term_id = self.term_ids.get(term)
        if term_id is None:
            return None
        start, end = int(self.term_offsets[term_id]), int(self.term_offsets[term_id + 1])
        return np.asarray(self.posting_rows[start:end]), np.asarray(self.posting_tfs[start:end])

    def lines(self, which: str, rows: np.ndarray) -> list[bytes]:
        """The raw lines of ``rows`` of ``documents.jsonl`` or ``chunks.jsonl`` (for a merge)."""
        handle, offsets = (self._documents, self.document_offsets) if which == "documents" else (self._chunks, self.chunk_offsets)
        data = os.pread(handle.fileno(), int(offsets[-1]), 0)
        return [data[int(offsets[r]) : int(offsets[r + 1])] for r in rows]


def merge(parts: Sequence[tuple[Segment, np.ndarray, np.ndarray]]) -> SegmentData:
    """The live rows of ``(segment, live document rows, live chunk rows)`` parts, in order, as one segment.

    Rows keep their keys; postings are remapped to the new rows without re-tokenising."""
    catalogue, documents, chunks, keys, vectors, lengths = [], [], [], [], [], []
    terms: dict[str, int] = {}
    term_ids, rows, tfs = [], [], []
    base = 0
    for segment, live_documents, live_rows in parts:
        new_row = np.cumsum(live_rows) - 1 + base  # row in the merged segment of each live row
        for doc_row in np.flatnonzero(live_documents):
            first, count = int(segment.first_rows[doc_row]), int(segment.chunk_counts[doc_row])
            first = int(new_row[first]) if count else base + int(live_rows[:first].sum())
            columns = (segment.ids, segment.sources, segment.names, segment.added_at, segment.updated)
            catalogue.append([column[doc_row] for column in columns] + [first, count])
        documents += segment.lines("documents", np.flatnonzero(live_documents))
        kept = np.flatnonzero(live_rows)
        chunks += segment.lines("chunks", kept)
        keys.append(np.asarray(segment.keys)[kept])
        vectors.append(np.asarray(segment.vectors)[kept])
        lengths.append(segment.lengths[kept])
        mapping = np.array([terms.setdefault(t, len(terms)) for t in segment.term_ids], dtype=np.int64)
        counts = np.diff(np.asarray(segment.term_offsets))
        posting_terms = np.repeat(mapping, counts)
        posting_rows = np.asarray(segment.posting_rows)
        alive = live_rows[posting_rows]
        term_ids.append(posting_terms[alive])
        rows.append(new_row[posting_rows[alive]])
        tfs.append(np.asarray(segment.posting_tfs)[alive])
        base += len(kept)
    dimension = parts[0][0].dimension
    return SegmentData(
        catalogue,
        documents,
        chunks,
        np.concatenate(keys) if keys else np.zeros(0, np.int64),
        np.concatenate(vectors) if vectors else np.zeros((0, dimension), np.float32),
        np.concatenate(lengths).astype(np.float32),
        *_grouped(list(terms), np.concatenate(term_ids), np.concatenate(rows), np.concatenate(tfs)),
    )


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:  # an empty array cannot be mapped
        return np.load(path, allow_pickle=False)
