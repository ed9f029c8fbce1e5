"""The local backend: documents, chunks, FAISS vectors and BM25 in a versioned directory swapped atomically.

It persists, publishes and verifies; the rows it stores come ready-made (:class:`~rag.store.backend.Change`,
built by :mod:`rag.indexing`).

Layout of ``<index_dir>/``::

    CURRENT              "<version-dir> <sha256 of its manifest.json>", replaced atomically
    v00000007/           one complete version
        manifest.json    format, settings fingerprint, embedding model, documents, file checksums
        documents.jsonl  id, source, headlines, name to show (uploads), added time, full text, pages (OCR boxes)
        chunks.jsonl     chunk fields, integer key, BM25 tokens
        vectors.faiss    faiss.write_index of an IndexIDMap2(IndexFlatIP)
    .lock                writers hold an flock on it

A write builds a new version directory, fsyncs it, then replaces ``CURRENT``. A crash at any
point leaves ``CURRENT`` naming a complete version: the old one or the new one. No pickle.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np

from ..settings import Settings
from ..types import Chunk, Document
from .backend import Change, DocumentRecord, EmbeddingSpec
from .bm25 import BM25
from .files import fsync_path, read_jsonl, sha256_file, write_jsonl, write_text
from .vectors import FaissVectorStore

FORMAT_VERSION = 1
log = logging.getLogger(__name__)
_DATA_FILES = ("documents.jsonl", "chunks.jsonl", "vectors.faiss")
_POINTER = re.compile(rb"(v[0-9]{8,}) ([0-9a-f]{64})\n")
#: Reads of the current version before giving up when writers keep replacing it under the reader.
_READ_ATTEMPTS = 5
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


@dataclass(frozen=True)
class Snapshot:
    """One consistent state of the index; searches read a snapshot, writes publish a new one."""

    version: int
    documents: dict[str, DocumentRecord]
    chunks: list[Chunk]
    keys: np.ndarray  # int64 vector key of each chunk
    tokens: list[list[str]]
    vectors: FaissVectorStore
    lexical: BM25
    next_key: int
    row_of_key: dict[int, int] = field(repr=False)

    @classmethod
    def assemble(cls, version, documents, chunks, keys, tokens, vectors, lexical, next_key) -> Snapshot:
        keys = np.asarray(keys, dtype=np.int64)
        return cls(
            version=version,
            documents=documents,
            chunks=chunks,
            keys=keys,
            tokens=tokens,
            vectors=vectors,
            lexical=lexical,
            next_key=next_key,
            row_of_key={int(key): row for row, key in enumerate(keys)},
        )

    def chunk(self, key: int) -> Chunk:
        return self.chunks[self.row_of_key[key]]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Index:
    """The local :class:`~rag.store.backend.Store`: a FAISS + BM25 index of chunks with its documents, kept
    consistent on disk."""

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

    @staticmethod
    def read_documents(path: Path) -> list[Document]:
        return read_documents(path)

    @classmethod
    def open(cls, path: Path, settings: Settings, embeddings: EmbeddingSpec) -> Index:
        """Load and verify the current version; raise if missing, corrupt or built with other settings."""
        path = Path(path)
        expected = {**settings.index_fingerprint(), "embedding_id": embeddings.model_id}

        def load(version_dir: Path, manifest: dict[str, Any]) -> Snapshot:
            recorded = {**manifest["settings"], "embedding_id": manifest["embedding"]["model_id"]}
            differences = {k: (recorded.get(k), v) for k, v in expected.items() if recorded.get(k) != v}
            if differences:
                raise IndexMismatchError(path, differences)
            return _load_snapshot(version_dir, manifest)

        pointer, snapshot = _read_current(path, load)
        return cls(path, settings, embeddings, snapshot, pointer)

    @classmethod
    def create(cls, path: Path, settings: Settings, embeddings: EmbeddingSpec) -> Index:
        """A new, empty index in memory; the first :meth:`update` writes it (replacing any index at ``path``)."""
        empty = Snapshot.assemble(0, {}, [], [], [], FaissVectorStore(embeddings.dimension), BM25(), 0)
        index = cls(Path(path), settings, embeddings, empty)
        index._fresh = True
        return index

    def refresh(self) -> bool:
        """Reload if another process published a newer version; True when reloaded.

        Cheap when nothing changed: it compares the small ``CURRENT`` pointer only."""
        seen = self._pointer
        try:
            if self._fresh or _read_pointer(self.path) == seen:
                return False
            pointer, snapshot = _read_current(self.path, _load_snapshot)
        except (OSError, RuntimeError) as error:  # a damaged newer version: keep answering from this one
            log.warning("not reloading the index: %s", error)
            return False
        with self._swap_lock:
            if self._pointer != seen:  # a write (or another reload) in this process got there first: keep it
                return False
            self._pointer, self._snapshot = pointer, snapshot
        return True

    # ------------------------------------------------------------------ writing
    def update(self, plan: Callable[[Mapping[str, DocumentRecord]], Change]) -> Change:
        """Apply ``plan(current documents)`` and publish it as one new version; the change it returned.

        ``plan`` runs under the write lock with the latest published documents (another process may have
        written since this one loaded), so what it decides to add or replace is decided against them.
        Nothing is written when the change is empty (unless this index is new: then its first version is)."""
        with self._writing():
            self._reload_if_stale()
            old = self._snapshot
            change = plan(MappingProxyType(old.documents))
            if not change and not self._fresh:
                return change
            self._publish(_apply(old, change))
        return change

    def remove(self, doc_ids: Iterable[str]) -> list[str]:
        """Delete documents with their vectors and BM25 entries in one new version; the ids that were present."""
        wanted = set(doc_ids)
        change = self.update(lambda documents: Change(remove=wanted & set(documents)))
        return sorted(change.remove)

    def close(self) -> None:
        """Nothing to let go of: the files are read whole on open."""

    @contextmanager
    def _writing(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with self._write_lock, open(self.path / ".lock", "a+") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _reload_if_stale(self) -> None:
        if not self._fresh and Index.exists(self.path):
            self.refresh()

    def _publish(self, snapshot: Snapshot) -> None:
        """Write ``snapshot`` as the next version and make it current atomically."""
        version = _next_version(self.path)
        staging = self.path / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            write_jsonl(
                staging / "documents.jsonl",
                (
                    {
                        "id": r.document.id,
                        "source": r.document.source,
                        "headlines": list(r.document.headlines),
                        **({"name": r.document.name} if r.document.name else {}),
                        **({"pages": [asdict(p) for p in r.document.pages]} if r.document.pages else {}),
                        "added_at": r.added_at,
                        **({"updated": True} if r.updated else {}),
                        "chunk_ids": list(r.chunk_ids),
                        "text": r.document.text,
                    }
                    for r in snapshot.documents.values()
                ),
            )
            write_jsonl(
                staging / "chunks.jsonl",
                ({"key": int(key), **chunk.to_dict(), "tokens": tokens} for chunk, key, tokens in zip(snapshot.chunks, snapshot.keys, snapshot.tokens)),
            )
            snapshot.vectors.save(staging / "vectors.faiss")
            fsync_path(staging / "vectors.faiss")
            manifest = {
                "format_version": FORMAT_VERSION,
                "version": version,
                "updated_at": _now(),
                "settings": self.settings.index_fingerprint(),
                "embedding": {"model_id": self.embeddings.model_id, "dimension": self.embeddings.dimension},
                "chunking": {"chunk_size": self.settings.chunk_size, "chunk_overlap": self.settings.chunk_overlap},
                "next_key": snapshot.next_key,
                "counts": {"documents": len(snapshot.documents), "chunks": len(snapshot.chunks)},
                "documents": {
                    doc_id: {"source": r.document.source, "chunks": len(r.chunk_ids), "added_at": r.added_at}
                    for doc_id, r in snapshot.documents.items()
                },
                "files": {name: sha256_file(staging / name) for name in _DATA_FILES},
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
            self._snapshot = replace(snapshot, version=version)
            self._pointer = _read_pointer(self.path)
        self._fresh = False
        _remove_stale_versions(self.path, keep=final.name)


def _apply(snapshot: Snapshot, change: Change) -> Snapshot:
    """``snapshot`` less the documents ``change.remove`` and with ``change.add``, on copies of its stores."""
    gone = change.remove
    keep = [row for row, chunk in enumerate(snapshot.chunks) if chunk.doc_id not in gone]
    gone_keys = np.array([key for key, c in zip(snapshot.keys, snapshot.chunks) if c.doc_id in gone], dtype=np.int64)
    records = {doc_id: record for doc_id, record in snapshot.documents.items() if doc_id not in gone}
    chunks = [snapshot.chunks[row] for row in keep]
    keys = [snapshot.keys[keep] if keep else np.zeros(0, dtype=np.int64)]
    tokens = [snapshot.tokens[row] for row in keep]
    vectors, lexical = snapshot.vectors.copy(), snapshot.lexical.copy()
    if len(gone_keys):
        vectors.remove(gone_keys)
        lexical.remove(gone_keys)
    next_key = snapshot.next_key
    for addition in change.add:
        added = np.arange(next_key, next_key + len(addition.chunks), dtype=np.int64)
        next_key += len(added)
        records[addition.document.id] = DocumentRecord(
            addition.document, _now(), tuple(c.id for c in addition.chunks), addition.updated
        )
        chunks.extend(addition.chunks)
        keys.append(added)
        tokens.extend(addition.tokens)
        if len(added):
            vectors.add(added, addition.vectors)
            lexical.add(added, addition.tokens)
    return Snapshot.assemble(snapshot.version, records, chunks, np.concatenate(keys), tokens, vectors, lexical, next_key)


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


def _remove_stale_versions(path: Path, keep: str) -> None:
    for entry in path.iterdir():
        if entry.is_dir() and entry.name != keep and (entry.name.startswith(".tmp-") or entry.name[1:].isdigit()):
            shutil.rmtree(entry, ignore_errors=True)


def _read_current(path: Path, load: Callable[[Path, dict[str, Any]], _T]) -> tuple[bytes | None, _T]:
    """``load(version_dir, manifest)`` of the verified current version, with the CURRENT it was named by.

    A writer deletes the previous version right after replacing CURRENT, so a reader that read CURRENT
    just before can find that version's files gone: not damage, a reason to read CURRENT again."""
    attempts = _READ_ATTEMPTS
    while True:
        pointer = _read_pointer(path)
        try:
            version_dir, manifest = _verify(path, pointer)
            return pointer, load(version_dir, manifest)
        except (OSError, RuntimeError):  # IndexStoreError, and faiss failing to open a deleted file, are RuntimeErrors
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
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(path, {"format_version": (manifest.get("format_version"), FORMAT_VERSION)})
    for name, expected in manifest["files"].items():
        file = version_dir / name
        if not file.is_file() or sha256_file(file) != expected:
            raise IndexCorruptError(f"{file} is missing or damaged (checksum mismatch); {rebuild}")
    return version_dir, manifest


