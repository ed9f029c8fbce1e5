"""The local index's segments: writes proportional to the change, merges, tombstones, BM25 over segments
scoring exactly as one table, readers keeping their view, and the one-time conversion of format 1.

The rows are generated (random tokens and unit vectors) so that the exact references are easy to state:
BM25 over the live token lists (rag.store.bm25, one in-memory table) and exhaustive inner products.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.settings import Settings
from rag.store import BM25, Addition, Change, Index, read_documents, read_manifest
from rag.store.ann import choose
from rag.store.backend import DocumentRecords, source_key
from rag.store.files import sha256_file, write_jsonl, write_text
from rag.store.index import DEAD_FRACTION, MERGE_RATIO
from rag.types import Chunk, Document

DIMENSION = 8
VOCABULARY = [f"词{n}" for n in range(40)]


@dataclass(frozen=True)
class Spec:
    model_id: str = "test/random-vectors"
    dimension: int = DIMENSION


def make(number: int, chunks: int = 3, seed: int = 0) -> Addition:
    """Document ``number`` with ``chunks`` chunks of random tokens (Zipf-like, so terms repeat) and vectors."""
    rng = np.random.default_rng(number * 1000 + seed)
    doc_id = f"doc{number:05d}-{seed}"
    tokens = [[VOCABULARY[min(int(rng.zipf(1.3)), len(VOCABULARY)) - 1] for _ in range(rng.integers(4, 15))] for _ in range(chunks)]
    texts = ["".join(terms) for terms in tokens]
    text = "\n".join(texts)
    rows, start = [], 0
    for n, part in enumerate(texts):
        rows.append(Chunk(f"{doc_id}-{n:04d}", doc_id, f"news/{doc_id}.txt", part, part, part, "", start, start + len(part), n + 1, n + 1))
        start += len(part) + 1
    vectors = rng.normal(size=(chunks, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Addition(Document(doc_id, f"news/{doc_id}.txt", text, ("标题",)), tuple(rows), tuple(tokens), vectors)


class Mirror:
    """What the index should hold: the live additions in order, with the keys the index gave their chunks."""

    def __init__(self) -> None:
        self.live: dict[str, tuple[Addition, np.ndarray]] = {}
        self.next_key = 0

    def add(self, addition: Addition) -> None:
        keys = np.arange(self.next_key, self.next_key + len(addition.chunks))
        self.next_key += len(keys)
        self.live[addition.document.id] = (addition, keys)

    def rows(self):
        for addition, keys in self.live.values():
            yield from zip(keys, addition.chunks, addition.tokens, addition.vectors)


def write(index: Index, mirror: Mirror, add: list[Addition] = (), remove: set[str] = frozenset()) -> None:
    index.update(lambda stored: Change(remove=set(remove), add=list(add)))
    for doc_id in remove:
        mirror.live.pop(doc_id)
    for addition in add:
        mirror.add(addition)


def check_against(index: Index, mirror: Mirror) -> None:
    """Documents, chunks, BM25 (exactly) and dense search (exactly ranked) as the mirror says."""
    view = index.snapshot
    rows = list(mirror.rows())
    assert list(view.documents) == list(mirror.live)
    assert [c.id for c in view.chunks] == [chunk.id for _, chunk, _, _ in rows]
    assert [int(k) for k in view.keys] == [int(key) for key, *_ in rows]
    reference = BM25([tokens for _, _, tokens, _ in rows], [int(key) for key, *_ in rows])
    for query in (["词0"], ["词1", "词5", "词5"], ["词3", "词12", "词39"], ["不在词表"]):
        assert view.lexical.top(query, 10) == reference.top(query, 10)
        assert view.lexical.idf(query[0]) == reference.idf(query[0])
    vectors = np.stack([vector for *_, vector in rows])
    keys = np.array([key for key, *_ in rows])
    for query in vectors[:: max(1, len(vectors) // 5)]:
        found, scores = view.vectors.search(query, 7)
        exact = np.argsort(-(vectors @ query), kind="stable")[:7]
        assert list(found) == list(keys[exact]) and np.allclose(scores, (vectors @ query)[exact], atol=1e-5)
    for key, chunk, _, _ in rows[:: max(1, len(rows) // 10)]:
        assert view.chunk(int(key)) == chunk
    for doc_id, (addition, _) in list(mirror.live.items())[:3]:
        record = view.documents[doc_id]
        assert record.document == addition.document and record.chunk_ids == tuple(c.id for c in addition.chunks)


def segments(path: Path) -> list[dict]:
    return read_manifest(path)[0]["segments"]


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "index")


def test_adds_and_removes_cost_what_they_change_and_search_as_one_table(settings: Settings) -> None:
    path, mirror = settings.index_path, Mirror()
    index = Index.create(path, settings, Spec())
    write(index, mirror, add=[make(n) for n in range(60)])
    base = segments(path)[0]["name"]
    base_files = {p.name: p.stat().st_mtime_ns for p in (path / "segments" / base).iterdir()}
    check_against(index, mirror)

    write(index, mirror, add=[make(1000)])  # one small segment more; the base is not touched
    assert [s["name"] for s in segments(path)][0] == base and len(segments(path)) == 2
    new = path / "segments" / segments(path)[1]["name"]
    assert sum(p.stat().st_size for p in new.iterdir()) < 16 * 1024
    assert {p.name: p.stat().st_mtime_ns for p in (path / "segments" / base).iterdir()} == base_files
    check_against(index, mirror)

    write(index, mirror, remove={"doc00003-0", "doc00010-0"})  # tombstones in the manifest only
    assert segments(path)[0] == {"name": base, "sha256": segments(path)[0]["sha256"], "removed": [3, 10]}
    check_against(index, mirror)
    reopened = Index.open(path, settings, Spec())
    check_against(reopened, mirror)


def test_small_segments_are_merged_and_removed_rows_rewritten_out(settings: Settings) -> None:
    path, mirror = settings.index_path, Mirror()
    index = Index.create(path, settings, Spec())
    write(index, mirror, add=[make(n) for n in range(40)])
    for n in range(100, 130):
        write(index, mirror, add=[make(n, chunks=1)])
        live = [len(index.snapshot.parts[i].live_row_numbers) for i in range(len(index.snapshot.parts))]
        # Each segment holds more than MERGE_RATIO times the live rows of the one after it.
        assert all(a > MERGE_RATIO * b for a, b in zip(live, live[1:])), live
    assert len(segments(path)) <= 4
    assert sorted(p.name for p in (path / "segments").iterdir()) == sorted(s["name"] for s in segments(path))
    check_against(index, mirror)

    first = segments(path)[0]["name"]
    doomed = {doc_id for doc_id in list(mirror.live)[:40] if int(doc_id[3:8]) % 2 == 0}  # half of the first segment
    assert len(doomed) / 40 > DEAD_FRACTION
    write(index, mirror, remove=doomed)
    assert segments(path)[0]["name"] != first and not any(s["removed"] for s in segments(path))
    check_against(index, mirror)
    check_against(Index.open(path, settings, Spec()), mirror)


def test_a_reader_keeps_its_view_when_its_segments_are_merged_away(settings: Settings) -> None:
    path, mirror = settings.index_path, Mirror()
    writer = Index.create(path, settings, Spec())
    write(writer, mirror, add=[make(n) for n in range(4)])
    reader = Index.open(path, settings, Spec())
    old = reader.snapshot
    held = [p.segment.path for p in old.parts]
    expected = {doc_id: addition.document.text for doc_id, (addition, _) in mirror.live.items()}
    for n in range(10, 20):
        write(writer, mirror, add=[make(n)])
    assert not any(p.exists() for p in held)  # merged into others and deleted
    assert {doc_id: old.documents[doc_id].document.text for doc_id in expected} == expected
    assert [c.doc_id for c in old.chunks][:3] == [mirror.live[next(iter(expected))][0].document.id] * 3
    assert old.lexical.top(["词0"], 3) and len(old.vectors.search(make(0).vectors[0], 3)[0]) == 3
    assert reader.refresh()
    check_against(reader, mirror)


def write_format_1(path: Path, settings: Settings, additions: list[Addition]) -> None:
    """An index as the code before segments wrote it (rag/store/index.py at 1b0cfb8, FORMAT_VERSION = 1)."""
    version = path / "v00000003"
    version.mkdir(parents=True)
    write_jsonl(
        version / "documents.jsonl",
        (
            {
                "id": a.document.id,
                "source": a.document.source,
                "headlines": list(a.document.headlines),
                "added_at": "2026-11-30T08:00:00+00:00",
                "chunk_ids": [c.id for c in a.chunks],
                "text": a.document.text,
            }
            for a in additions
        ),
    )
    rows, key = [], 0
    store = faiss.IndexIDMap2(faiss.IndexFlatIP(DIMENSION))
    for addition in additions:
        keys = np.arange(key, key + len(addition.chunks), dtype=np.int64)
        store.add_with_ids(addition.vectors, keys)
        rows += [{"key": int(k), **asdict(c), "tokens": t} for k, c, t in zip(keys, addition.chunks, addition.tokens)]
        key += len(keys)
    write_jsonl(version / "chunks.jsonl", rows)
    faiss.write_index(store, str(version / "vectors.faiss"))
    manifest = {
        "format_version": 1,
        "version": 3,
        "updated_at": "2026-11-30T08:00:00+00:00",
        "settings": settings.index_fingerprint(),
        "embedding": {"model_id": Spec.model_id, "dimension": DIMENSION},
        "chunking": {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap},
        "next_key": key,
        "counts": {"documents": len(additions), "chunks": len(rows)},
        "documents": {a.document.id: {"source": a.document.source, "chunks": len(a.chunks)} for a in additions},
        "files": {name: sha256_file(version / name) for name in ("documents.jsonl", "chunks.jsonl", "vectors.faiss")},
    }
    write_text(version / "manifest.json", json.dumps(manifest))
    write_text(path / "CURRENT", f"{version.name} {sha256_file(version / 'manifest.json')}\n")


def test_a_format_1_index_is_converted_once_when_opened(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    path, mirror = settings.index_path, Mirror()
    additions = [make(n) for n in range(12)]
    write_format_1(path, settings, additions)
    for addition in additions:
        mirror.add(addition)
    assert [d.id for d in read_documents(path)] == list(mirror.live)  # readable before conversion (for rebuilds)

    with caplog.at_level(logging.WARNING, logger="rag.store.index"):
        index = Index.open(path, settings, Spec())
    assert "from format 1 to format 2" in caplog.text and str(path) in caplog.text
    manifest, _ = read_manifest(path)
    assert manifest["format_version"] == 2 and manifest["version"] == 4 and len(manifest["segments"]) == 1
    assert sorted(p.name for p in path.iterdir()) == [".lock", "CURRENT", "segments", "v00000004"]
    check_against(index, mirror)
    records = index.snapshot.documents
    assert all(records[doc_id].added_at == "2026-11-30T08:00:00+00:00" for doc_id in mirror.live)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag.store.index"):
        reopened = Index.open(path, settings, Spec())
    assert caplog.text == "" and reopened.snapshot.version == 4
    write(reopened, mirror, add=[make(500)], remove={"doc00002-0"})
    check_against(Index.open(path, settings, Spec()), mirror)


def test_a_single_query_searches_the_segments_on_one_thread(settings: Settings) -> None:
    """FAISS's OpenMP threads only slow one query down (4-13x with two threads on a busy machine)."""
    index = Index.create(settings.index_path, settings, Spec())
    index.update(lambda stored: Change(add=[make(1), make(2)]))
    faiss.omp_set_num_threads(2)
    keys, _ = index.snapshot.vectors.search(make(1).vectors[0], 2)
    assert keys[0] == 0 and faiss.omp_get_max_threads() == 1


