"""The Milvus backend: chunks, dense vectors and BM25 kept in Milvus (a server by URI, or milvus-lite in a file).

Per knowledge base, with the collection-name prefix recorded in ``<kb folder>/milvus.json``:

    <prefix>_records        published records: which version is live, with its counts and settings
    <prefix>_chunks_<epoch> one row per chunk: text, our BM25 terms (analysed by Milvus into a sparse
                            BM25 vector), the dense vector, doc id, source, title, offsets and page boxes
    <prefix>_docs_<epoch>   documents (full text and record), as JSON in pieces of at most 60,000 bytes

Milvus has no transactions, so a write is published the way a log is: the new rows carry the next version
number (``gen``) and stay invisible to readers, whose every query filters ``gen <= <published version>``
and leaves out the documents the published version removed; once the rows are stored, one record row
publishes the version, and only then are the removed rows deleted. A writer killed at any point leaves the
previous record live and searchable; the next write first deletes what the killed one left. A rebuild
(every document replaced) writes new collections (the next *epoch*) and drops the old ones after publishing.

Writers are serialised by an flock on the knowledge base's folder: one machine writes. milvus-lite itself
serves one process at a time (a second one is refused with a clear message): share a knowledge base between
processes through a Milvus server (docs/milvus.md).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence, ValuesView
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..settings import Settings
from ..types import Chunk, Document
from .backend import Change, DocumentRecord, DocumentRecords, EmbeddingSpec, key_tail, source_key, source_tail
from .files import writer_lock
from .index import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexStoreError

__all__ = ["MilvusStore"]

FORMAT_VERSION = 1
#: In the knowledge base's folder: where its collections are (URI and name prefix), once first published.
MARKER = "milvus.json"
#: The milvus-lite data directory inside the knowledge base's folder when no URI is set.
LITE_FILE = "milvus.db"
#: Milvus VARCHAR fields hold at most 65,535 bytes: longer JSON is stored in pieces of this many bytes.
_PIECE_BYTES = 60_000
_MAX_VARCHAR = 65_535
_INSERT_BATCH = 256
_ITERATOR_BATCH = 1000
#: The most rows one query returns (Milvus's default result window).
_QUERY_WINDOW = 16_384
#: Chunks kept in a view's cache (filled by searches, so that a hit's chunk needs no second query).
_CHUNK_CACHE = 20_000
_NON_WORD = re.compile(r"\W")
_CHUNK_FIELDS = ["key", "gen", "doc_id", "source", "title", "text", "meta"]
#: What reading a document's record takes: its pieces and where each goes.
_RECORD_FIELDS = ["doc_id", "gen", "seq", "part", "parts", "data"]
#: The documents' field of source tails (collections made before it was added lack it: found by a scan).
_TAIL = "source_tail"
#: Source tails asked for in one query.
_TAILS_PER_QUERY = 500
log = logging.getLogger(__name__)


def _term(token: str) -> str:
    """A token as the engine's analyser sees it: one word of ``\\w`` characters.

    milvus-lite's analyser splits on non-word characters and a server's whitespace analyser on spaces; with
    those characters made ``_`` ("3.5" → "3_5") both keep each of our tokens whole, so their BM25 (and the
    TEXT_MATCH counts behind :meth:`_Lexical.idf`) works on exactly our tokens."""
    return _NON_WORD.sub("_", token)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _quoted(values: Iterable[str]) -> str:
    """A list literal for a filter expression (Milvus reads ``\\"`` and ``\\\\`` but not ``\\u`` escapes)."""
    return "[" + ", ".join(json.dumps(value, ensure_ascii=False) for value in values) + "]"


def _pieces(text: str) -> list[str]:
    """``text`` in pieces of at most ``_PIECE_BYTES`` UTF-8 bytes (never splitting a character)."""
    data = text.encode("utf-8")
    pieces, start = [], 0
    while start < len(data) or not pieces:
        end = min(start + _PIECE_BYTES, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # back off to a character boundary
            end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


# ---------------------------------------------------------------------------- connecting
def _pymilvus():
    try:
        import pymilvus
    except ImportError as error:
        raise IndexStoreError(
            "the Milvus backend (RAG_STORE=milvus) needs pymilvus, and milvus-lite for a local file: "
            "pip install 'rag-news-zh[milvus]'"
        ) from error
    return pymilvus


_lite_lock = threading.Lock()
_lite_users: dict[str, int] = {}


def _lite_failure(path: str) -> IndexStoreError:
    """Why milvus-lite would not start on ``path``: held by another process, or unreadable."""
    from milvus_lite import DataDirLockedError, MilvusLite

    try:
        MilvusLite(path).close()
    except DataDirLockedError:
        return IndexStoreError(
            f"the knowledge base's milvus-lite file {path} is open in another process; milvus-lite serves one "
            "process at a time (stop the other one, or share the knowledge base through a Milvus server: "
            "RAG_MILVUS_URI, see docs/milvus.md)"
        )
    except Exception as error:  # noqa: BLE001 - whatever it is, the file cannot be used
        return IndexCorruptError(f"the milvus-lite file {path} cannot be opened ({error}); rebuild it with `rag index`")
    return IndexStoreError(f"milvus-lite did not start on {path} (see the log)")


def _drop_torn_index_files(path: str) -> None:
    """Delete the index files of a milvus-lite knowledge base that a killed process left torn.

    milvus-lite (3.2) writes a segment's index file in place (open, then ``np.save``) and loads the file
    it finds without a check, so one left empty by a SIGKILL made every later load of that collection
    fail ("No data left in file"). The files are derived from the segment's rows: milvus-lite builds a
    missing one again. Run before the server starts (while it runs, another process holds the file)."""
    for file in Path(path).glob("collections/*/partitions/*/indexes/*"):
        if file.suffix in (".idx", ".sidx") and not _whole_index_file(file):
            log.warning("milvus-lite index file %s is torn (a killed writer); it will be rebuilt", file)
            file.unlink(missing_ok=True)


def _whole_index_file(file: Path) -> bool:
    """False for an empty file, or a NumPy one (FLAT indexes) shorter than its header says; other formats
    are not judged."""
    size = file.stat().st_size
    if size == 0:
        return False
    with file.open("rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            return True
        handle.seek(0)
        try:
            version = np.lib.format.read_magic(handle)
            readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in readers:
                return True
            shape, _, dtype = readers[version](handle)
        except (ValueError, OSError, SyntaxError):
            return False
        return size >= handle.tell() + math.prod(shape) * dtype.itemsize


class _Connection:
    """A MilvusClient; for milvus-lite also this process's share of the in-process server on the file."""

    def __init__(self, uri: str, token: str) -> None:
        pymilvus = _pymilvus()
        self.uri, self.lite = uri, uri.endswith(".db")
        address = uri
        if self.lite:
            try:
                from milvus_lite import server_manager_instance
            except ImportError as error:
                raise IndexStoreError(
                    f"a local Milvus file ({uri}) needs milvus-lite: pip install 'rag-news-zh[milvus]'"
                ) from error
            # milvus-lite keeps no server timestamps: pymilvus warns on every iterator that it uses its own.
            logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
            self.lite_path = os.path.abspath(uri)
            Path(self.lite_path).parent.mkdir(parents=True, exist_ok=True)
            with _lite_lock:
                if self.lite_path not in _lite_users:  # this process starts the server
                    _drop_torn_index_files(self.lite_path)
                address = server_manager_instance.start_and_get_uri(self.lite_path)
                if address is None:
                    raise _lite_failure(self.lite_path)
                _lite_users[self.lite_path] = _lite_users.get(self.lite_path, 0) + 1
        # The in-process lite server allows no idle keep-alive pings (it answers them with GOAWAY, "too_many_pings").
        options = {"grpc_options": {"grpc.keepalive_permit_without_calls": False}} if self.lite else {}
        try:
            self.client = pymilvus.MilvusClient(uri=address, token=token, **options)
        except Exception as error:
            self._release()
            raise IndexStoreError(f"cannot connect to Milvus at {uri}: {error}") from error
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.client.close()
        self._release()

    def _release(self) -> None:
        if not self.lite:
            return
        from milvus_lite import server_manager_instance

        with _lite_lock:
            _lite_users[self.lite_path] -= 1
            if not _lite_users[self.lite_path]:
                del _lite_users[self.lite_path]
                server_manager_instance.release_server(self.lite_path)  # and its lock on the file


@contextmanager
def _milvus_errors(what: str) -> Iterator[None]:
    """Milvus failures as our errors (the faces show an IndexStoreError's message)."""
    try:
        yield
    except IndexStoreError:
        raise
    except Exception as error:
        if type(error).__module__.startswith(("pymilvus", "grpc")):
            raise IndexStoreError(f"Milvus failed while {what}: {error}") from error
        raise


# ---------------------------------------------------------------------------- where a knowledge base lives
@dataclass(frozen=True)
class _Location:
    uri: str  # as MilvusClient takes it: a server URL, or a milvus-lite file (".db")
    prefix: str  # of the collection names

    @staticmethod
    def uri_for(path: Path, settings: Settings) -> str:
        return settings.milvus_uri or str(Path(path).absolute() / LITE_FILE)

    @staticmethod
    def marker(path: Path) -> dict[str, Any] | None:
        try:
            return json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise IndexCorruptError(
                f"{Path(path) / MARKER} is damaged ({error}); rebuild it with `rag index`"
            ) from error

    @classmethod
    def recorded(cls, path: Path) -> _Location | None:
        """Where the knowledge base at ``path`` was published (None: never)."""
        marker = cls.marker(path)
        if marker is None or not marker.get("published"):
            return None
        return cls(marker.get("uri") or str(Path(path).absolute() / LITE_FILE), marker["prefix"])

    def mark(self, path: Path, published: bool) -> None:
        """Record this location in the folder: before the first write (so that a rebuild finds, and replaces,
        what a killed one left) and, marked published, after it. A lite file inside the folder is recorded as
        such, so that the folder can be moved."""
        inside = self.uri == str(Path(path).absolute() / LITE_FILE)
        data = {"uri": None if inside else self.uri, "prefix": self.prefix, "published": published}
        try:
            if self.marker(path) == data:
                return
        except IndexCorruptError:
            pass
        temporary = Path(path) / f"{MARKER}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(data, ensure_ascii=False))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, Path(path) / MARKER)


def _same_uri(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b) if a.endswith(".db") and b.endswith(".db") else a == b


def _new_prefix(settings: Settings) -> str:
    """Collection names allow letters, digits and ``_``: the knowledge base's name if it fits, and a random part
    (knowledge bases of several machines or folders can share one server)."""
    name = settings.kb if re.fullmatch(r"[A-Za-z0-9_]{1,32}", settings.kb) else "kb"
    return f"rag_{name}_{uuid.uuid4().hex[:8]}"


def _token(settings: Settings | None = None) -> str:
    """The server's token: from the settings (RAG_MILVUS_TOKEN), never written anywhere by us."""
    if settings is not None:
        return settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    return os.environ.get("RAG_MILVUS_TOKEN", "")


# ---------------------------------------------------------------------------- collections
@dataclass(frozen=True)
class _Names:
    prefix: str

    @property
    def records(self) -> str:
        return f"{self.prefix}_records"

    def chunks(self, epoch: int) -> str:
        return f"{self.prefix}_chunks_{epoch}"

    def docs(self, epoch: int) -> str:
        return f"{self.prefix}_docs_{epoch}"

    def epochs(self, client) -> set[int]:
        pattern = re.compile(rf"{re.escape(self.prefix)}_(?:chunks|docs)_([0-9]+)")
        return {int(m.group(1)) for name in client.list_collections() if (m := pattern.fullmatch(name))}


def _analyzer(lite: bool) -> dict[str, Any]:
    # Both keep each of our space-separated terms whole (see _term); milvus-lite has no whitespace tokenizer,
    # and a server's "standard" one would cut Chinese into single characters.
    return {"tokenizer": "standard"} if lite else {"tokenizer": "whitespace"}


def _blob_schema(pymilvus, key: str):
    """Records and documents: JSON in pieces, keyed by ``rid``; a tiny vector because Milvus requires one.
    Documents also carry their source's :func:`source_tail`, so that a write finds the stored versions of
    its files without reading every document."""
    DataType = pymilvus.DataType
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("rid", DataType.VARCHAR, is_primary=True, max_length=512)
    schema.add_field(key, DataType.VARCHAR, max_length=256)
    if key == "doc_id":
        schema.add_field(_TAIL, DataType.VARCHAR, max_length=_MAX_VARCHAR)
    schema.add_field("gen", DataType.INT64)
    schema.add_field("seq", DataType.INT64)
    schema.add_field("part", DataType.INT64)
    schema.add_field("parts", DataType.INT64)
    schema.add_field("data", DataType.VARCHAR, max_length=_MAX_VARCHAR)
    schema.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
    return schema


def _create_blobs(client, pymilvus, name: str, key: str) -> None:
    index = client.prepare_index_params()
    index.add_index("unused", index_type="FLAT", metric_type="L2")
    _create(client, name, _blob_schema(pymilvus, key), index)


def _create_chunks(client, pymilvus, name: str, dimension: int, lite: bool) -> None:
    DataType = pymilvus.DataType
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.INT64, is_primary=True)
    schema.add_field("gen", DataType.INT64)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=256)
    schema.add_field("source", DataType.VARCHAR, max_length=_MAX_VARCHAR)
    schema.add_field("title", DataType.VARCHAR, max_length=_MAX_VARCHAR)
    schema.add_field("text", DataType.VARCHAR, max_length=_MAX_VARCHAR)
    schema.add_field(
        "terms",
        DataType.VARCHAR,
        max_length=_MAX_VARCHAR,
        enable_analyzer=True,
        enable_match=True,
        analyzer_params=_analyzer(lite),
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("meta", DataType.JSON)
    schema.add_function(
        pymilvus.Function(
            name="bm25",
            function_type=pymilvus.FunctionType.BM25,
            input_field_names=["terms"],
            output_field_names=["sparse"],
        )
    )
    index = client.prepare_index_params()
    # Exact search in a file (results match the local FAISS flat index); the server picks its ANN index.
    index.add_index("vector", index_type="FLAT" if lite else "AUTOINDEX", metric_type="IP")
    index.add_index(
        "sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": 1.2, "bm25_b": 0.75}
    )
    _create(client, name, schema, index)


def _create(client, name: str, schema, index) -> None:
    # Indexed without pymilvus's wait for each index (it polls every 0.5 s); loading waits for what it needs.
    client.create_collection(name, schema=schema, consistency_level="Strong")
    client.create_index(name, index, sync=False)
    client.load_collection(name)


def _loaded(client, name: str) -> None:
    """Collections are searchable once loaded; those of another process's making (or before a restart) are not."""
    state = client.get_load_state(name)["state"]
    if getattr(state, "name", str(state)) != "Loaded":
        client.load_collection(name)


def _query_few(client, collection: str, filter: str, fields: list[str]) -> Iterator[dict[str, Any]]:
    """The rows of a filter that matches few: one query (~13 ms at 30,000 documents in milvus-lite, where an
    iterator takes ~170 ms to set up), and the iterator only if they fill Milvus's result window."""
    rows = client.query(collection, filter=filter, output_fields=fields, limit=_QUERY_WINDOW)
    yield from rows if len(rows) < _QUERY_WINDOW else _query_all(client, collection, filter, fields)


def _query_all(client, collection: str, filter: str, fields: list[str]) -> Iterator[dict[str, Any]]:
    iterator = client.query_iterator(collection, batch_size=_ITERATOR_BATCH, filter=filter, output_fields=fields)
    try:
        while batch := iterator.next():
            yield from batch
    finally:
        iterator.close()


def _count(client, collection: str, filter: str) -> int:
    rows = client.query(collection, filter=filter, output_fields=["count(*)"])
    return int(rows[0]["count(*)"]) if rows else 0


def _chunk_row(key: int, gen: int, chunk: Chunk, tokens: list[str], vector: np.ndarray) -> dict[str, Any]:
    meta = {
        "id": chunk.id,
        "clean": chunk.clean,
        "normalized": chunk.normalized,
        "start": chunk.start,
        "end": chunk.end,
        "line_start": chunk.line_start,
        "line_end": chunk.line_end,
        "page": chunk.page,
        "boxes": [asdict(box) for box in chunk.boxes],
    }
    row = {
        "key": key,
        "gen": gen,
        "doc_id": chunk.doc_id,
        "source": chunk.source,
        "title": chunk.title,
        "text": chunk.text,
        "terms": " ".join(_term(t) for t in tokens),
        "vector": vector.tolist(),
        "meta": meta,
    }
    for field in ("source", "title", "text", "terms"):
        if len(row[field].encode("utf-8")) > _MAX_VARCHAR:
            raise IndexStoreError(
                f"a chunk of {chunk.source} has a {field} of more than {_MAX_VARCHAR} bytes, the most a Milvus text "
                "field holds; use a smaller chunk_size"
            )
    if len(json.dumps(meta, ensure_ascii=False).encode("utf-8")) > _MAX_VARCHAR:
        raise IndexStoreError(f"a chunk of {chunk.source} is too large for Milvus; use a smaller chunk_size")
    return row


def _chunk_of(row: dict[str, Any]) -> Chunk:
    meta = row["meta"]
    return Chunk(
        id=meta["id"],
        doc_id=row["doc_id"],
        source=row["source"],
        text=row["text"],
        clean=meta["clean"],
        normalized=meta["normalized"],
        title=row["title"],
        start=meta["start"],
        end=meta["end"],
        line_start=meta["line_start"],
        line_end=meta["line_end"],
        page=meta["page"],
        boxes=tuple(meta["boxes"]),
    )


def _record_json(record: DocumentRecord) -> str:
    document = record.document
    return json.dumps(
        {
            "id": document.id,
            "source": document.source,
            "headlines": list(document.headlines),
            "name": document.name,
            "pages": [asdict(p) for p in document.pages],
            "text": document.text,
            "added_at": record.added_at,
            "updated": record.updated,
            "chunk_ids": list(record.chunk_ids),
        },
        ensure_ascii=False,
    )


def _record_of(data: str) -> DocumentRecord:
    row = json.loads(data)
    document = Document(
        row["id"], row["source"], row["text"], tuple(row["headlines"]), row["name"], tuple(row["pages"])
    )
    return DocumentRecord(document, row["added_at"], tuple(row["chunk_ids"]), row["updated"])


def _blob_rows(key_field: str, key: str, gen: int, seq: int, data: str, **fields: str) -> list[dict[str, Any]]:
    pieces = _pieces(data)
    return [
        {
            "rid": f"{key}/{gen}/{part}",
            key_field: key,
            "gen": gen,
            "seq": seq,
            "part": part,
            "parts": len(pieces),
            "data": piece,
            "unused": [0.0, 0.0],
            **fields,
        }
        for part, piece in enumerate(pieces)
    ]


def _assemble(rows: Iterable[dict[str, Any]], key_field: str) -> Iterator[tuple[tuple[int, int], str, str]]:
    """``((gen, seq), key, data)`` of each complete blob among ``rows`` (pieces of one blob in any order)."""
    groups: dict[tuple[str, int], dict[int, dict[str, Any]]] = {}
    for row in rows:
        group = groups.setdefault((row[key_field], row["gen"]), {})
        group[row["part"]] = row
        if len(group) == row["parts"]:
            del groups[(row[key_field], row["gen"])]
            yield (row["gen"], row["seq"]), row[key_field], "".join(group[p]["data"] for p in range(row["parts"]))


# ---------------------------------------------------------------------------- a published version, searched
class _View:
    """One published version: every query filters to its rows (see the module's docstring)."""

    def __init__(self, client, names: _Names, record: dict[str, Any] | None, dimension: int) -> None:
        self.client, self.names, self.record = client, names, record
        self.version = record["version"] if record else 0
        epoch = record["epoch"] if record else 0
        self.chunk_collection, self.doc_collection = names.chunks(epoch), names.docs(epoch)
        if record:
            with _milvus_errors("loading the collections"):
                for collection in (self.chunk_collection, self.doc_collection):
                    if client.has_collection(collection):  # a missing one: opening says so (_verify)
                        _loaded(client, collection)
        gone = record.get("gone", []) if record else []
        self.filter = f"gen <= {self.version}"
        if gone:  # removed by this version, and maybe not yet deleted
            self.filter += f" and not (gen < {self.version} and doc_id in {_quoted(gone)})"
        self._cache: OrderedDict[int, Chunk] = OrderedDict()
        self._lock = threading.Lock()
        self.documents = _Documents(self)
        self.chunks = _Chunks(self)
        self.vectors = _Vectors(self, dimension)
        self.lexical = _Lexical(self)

    @property
    def empty(self) -> bool:
        return self.record is None

    @cached_property
    def tails(self) -> bool:
        """Whether the documents carry their source tails (collections made since they were added do)."""
        if self.empty:
            return False
        with _milvus_errors("reading the documents' fields"):
            fields = self.client.describe_collection(self.doc_collection)["fields"]
        return any(field["name"] == _TAIL for field in fields)

    def remember(self, rows: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            for row in rows:
                self._cache[row["key"]] = _chunk_of(row)
                self._cache.move_to_end(row["key"])
            while len(self._cache) > _CHUNK_CACHE:
                self._cache.popitem(last=False)

    def chunk(self, key: int) -> Chunk:
        key = int(key)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        if not self.empty:
            with _milvus_errors("reading a chunk"):
                rows = self.client.query(
                    self.chunk_collection, filter=f"key == {key} and {self.filter}", output_fields=_CHUNK_FIELDS
                )
            if rows:
                self.remember(rows)
                return _chunk_of(rows[0])
        raise KeyError(key)


class _Documents(DocumentRecords):
    """The view's documents, fetched when asked for; ``values()`` and ``items()`` read them in batches."""

    _CACHE = 256

    def __init__(self, view: _View) -> None:
        self.view = view
        self._ids: list[str] | None = None
        self._id_set: frozenset[str] | None = None
        self._cache: OrderedDict[str, DocumentRecord] = OrderedDict()

    def ids(self) -> list[str]:
        if self._ids is None:
            rows = [] if self.view.empty else self._rows(f"part == 0 and {self.view.filter}", ["doc_id", "gen", "seq"])
            self._ids = [row["doc_id"] for row in sorted(rows, key=lambda r: (r["gen"], r["seq"]))]
        return self._ids

    def _rows(self, filter: str, fields: list[str], few: bool = False) -> Iterator[dict[str, Any]]:
        query = _query_few if few else _query_all
        with _milvus_errors("reading documents"):
            yield from query(self.view.client, self.view.doc_collection, filter, fields)

    def __len__(self) -> int:
        return self.view.record["counts"]["documents"] if self.view.record else 0

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def __contains__(self, doc_id: object) -> bool:
        if self._id_set is None:
            self._id_set = frozenset(self.ids())
        return doc_id in self._id_set

    def __getitem__(self, doc_id: str) -> DocumentRecord:
        if doc_id in self._cache:
            return self._cache[doc_id]
        if self.view.empty:
            raise KeyError(doc_id)
        rows = self._rows(f"doc_id == {json.dumps(doc_id)} and {self.view.filter}", _RECORD_FIELDS, few=True)
        for _, _, data in _assemble(rows, "doc_id"):
            record = _record_of(data)
            self._cache[doc_id] = record
            if len(self._cache) > self._CACHE:
                self._cache.popitem(last=False)
            return record
        raise KeyError(doc_id)

    def by_source(self, keys: Collection[str]) -> dict[str, str]:
        """Looked up by the keys' tails (the file names), then checked whole: only those documents are read."""
        if not self.view.tails:
            return super().by_source(keys)
        wanted = set(keys)
        tails = sorted({key_tail(key) for key in wanted} | {""})
        found = {}
        for start in range(0, len(tails), _TAILS_PER_QUERY):
            batch = _quoted(tails[start : start + _TAILS_PER_QUERY])
            rows = self._rows(f"{_TAIL} in {batch} and {self.view.filter}", _RECORD_FIELDS, few=True)
            for _, doc_id, data in sorted(_assemble(rows, "doc_id")):
                document = _record_of(data).document
                key = source_key(document.source, document.name)
                if key in wanted:
                    found[key] = doc_id
        return found

    def all(self) -> list[tuple[str, DocumentRecord]]:
        if self.view.empty:
            return []
        rows = self._rows(self.view.filter, _RECORD_FIELDS)
        return [(doc_id, _record_of(data)) for _, doc_id, data in sorted(_assemble(rows, "doc_id"))]

    def values(self) -> ValuesView[DocumentRecord]:
        return _Batched(self)

    def items(self):  # type: ignore[override]
        return self.all()


class _Batched(ValuesView):
    def __iter__(self) -> Iterator[DocumentRecord]:
        return (record for _, record in self._mapping.all())


class _Chunks(Sequence[Chunk]):
    """The view's chunks in key order, fetched when asked for (only evaluation reads them all)."""

    def __init__(self, view: _View) -> None:
        self.view = view
        self._keys: list[int] | None = None

    def __len__(self) -> int:
        return self.view.record["counts"]["chunks"] if self.view.record else 0

    def __iter__(self) -> Iterator[Chunk]:
        if self.view.empty:
            return
        with _milvus_errors("reading chunks"):
            rows = sorted(
                _query_all(self.view.client, self.view.chunk_collection, self.view.filter, _CHUNK_FIELDS),
                key=lambda r: r["key"],
            )
        for row in rows:
            yield _chunk_of(row)

    def __getitem__(self, index):  # type: ignore[override]
        if self._keys is None:
            with _milvus_errors("reading chunk keys"):
                rows = (
                    []
                    if self.view.empty
                    else _query_all(self.view.client, self.view.chunk_collection, self.view.filter, ["key"])
                )
                self._keys = sorted(row["key"] for row in rows)
        if isinstance(index, slice):
            return [self.view.chunk(key) for key in self._keys[index]]
        return self.view.chunk(self._keys[index])


class _Rows:
    """What both search interfaces share: the number of searchable rows, counted once per view."""

    def __init__(self, view: _View) -> None:
        self.view = view
        self._size: int | None = None

    def __len__(self) -> int:
        if self._size is None:
            with _milvus_errors("counting chunks"):
                self._size = (
                    0 if self.view.empty else _count(self.view.client, self.view.chunk_collection, self.view.filter)
                )
        return self._size

    def _search(self, data: list, field: str, metric: str, limit: int) -> list[dict[str, Any]]:
        with _milvus_errors("searching"):
            found = self.view.client.search(
                self.view.chunk_collection,
                data=data,
                anns_field=field,
                limit=limit,
                filter=self.view.filter,
                output_fields=_CHUNK_FIELDS,
                search_params={"metric_type": metric},
            )[0]
        rows = [
            {**hit["entity"], "key": hit["id"] if "id" in hit else hit["key"], "distance": hit["distance"]}
            for hit in found
        ]
        self.view.remember(rows)
        return rows


class _Vectors(_Rows):
    """Dense search in Milvus: a :class:`~rag.store.backend.VectorStore` over the view's rows."""

    def __init__(self, view: _View, dimension: int) -> None:
        super().__init__(view)
        self.dimension = dimension

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0 or self.view.empty:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        vector = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        rows = self._search([vector], "vector", "IP", k)
        return np.array([r["key"] for r in rows], dtype=np.int64), np.array(
            [r["distance"] for r in rows], dtype=np.float32
        )


class _Lexical(_Rows):
    """BM25 in Milvus over our tokens: a :class:`~rag.store.backend.LexicalStore` over the view's rows."""

    def __init__(self, view: _View) -> None:
        super().__init__(view)
        self._idf: dict[str, float] = {}

    def top(self, query: list[str], n: int) -> list[tuple[int, float]]:
        terms = " ".join(_term(t) for t in query if t)
        if not terms or n <= 0 or self.view.empty:
            return []
        # milvus-lite reports BM25 as a negated distance, a server as a positive score; the order is the same.
        hits = [(int(r["key"]), abs(float(r["distance"]))) for r in self._search([terms], "sparse", "BM25", n)]
        return [(key, score) for key, score in hits if score > 0]

    def idf(self, term: str) -> float:
        """As the local BM25 computes it, from the number of the view's chunks that contain ``term``."""
        if term not in self._idf:
            df = 0
            if not self.view.empty and _term(term):
                with _milvus_errors("counting a term"):
                    match = f"TEXT_MATCH(terms, '{_term(term)}') and {self.view.filter}"
                    df = _count(self.view.client, self.view.chunk_collection, match)
            size = len(self)
            self._idf[term] = math.log(1 + (size - df + 0.5) / (df + 0.5))
        return self._idf[term]


# ---------------------------------------------------------------------------- the store
class MilvusStore:
    """The Milvus :class:`~rag.store.backend.Store` of one knowledge base."""

    def __init__(
        self,
        path: Path,
        settings: Settings,
        embeddings: EmbeddingSpec,
        location: _Location,
        connection: _Connection,
        record: dict[str, Any] | None,
        fresh: bool,
    ) -> None:
        self.path = Path(path)
        self.settings = settings
        self.embeddings = embeddings
        self.location = location
        self._connection = connection
        self._names = _Names(location.prefix)
        self._view = _View(connection.client, self._names, record, embeddings.dimension)
        self._fresh = fresh  # created, not yet written: the first write replaces whatever is there
        self._clean = False  # what a killed writer may have left was deleted (checked on this process's first write)
        self._write_lock = threading.Lock()
        self._swap_lock = threading.Lock()  # replacing the view: never by an older one

    # ------------------------------------------------------------------ reading
    @property
    def snapshot(self) -> _View:
        return self._view

    @classmethod
    def exists(cls, path: Path) -> bool:
        try:
            return _Location.recorded(path) is not None
        except IndexStoreError:
            return True  # a damaged marker: there is a knowledge base, and opening it says what is wrong

    @classmethod
    def open(cls, path: Path, settings: Settings, embeddings: EmbeddingSpec) -> MilvusStore:
        path = Path(path)
        location = _Location.recorded(path)
        if location is None:
            raise IndexNotFoundError(f"no index at {path}; build one with `rag index`")
        wanted = _Location.uri_for(path, settings)
        if not _same_uri(wanted, location.uri):
            raise IndexMismatchError(path, {"milvus_uri": (location.uri, wanted)})
        connection = _Connection(location.uri, _token(settings))
        try:
            record = _latest(connection.client, _Names(location.prefix))
            if record is None:
                raise IndexNotFoundError(f"no index at {path} (Milvus {location.uri}); build one with `rag index`")
            _check_settings(path, record, settings, embeddings)
            _verify(connection.client, _Names(location.prefix), record, path)
        except BaseException:
            connection.close()
            raise
        return cls(path, settings, embeddings, location, connection, record, fresh=False)

    @classmethod
    def create(cls, path: Path, settings: Settings, embeddings: EmbeddingSpec) -> MilvusStore:
        path = Path(path)
        try:
            marker = _Location.marker(path)
        except IndexCorruptError:
            marker = None
        uri = _Location.uri_for(path, settings)
        prefix = marker["prefix"] if marker else _new_prefix(settings)  # reused: the first write replaces it
        try:
            connection = _Connection(uri, _token(settings))
        except IndexCorruptError:
            if not uri.endswith(".db"):
                raise
            # An unreadable lite file in the knowledge base's folder: moved aside, the new one replaces it.
            damaged = f"{os.path.abspath(uri)}.damaged"
            log.warning("moving the unreadable milvus-lite file %s to %s", uri, damaged)
            shutil.rmtree(damaged, ignore_errors=True)
            os.replace(uri, damaged)
            connection = _Connection(uri, _token(settings))
        return cls(path, settings, embeddings, _Location(uri, prefix), connection, None, fresh=True)

    @classmethod
    def document_count(cls, path: Path, settings: Settings) -> int:
        location = _Location.recorded(Path(path))
        if location is None:
            raise IndexNotFoundError(f"no index at {path}; build one with `rag index`")
        connection = _Connection(location.uri, _token(settings))
        try:
            record = _latest(connection.client, _Names(location.prefix))
        finally:
            connection.close()
        if record is None:
            raise IndexNotFoundError(f"no index at {path} (Milvus {location.uri}); build one with `rag index`")
        return record["counts"]["documents"]

    @classmethod
    def destroy(cls, path: Path, settings: Settings) -> None:
        path = Path(path)
        marker = _Location.marker(path)
        uri = (marker or {}).get("uri")  # None: a milvus-lite file inside the folder, removed with it
        if marker and uri:
            connection = _Connection(uri, _token(settings))
            try:
                names = _Names(marker["prefix"])
                with _milvus_errors("deleting the knowledge base"):
                    for epoch in names.epochs(connection.client):
                        connection.client.drop_collection(names.chunks(epoch))
                        connection.client.drop_collection(names.docs(epoch))
                    connection.client.drop_collection(names.records)
            finally:
                connection.close()
        shutil.rmtree(path)

    @staticmethod
    def read_documents(path: Path) -> list[Document]:
        location = _Location.recorded(Path(path))
        if location is None:
            raise IndexNotFoundError(f"no index at {path}; build one with `rag index`")
        connection = _Connection(location.uri, _token())
        try:
            names = _Names(location.prefix)
            record = _latest(connection.client, names)
            if record is None:
                raise IndexNotFoundError(f"no index at {path}; build one with `rag index`")
            view = _View(connection.client, names, record, 2)
            return [r.document for r in view.documents.values()]
        finally:
            connection.close()

    def refresh(self) -> bool:
        if self._fresh:
            return False
        try:
            record = _latest(self._connection.client, self._names)
        except Exception as error:  # noqa: BLE001 - a failing server: keep answering from this view
            log.warning("not reloading the index: %s", error)
            return False
        if record is None or record["version"] <= self._view.version:
            return False
        view = _View(self._connection.client, self._names, record, self.embeddings.dimension)
        with self._swap_lock:
            if view.version <= self._view.version:  # a write in this process published a newer one meanwhile
                return False
            self._view = view
        return True

    def close(self) -> None:
        """Disconnect (for milvus-lite: let another process open the file once this one's last store is closed)."""
        self._connection.close()

    # ------------------------------------------------------------------ writing
    def update(self, plan: Callable[[DocumentRecords], Change]) -> Change:
        with self._writing(), _milvus_errors("writing"):
            client = self._connection.client
            latest = _latest(client, self._names, strict=not self._fresh)
            if latest is None and not self._fresh:
                raise IndexNotFoundError(f"no index at {self.path}; build one with `rag index`")
            if not self._clean:
                self._recover(latest)
            current = _View(client, self._names, None if self._fresh else latest, self.embeddings.dimension)
            change = plan(current.documents)
            if not change and not self._fresh:
                self._view = current
                return change
            self._clean = False  # until this write has finished, including its deletes
            self._publish(current, latest, change)
            self._clean = True
        return change

    def remove(self, doc_ids: Iterable[str]) -> list[str]:
        wanted = set(doc_ids)
        change = self.update(lambda documents: Change(remove={d for d in wanted if d in documents}))
        return sorted(change.remove)

    def _writing(self) -> AbstractContextManager[None]:
        return writer_lock(self.path, self._write_lock)

    def _recover(self, latest: dict[str, Any] | None) -> None:
        """Delete what a killed writer left: rows of an unpublished version, removed rows not yet deleted,
        older records, the collections of other epochs."""
        client = self._connection.client
        if not client.has_collection(self._names.records):
            return
        if latest is None:  # nothing published (or a fresh store replacing whatever is there): all goes
            for epoch in self._names.epochs(client):
                client.drop_collection(self._names.chunks(epoch))
                client.drop_collection(self._names.docs(epoch))
            return
        version, epoch = latest["version"], latest["epoch"]
        client.delete(self._names.records, filter=f"gen != {version}")
        for other in self._names.epochs(client) - {epoch}:
            client.drop_collection(self._names.chunks(other))
            client.drop_collection(self._names.docs(other))
        stale = f"gen > {version}"
        if latest.get("gone"):
            stale += f" or (gen < {version} and doc_id in {_quoted(latest['gone'])})"
        client.delete(self._names.chunks(epoch), filter=stale)
        client.delete(self._names.docs(epoch), filter=stale)

    def _publish(self, current: _View, latest: dict[str, Any] | None, change: Change) -> None:
        client, pymilvus = self._connection.client, _pymilvus()
        names, dimension = self._names, self.embeddings.dimension
        if not client.has_collection(names.records):
            _create_blobs(client, pymilvus, names.records, "name")
        version = _highest_version(client, names) + 1
        stored = set(current.documents)
        added = {addition.document.id for addition in change.add}
        gone = sorted((set(change.remove) | added) & stored)
        rebuild = (
            latest is None
            or self._fresh
            or latest["embedding"]["dimension"] != dimension
            or (stored and stored <= set(gone))
        )
        if rebuild:  # new collections: nothing of the old ones is searched once this version is published
            epoch = max(self._names.epochs(client) | {latest["epoch"] if latest else 0}) + 1
            for other in (names.chunks(epoch), names.docs(epoch)):
                if client.has_collection(other):
                    client.drop_collection(other)
            _create_chunks(client, pymilvus, names.chunks(epoch), dimension, self._connection.lite)
            _create_blobs(client, pymilvus, names.docs(epoch), "doc_id")
            kept, chunks, next_key, gone = set(), 0, latest["next_key"] if latest else 0, []
        else:
            epoch = latest["epoch"]
            kept = stored - set(gone)
            removed_chunks = sum(len(current.documents[doc_id].chunk_ids) for doc_id in gone)
            chunks, next_key = latest["counts"]["chunks"] - removed_chunks, latest["next_key"]
        try:
            unmarked = _Location.marker(self.path) is None
        except IndexCorruptError:
            unmarked = True
        if unmarked:
            self.location.mark(self.path, published=False)

        chunk_rows, doc_rows, now = [], [], _now()
        for seq, addition in enumerate(change.add):
            keys = range(next_key, next_key + len(addition.chunks))
            next_key += len(addition.chunks)
            chunks += len(addition.chunks)
            chunk_rows += [
                _chunk_row(key, version, chunk, tokens, vector)
                for key, chunk, tokens, vector in zip(keys, addition.chunks, addition.tokens, addition.vectors)
            ]
            record = DocumentRecord(addition.document, now, tuple(c.id for c in addition.chunks), addition.updated)
            document = addition.document
            tail = {_TAIL: source_tail(document.source, document.name)} if current.tails or rebuild else {}
            doc_rows += _blob_rows("doc_id", document.id, version, seq, _record_json(record), **tail)
        for collection, rows in ((names.chunks(epoch), chunk_rows), (names.docs(epoch), doc_rows)):
            for start in range(0, len(rows), _INSERT_BATCH):
                client.insert(collection, rows[start : start + _INSERT_BATCH])
            client.flush(collection)

        published = {
            "format_version": FORMAT_VERSION,
            "version": version,
            "epoch": epoch,
            "gone": gone,
            "next_key": next_key,
            "counts": {"documents": len(kept | added), "chunks": chunks},
            "settings": self.settings.index_fingerprint(),
            "embedding": {"model_id": self.embeddings.model_id, "dimension": dimension},
            "analyzer": _analyzer(self._connection.lite),
            "updated_at": now,
        }
        # The commit point: once every piece of this record is stored, the new version is the live one.
        client.insert(names.records, _blob_rows("name", "published", version, 0, json.dumps(published)))
        client.flush(names.records)
        with self._swap_lock:
            self._view = _View(client, names, published, dimension)
        self._fresh = False
        self.location.mark(self.path, published=True)
        self._recover(published)


def _highest_version(client, names: _Names) -> int:
    rows = client.query(names.records, filter="gen >= 0", output_fields=["gen"])
    return max((row["gen"] for row in rows), default=0)


def _latest(client, names: _Names, strict: bool = True) -> dict[str, Any] | None:
    """The published record: the highest version all of whose pieces are stored (None: nothing published).

    ``strict``: an unreadable record raises IndexCorruptError (else it is taken as nothing published)."""
    with _milvus_errors("reading the published version"):
        if not client.has_collection(names.records):
            return None
        _loaded(client, names.records)
        rows = client.query(
            names.records, filter="gen >= 0", output_fields=["rid", "name", "gen", "seq", "part", "parts", "data"]
        )
    complete = sorted(_assemble(rows, "name"), reverse=True)
    if not complete:
        return None
    try:
        record = json.loads(complete[0][2])
        if record.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {record.get('format_version')!r}")
        if not all(isinstance(record.get(key), int) for key in ("version", "epoch", "next_key")):
            raise ValueError("version, epoch or next key missing")
        return record
    except (ValueError, KeyError, TypeError) as error:
        if not strict:
            return None
        raise IndexCorruptError(
            f"the published record in Milvus ({names.records}) is damaged ({error}); rebuild it with `rag index`"
        ) from error


def _check_settings(path: Path, record: dict[str, Any], settings: Settings, embeddings: EmbeddingSpec) -> None:
    expected = {**settings.index_fingerprint(), "embedding_id": embeddings.model_id}
    recorded = {**record["settings"], "embedding_id": record["embedding"]["model_id"]}
    differences = {k: (recorded.get(k), v) for k, v in expected.items() if recorded.get(k) != v}
    if differences:
        raise IndexMismatchError(path, differences)


def _verify(client, names: _Names, record: dict[str, Any], path: Path) -> None:
    """The published version's rows are all there: as many documents and chunks as its record counts."""
    view = _View(client, names, record, record["embedding"]["dimension"])
    rebuild = f"rebuild it with `rag index` (knowledge base {path}, Milvus collections {names.prefix}_*)"
    with _milvus_errors("checking the index"):
        for collection in (view.chunk_collection, view.doc_collection):
            if not client.has_collection(collection):
                raise IndexCorruptError(f"the Milvus collection {collection} is missing; {rebuild}")
        chunks = len(view.vectors)
        documents = _count(client, view.doc_collection, f"part == 0 and {view.filter}")
    counted = record["counts"]
    if (documents, chunks) != (counted["documents"], counted["chunks"]):
        raise IndexCorruptError(
            f"Milvus holds {documents} documents and {chunks} chunks where {counted['documents']} and "
            f"{counted['chunks']} were published; {rebuild}"
        )
