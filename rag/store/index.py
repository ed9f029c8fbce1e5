"""The local backend: documents, chunks, vectors and BM25 in immutable segments, published by a small manifest.

It persists, publishes and verifies; the rows it stores come ready-made (:class:`~rag.store.backend.Change`,
built by :mod:`rag.indexing`). A write costs what it changes: the added documents become one new segment,
removed ones are tombstoned in the manifest, and small segments are merged into larger ones now and then
(a segment is merged into the one before it once that one is at most ``MERGE_RATIO`` times its size, and
rewritten alone once ``DEAD_FRACTION`` of its rows are removed). Opening reads the manifest and each
segment's catalogue and maps its arrays: no chunk is parsed and BM25 is not rebuilt.

Layout of ``<index_dir>/``::

    CURRENT              "<version-dir> <sha256 of its manifest.json>", replaced atomically
    v00000007/
        manifest.json    format, settings fingerprint, embedding model, counts, segments with their
                         segment.json checksums and removed document rows
    segments/s…/         immutable segments (rag.store.segment), shared by the versions that list them
    .lock                writers hold an flock on it

A write writes its segments and then a new version directory (each staged under ``.tmp-*`` and renamed),
fsyncs them, then replaces ``CURRENT``; then it deletes the other versions and the segments the new one
does not list. A crash at any point leaves ``CURRENT`` naming a complete version: the old one or the new
one. No pickle. An index in format 1 (one complete version directory of JSON Lines and a FAISS file) is
converted once when opened.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from ..settings import Settings
from ..types import Document
from . import legacy
from .ann import choose
from .backend import Change, DocumentRecords, EmbeddingSpec
from .files import fsync_path, sha256_file, write_text, writer_lock
from .segment import Segment, SegmentData, SegmentError, merge
from .view import Part, Snapshot

FORMAT_VERSION = 2
#: A segment is merged into the one before it once that one holds at most this many times its live rows.
MERGE_RATIO = 4
#: A segment is rewritten without its removed rows once they are more than this fraction of it.
DEAD_FRACTION = 0.3
log = logging.getLogger(__name__)
_POINTER = re.compile(rb"(v[0-9]{8,}) ([0-9a-f]{64})\n")
#: Reads of the current version before giving up when writers keep replacing it under the reader.
_READ_ATTEMPTS = 5
_SEGMENTS = "segments"
_T = TypeVar("_T")


class IndexStoreError(RuntimeError):
    """Base class of index problems; the message says what to do."""


class IndexNotFoundError(IndexStoreError):
    pass


class IndexCorruptError(IndexStoreError):
    pass


class IndexMismatchError(IndexStoreError):
    """The index was built with other settings (embedding model, chunking)."""

    def __init__(self, path: Path, differences: dict[str, tuple[Any, Any]]) -> None:
        details = ", ".join(f"{key}: index has {old!r}, settings ask for {new!r}" for key, (old, new) in differences.items())
        super().__init__(f"the index at {path} was built with other settings ({details}); rebuild it with `rag index`")
        self.differences = differences


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Index:
    """The local :class:`~rag.store.backend.Store`: segments of chunks with their vectors and BM25 postings, and
    their documents, kept consistent on disk."""

    def __init__(
        self,
        path: Path,
        settings: Settings,
        embeddings: EmbeddingSpec,
        snapshot: Snapshot,
        pointer: bytes | None = None,  # the CURRENT it came from; None: unknown, the first refresh reloads
    ) -> None:
        self.path = Path(path)
        self.settings = settings
        self.embeddings = embeddings
        self._snapshot = snapshot
        self._write_lock = threading.Lock()
        self._swap_lock = threading.Lock()  # replacing snapshot and pointer together
        self._pointer = pointer
        self._fresh = False  # created in memory, not yet written: the first write replaces what is on disk

    # ------------------------------------------------------------------ reading
    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @classmethod
    def exists(cls, path: Path) -> bool:
        return (Path(path) / "CURRENT").is_file()

    @classmethod
    def document_count(cls, path: Path, settings: Settings) -> int:
        return read_manifest(path)[0]["counts"]["documents"]

    @classmethod
    def destroy(cls, path: Path, settings: Settings) -> None:
        shutil.rmtree(path)

    @staticmethod
    def read_documents(path: Path) -> list[Document]:
        return read_documents(path)

    @classmethod
    def open(cls, path: Path, settings: Settings, embeddings: EmbeddingSpec) -> Index:
        """Load and verify the current version; raise if missing, corrupt or built with other settings."""
        path = Path(path)
        expected = {**settings.index_fingerprint(), "embedding_id": embeddings.model_id}

        def load(version_dir: Path, manifest: dict[str, Any]) -> Snapshot | None:
            recorded = {**manifest["settings"], "embedding_id": manifest["embedding"]["model_id"]}
            differences = {k: (recorded.get(k), v) for k, v in expected.items() if recorded.get(k) != v}
            if differences:
                raise IndexMismatchError(path, differences)
            if manifest["format_version"] == 1:
                return None
            return _load_snapshot(path, manifest)

        pointer, snapshot = _read_current(path, load)
        index = cls(path, settings, embeddings, snapshot or _empty(embeddings.dimension), pointer)
        if snapshot is None:
            index._convert()
        return index

    @classmethod
    def create(cls, path: Path, settings: Settings, embeddings: EmbeddingSpec) -> Index:
        """A new, empty index in memory; the first :meth:`update` writes it (replacing any index at ``path``)."""
        index = cls(Path(path), settings, embeddings, _empty(embeddings.dimension))
        index._fresh = True
        return index

    def refresh(self) -> bool:
        """Load the newer version another process published; True when there was one.

        Cheap when nothing changed (it compares the small ``CURRENT`` pointer), and cheap when something did:
        the segments this index already has are kept, only new ones are opened."""
        seen = self._pointer
        try:
            if self._fresh or _read_pointer(self.path) == seen:
                return False
            known = {part.segment.name: part.segment for part in self._snapshot.parts}
            pointer, snapshot = _read_current(self.path, lambda _, manifest: _load_snapshot(self.path, manifest, known))
            if snapshot is None:
                raise IndexMismatchError(self.path, {"format_version": (1, FORMAT_VERSION)})
        except (OSError, RuntimeError) as error:  # a damaged newer version: keep answering from this one
            log.warning("not reloading the index: %s", error)
            return False
        with self._swap_lock:
            if self._pointer != seen:  # a write (or another reload) in this process got there first: keep it
                return False
            self._pointer, self._snapshot = pointer, snapshot
        return True

    # ------------------------------------------------------------------ writing
    def update(self, plan: Callable[[DocumentRecords], Change]) -> Change:
        """Apply ``plan(current documents)`` and publish it as one new version; the change it returned.

        ``plan`` runs under the write lock with the latest published documents (another process may have
        written since this one loaded), so what it decides to add or replace is decided against them.
        Nothing is written when the change is empty (unless this index is new: then its first version is)."""
        with self._writing():
            self._reload_if_stale()
            old = self._snapshot
            change = plan(old.documents)
            if not change and not self._fresh:
                return change
            staged: list[Path] = []
            try:
                parts, next_key = self._apply(old, change, staged)
                self._publish(parts, next_key)
            finally:
                for directory in staged:
                    shutil.rmtree(directory, ignore_errors=True)
        return change

    def remove(self, doc_ids: Iterable[str]) -> list[str]:
        """Delete documents with their vectors and BM25 entries in one new version; the ids that were present."""
        wanted = set(doc_ids)
        change = self.update(lambda documents: Change(remove=wanted & set(documents)))
        return sorted(change.remove)

    def close(self) -> None:
        """Nothing to let go of: the files are read whole on open."""

    def _writing(self) -> AbstractContextManager[None]:
        return writer_lock(self.path, self._write_lock)

    def _reload_if_stale(self) -> None:
        if not self._fresh and Index.exists(self.path):
            self.refresh()

    def _apply(self, old: Snapshot, change: Change, staged: list[Path]) -> tuple[list[Part], int]:
        """The parts of the version that ``change`` makes of ``old``: tombstones, a new segment, merges."""
        removed: dict[int, set[int]] = {}
        for doc_id in change.remove:
            if doc_id in old.documents:
                number, doc_row = old.documents.where(doc_id)
                removed.setdefault(number, set()).add(doc_row)
        parts = [Part(p.segment, p.removed | frozenset(removed.get(n, ()))) for n, p in enumerate(old.parts)]
        next_key = old.next_key
        if change.add:
            data = SegmentData.from_additions(change.add, next_key, _now(), self.embeddings.dimension)
            next_key += data.size
            parts.append(Part(self._write_segment(data, staged)))
        parts = [part for part in parts if part.live_documents.any()]  # wholly removed: dropped, not rewritten
        while len(parts) >= 2 and parts[-2].live <= MERGE_RATIO * parts[-1].live:
            parts[-2:] = [Part(self._write_segment(merge(_live(parts[-2:])), staged))]
        for n, part in enumerate(parts):
            if part.segment.rows - part.live > DEAD_FRACTION * part.segment.rows:
                parts[n] = Part(self._write_segment(merge(_live([part])), staged))
        return parts, next_key

    def _write_segment(self, data: SegmentData, staged: list[Path]) -> Segment:
        staging = self.path / f".tmp-{uuid.uuid4().hex}"
        staged.append(staging)
        kind = choose(self.settings.vector_index, data.size, self.settings.vector_index_min_rows)
        digest = data.write(staging, ann=kind)
        segments = self.path / _SEGMENTS
        segments.mkdir(exist_ok=True)
        final = segments / f"s{int(data.keys[0]) if data.size else 0:012d}-{uuid.uuid4().hex[:12]}"
        os.rename(staging, final)
        fsync_path(segments)
        return Segment(final, digest)

    def _publish(self, parts: list[Part], next_key: int) -> None:
        """Write the version of ``parts`` and make it current atomically."""
        version = _next_version(self.path)
        staging = self.path / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            manifest = {
                "format_version": FORMAT_VERSION,
                "version": version,
                "updated_at": _now(),
                "settings": self.settings.index_fingerprint(),
                "embedding": {"model_id": self.embeddings.model_id, "dimension": self.embeddings.dimension},
                "chunking": {"chunk_size": self.settings.chunk_size, "chunk_overlap": self.settings.chunk_overlap},
                "next_key": next_key,
                "counts": {
                    "documents": sum(int(p.live_documents.sum()) for p in parts),
                    "chunks": sum(p.live for p in parts),
                },
                "segments": [
                    {"name": p.segment.name, "sha256": p.segment.digest, "removed": sorted(p.removed)} for p in parts
                ],
            }
            write_text(staging / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
            fsync_path(staging)
            final = self.path / f"v{version:08d}"
            os.rename(staging, final)
            fsync_path(self.path)  # the new directory's name is on disk before CURRENT can name it
            pointer = self.path / "CURRENT.tmp"
            write_text(pointer, f"{final.name} {sha256_file(final / 'manifest.json')}\n")
            os.replace(pointer, self.path / "CURRENT")
            fsync_path(self.path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        with self._swap_lock:
            self._snapshot = Snapshot(version, tuple(parts), next_key, self.embeddings.dimension)
            self._pointer = _read_pointer(self.path)
        self._fresh = False
        _remove_stale(self.path, final.name, {p.segment.name for p in parts})

    def _convert(self) -> None:
        """Convert a format-1 index into segments (once: the first open after an upgrade)."""
        try:
            with self._writing():
                pointer, found = _read_current(self.path, lambda d, m: (d, m))
                version_dir, manifest = found
                if manifest["format_version"] != 1:  # another process converted it first
                    self._pointer, self._snapshot = pointer, _load_snapshot(self.path, manifest)
                    return
                log.warning(
                    "converting the index at %s (%d chunks) from format 1 to format %d; this happens once",
                    self.path, manifest["counts"]["chunks"], FORMAT_VERSION,
                )
                staged: list[Path] = []
                try:
                    segment = self._write_segment(legacy.convert(version_dir, self.embeddings.dimension), staged)
                    self._publish([Part(segment)], manifest["next_key"])
                finally:
                    for directory in staged:
                        shutil.rmtree(directory, ignore_errors=True)
        except OSError as error:
            raise IndexStoreError(
                f"the index at {self.path} is in an older format and cannot be converted in place "
                f"({error.strerror or error}); make the folder writable, or rebuild it with `rag index`"
            ) from error


def _empty(dimension: int) -> Snapshot:
    return Snapshot(0, (), 0, dimension)


def _live(parts: list[Part]):
    return [(p.segment, p.live_documents, p.live_rows) for p in parts]


def _load_snapshot(path: Path, manifest: dict[str, Any], known: dict[str, Segment] | None = None) -> Snapshot | None:
    """The version ``manifest`` describes (None for format 1), reusing the already opened ``known`` segments."""
    if manifest["format_version"] == 1:
        return None
    known = known or {}
    parts = []
    for entry in manifest["segments"]:
        segment = known.get(entry["name"])
        if segment is None or segment.digest != entry["sha256"]:
            try:
                segment = Segment(path / _SEGMENTS / entry["name"], entry["sha256"])
            except SegmentError as error:
                raise IndexCorruptError(f"{error}; rebuild it with `rag index` (index directory: {path})") from error
        parts.append(Part(segment, frozenset(entry["removed"])))
    snapshot = Snapshot(manifest["version"], tuple(parts), manifest["next_key"], manifest["embedding"]["dimension"])
    if len(snapshot.chunks) != manifest["counts"]["chunks"] or len(snapshot.documents) != manifest["counts"]["documents"]:
        raise IndexCorruptError(f"{path}: the segments do not hold what the manifest counts; rebuild it with `rag index`")
    return snapshot


def _read_pointer(path: Path) -> bytes | None:
    try:
        return (path / "CURRENT").read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:  # unreadable (permissions, a directory in its place): say so, with the fix
        raise IndexCorruptError(f"cannot read {path / 'CURRENT'} ({error.strerror}); rebuild it with `rag index`") from error


def _next_version(path: Path) -> int:
    # Above every version directory, not just the current one: a write that failed after renaming
    # its directory into place (before swapping CURRENT) leaves it behind, and reusing its name would fail.
    return max((int(p.name[1:]) for p in path.glob("v[0-9]*") if p.name[1:].isdigit()), default=0) + 1


def _remove_stale(path: Path, keep: str, segments: set[str]) -> None:
    """Delete the other versions, what interrupted writes left, and the segments ``keep`` does not list.

    Readers still holding a deleted segment keep reading it: they hold its files open or mapped."""
    for entry in path.iterdir():
        if entry.is_dir() and entry.name != keep and (entry.name.startswith(".tmp-") or entry.name[1:].isdigit()):
            shutil.rmtree(entry, ignore_errors=True)
    if (path / _SEGMENTS).is_dir():
        for entry in (path / _SEGMENTS).iterdir():
            if entry.name not in segments:
                shutil.rmtree(entry, ignore_errors=True)


def _read_current(path: Path, load: Callable[[Path, dict[str, Any]], _T]) -> tuple[bytes | None, _T]:
    """``load(version_dir, manifest)`` of the verified current version, with the CURRENT it was named by.

    A writer deletes the previous version (and segments no longer listed) right after replacing CURRENT,
    so a reader that read CURRENT just before can find its files gone: not damage, a reason to read
    CURRENT again."""
    attempts = _READ_ATTEMPTS
    while True:
        pointer = _read_pointer(path)
        try:
            version_dir, manifest = _verify(path, pointer)
            return pointer, load(version_dir, manifest)
        except (OSError, RuntimeError):  # IndexStoreError, and a file deleted under the reader
            attempts -= 1
            if not attempts or _read_pointer(path) == pointer:
                raise


def _verify(path: Path, pointer: bytes | None) -> tuple[Path, dict[str, Any]]:
    """The directory and checked manifest of the version that ``pointer``, the content of CURRENT, names."""
    rebuild = f"rebuild it with `rag index` (index directory: {path})"
    current = path / "CURRENT"
    if pointer is None:
        raise IndexNotFoundError(f"no index at {path}; build one with `rag index`")
    match = _POINTER.fullmatch(pointer)
    if match is None:
        raise IndexCorruptError(f"{current} is damaged; {rebuild}")
    name, digest = (group.decode("ascii") for group in match.groups())
    version_dir = path / name
    manifest_path = version_dir / "manifest.json"
    if not manifest_path.is_file() or sha256_file(manifest_path) != digest:
        raise IndexCorruptError(
            f"{manifest_path} is missing or does not match the checksum in {current} (either may be damaged); {rebuild}"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format_version") not in (1, FORMAT_VERSION):
        raise IndexMismatchError(path, {"format_version": (manifest.get("format_version"), FORMAT_VERSION)})
    if manifest["format_version"] == 1 and (damaged := legacy.verify(version_dir, manifest)):
        raise IndexCorruptError(f"{damaged} is missing or damaged (checksum mismatch); {rebuild}")
    return version_dir, manifest


def read_manifest(path: Path) -> tuple[dict[str, Any], Path]:
    """The verified manifest of the current version and that version's directory."""
    return _read_current(Path(path), lambda version_dir, manifest: (manifest, version_dir))[1]


def read_documents(path: Path) -> list[Document]:
    """The documents stored in an index, whatever settings (or format) it was built with (for rebuilds)."""

    def load(version_dir: Path, manifest: dict[str, Any]) -> list[Document]:
        snapshot = _load_snapshot(Path(path), manifest)
        if snapshot is None:
            return legacy.read_documents(version_dir)
        return [
            Document(d.id, d.source, d.text, d.headlines, d.name, d.pages)
            for d in (record.document for record in snapshot.documents.values())
        ]

    return _read_current(Path(path), load)[1]