def test_choose_gives_large_segments_an_approximate_index_unless_flat_is_set() -> None:
    assert choose("auto", 49_999, 50_000) is None
    assert choose("auto", 50_000, 50_000) == "ivfpq"
    assert choose("hnsw", 60_000, 50_000) == "hnsw"
    assert choose("flat", 10**7, 50_000) is None
    assert choose("ivfpq", 255, 1) is None  # too few rows to train its codebooks


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_a_large_segment_is_searched_through_its_approximate_index(tmp_path: Path, kind: str) -> None:
    """Above ``vector_index_min_rows`` a segment carries an approximate index: results keep exact scores,
    removed documents never come back (filtered inside the search), and a reopened index uses it too;
    smaller segments stay exact."""
    settings = Settings(index_dir=tmp_path / "index", vector_index=kind, vector_index_min_rows=600)
    index, mirror = Index.create(settings.index_path, settings, Spec()), Mirror()
    write(index, mirror, add=[make(n) for n in range(220)])  # 660 rows: one segment with an index
    write(index, mirror, add=[make(n) for n in range(220, 225)], remove={f"doc{n:05d}-0" for n in range(0, 220, 7)})
    listed = segments(settings.index_path)
    infos = [json.loads((settings.index_path / "segments" / s["name"] / "segment.json").read_text()) for s in listed]
    assert [info.get("ann") for info in infos] == [kind, None]
    for view in (index.snapshot, Index.open(settings.index_path, settings, Spec()).snapshot):
        assert view.parts[0].segment.ann.kind == kind
        rows = list(mirror.rows())
        vectors, keys = np.stack([r[3] for r in rows]), np.array([r[0] for r in rows])
        recalls = []
        for query in vectors[::9]:
            found, scores = view.vectors.search(query, 7)
            exact = keys[np.argsort(-(vectors @ query), kind="stable")[:7]]
            assert set(found) <= set(keys)  # nothing removed
            by_key = dict(zip(keys, vectors @ query))
            assert np.allclose(scores, [by_key[k] for k in found], atol=1e-5) and list(scores) == sorted(scores, reverse=True)
            recalls.append(len(set(found) & set(exact)) / 7)
        assert np.mean(recalls) >= 0.9