def read_manifest(path: Path) -> tuple[dict[str, Any], Path]:
    """The verified manifest of the current version and that version's directory."""
    return _read_current(Path(path), lambda version_dir, manifest: (manifest, version_dir))[1]


def read_documents(path: Path) -> list[Document]:
    """The documents stored in an index, whatever settings it was built with (for rebuilds)."""

    def load(version_dir: Path, manifest: dict[str, Any]) -> list[Document]:
        return [
            Document(row["id"], row["source"], row["text"], tuple(row["headlines"]), row.get("name", ""), row.get("pages", ()))
            for row in read_jsonl(version_dir / "documents.jsonl")
        ]

    return _read_current(Path(path), load)[1]


def _load_snapshot(version_dir: Path, manifest: dict[str, Any]) -> Snapshot:
    documents: dict[str, DocumentRecord] = {}
    for row in read_jsonl(version_dir / "documents.jsonl"):
        document = Document(
            row["id"], row["source"], row["text"], tuple(row["headlines"]), row.get("name", ""), row.get("pages", ())
        )
        updated = row.get("updated", False)  # absent in versions written before it was recorded
        documents[document.id] = DocumentRecord(document, row["added_at"], tuple(row["chunk_ids"]), updated)
    chunks, keys, tokens = [], [], []
    for row in read_jsonl(version_dir / "chunks.jsonl"):
        keys.append(row.pop("key"))
        tokens.append(row.pop("tokens"))
        chunks.append(Chunk(**row))
    vectors = FaissVectorStore.load(version_dir / "vectors.faiss")
    if len(vectors) != len(chunks):
        raise IndexCorruptError(f"{version_dir}: {len(vectors)} vectors for {len(chunks)} chunks; rebuild it with `rag index`")
    return Snapshot.assemble(
        manifest["version"], documents, chunks, keys, tokens, vectors, BM25(tokens, keys), manifest["next_key"]
    )

