"""A persistent cache of passage vectors, shared by every knowledge base in the data folder.

A vector is stored under ``sha256(model id, exact embedded text)``, so a rebuild whose embedding model
and embedded text are unchanged (for example after a change of BM25 or search settings, or the same
document in a second knowledge base) embeds nothing again.

One SQLite file (``<data_dir>/embedding-cache.sqlite3``): float32 bytes, no pickle. Each row carries a
checksum of its key, model and vector, so a damaged row is never returned (it counts as a miss and is
overwritten); SQLite's journal makes each batch of writes all or nothing, so a torn write leaves the
rows before it. A file that is not a readable SQLite database is set aside (``.damaged``) and a new one
started. The file is bounded: past ``max_bytes`` the least recently used rows are dropped.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["CACHE_FILE", "EmbeddingCache", "cache_key"]

log = logging.getLogger(__name__)

CACHE_FILE = "embedding-cache.sqlite3"
#: Bytes one row takes besides its vector (key, checksum, model, SQLite overhead), for the size bound.
_ROW_OVERHEAD = 120
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    key BLOB PRIMARY KEY,        -- sha256(model id, text)
    model TEXT NOT NULL,
    vector BLOB NOT NULL,        -- float32, little-endian
    checksum BLOB NOT NULL,      -- sha256(key, model, vector)[:16]
    used REAL NOT NULL           -- last read or write (unix time), for eviction
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_used ON vectors (used);
"""
_BATCH = 500  # keys per SELECT (below SQLite's variable limit)


def cache_key(model_id: str, text: str) -> bytes:
    return hashlib.sha256(model_id.encode() + b"\0" + text.encode("utf-8", "surrogatepass")).digest()


def _checksum(key: bytes, model_id: str, vector: bytes) -> bytes:
    return hashlib.sha256(key + model_id.encode() + b"\0" + vector).digest()[:16]


class EmbeddingCache:
    """Vectors of ``(model id, text)`` pairs in one SQLite file; safe for several processes at once."""

    def __init__(self, path: str | Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._ready = False

    def get(self, model_id: str, texts: Sequence[str], dimension: int) -> list[np.ndarray | None]:
        """The cached vector of each text, or ``None`` where it is missing or damaged."""
        keys = [cache_key(model_id, text) for text in texts]
        found: dict[bytes, np.ndarray] = {}
        connection = self._connect()
        if connection is None:
            return [None] * len(texts)
        try:
            with connection:
                for start in range(0, len(keys), _BATCH):
                    batch = keys[start : start + _BATCH]
                    rows = connection.execute(
                        f"SELECT key, model, vector, checksum FROM vectors WHERE key IN ({','.join('?' * len(batch))})",
                        batch,
                    ).fetchall()
                    for key, model, vector, checksum in rows:
                        if model == model_id and len(vector) == 4 * dimension and _checksum(key, model, vector) == checksum:
                            found[key] = np.frombuffer(vector, dtype="<f4").astype(np.float32)
                        else:
                            log.warning("embedding cache: a damaged entry in %s is ignored", self.path)
                hits = list(found)
                for start in range(0, len(hits), _BATCH):
                    batch = hits[start : start + _BATCH]
                    connection.execute(
                        f"UPDATE vectors SET used = ? WHERE key IN ({','.join('?' * len(batch))})", [time.time(), *batch]
                    )
        except sqlite3.DatabaseError as error:
            self._damaged(error)
            return [None] * len(texts)
        finally:
            connection.close()
        return [found.get(key) for key in keys]

    def put(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` (one row per text) in one transaction, then evict past the size bound."""
        if not len(texts) or self.max_bytes <= 0:
            return
        now = time.time()
        rows = []
        for text, vector in zip(texts, np.asarray(vectors, dtype="<f4")):
            key, data = cache_key(model_id, text), vector.tobytes()
            rows.append((key, model_id, data, _checksum(key, model_id, data), now))
        connection = self._connect()
        if connection is None:
            return
        try:
            with connection:
                connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
                self._evict(connection, row_bytes=len(rows[0][2]) + _ROW_OVERHEAD)
        except sqlite3.DatabaseError as error:
            self._damaged(error)
        finally:
            connection.close()

    def _evict(self, connection: sqlite3.Connection, row_bytes: int) -> None:
        (count,) = connection.execute("SELECT count(*) FROM vectors").fetchone()
        excess = count - self.max_bytes // row_bytes
        if excess > 0:
            # A tenth more than needed, so that a full cache does not evict on every write.
            drop = excess + count // 10
            connection.execute(
                "DELETE FROM vectors WHERE key IN (SELECT key FROM vectors ORDER BY used LIMIT ?)", (drop,)
            )

    def _connect(self) -> sqlite3.Connection | None:
        """An open connection with the table in place; ``None`` when the folder cannot hold the file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30)
        except (OSError, sqlite3.Error) as error:
            log.warning("embedding cache %s unavailable (%s); embedding without it", self.path, error)
            return None
        if self._ready:
            return connection
        try:
            connection.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
            connection.executescript(_SCHEMA)
            self._ready = True
            return connection
        except sqlite3.DatabaseError as error:
            connection.close()
            self._damaged(error)
            return self._connect_fresh()

    def _connect_fresh(self) -> sqlite3.Connection | None:
        try:
            connection = sqlite3.connect(self.path, timeout=30)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
        except sqlite3.Error as error:
            log.warning("embedding cache %s unavailable (%s); embedding without it", self.path, error)
            return None
        self._ready = True
        return connection

    def _damaged(self, error: Exception) -> None:
        """Set a file SQLite cannot read aside (kept for inspection) so that the next use starts a new one."""
        log.warning("embedding cache %s is damaged (%s); starting a new one", self.path, error)
        self._ready = False
        if not isinstance(error, sqlite3.OperationalError) or "locked" not in str(error):
            for suffix in ("", "-wal", "-shm"):
                part = self.path.with_name(self.path.name + suffix)
                if part.exists():
                    part.replace(part.with_name(part.name + ".damaged"))