def test_stored_sources_are_found_as_a_scan_of_every_document_finds_them(settings: Settings) -> None:
    """The write's plan looks sources up per segment (by file name first); it must agree with reading every
    record, for relative, absolute, odd and upload sources, across segments and tombstones."""
    sources = [("a.txt", ""), ("./a.txt", ""), ("x/../b.txt", ""), ("/abs/c.txt", ""), ("dir/.", ""),
               ("uploads/1.txt", "报告.txt"), ("uploads/2.txt", "报告.txt"), ("/abs/c.txt", "")]
    index = Index.create(settings.index_path, settings, Spec())
    sizes = [30, 30, 30, 30, 3, 3, 3, 1]  # three writes, each segment small enough not to be merged
    additions = [
        replace(added := make(n, chunks), document=replace(added.document, source=source, name=name))
        for n, ((source, name), chunks) in enumerate(zip(sources, sizes))
    ]
    for start, stop in ((0, 4), (4, 7), (7, 8)):
        index.update(lambda stored, start=start, stop=stop: Change(add=additions[start:stop]))
    index.update(lambda stored: Change(remove={additions[1].document.id, additions[7].document.id}))
    documents = index.snapshot.documents
    keys = {source_key(source, name) for source, name in sources} | {"/nowhere/a.txt", "upload:别的.txt"}
    assert len(index.snapshot.parts) >= 2
    assert documents.by_source(keys) == DocumentRecords.by_source(documents, keys)
    assert documents.by_source(keys)[source_key("a.txt", "")] == additions[0].document.id
