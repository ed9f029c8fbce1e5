"""KnowledgeBase: one rebuild for every caller (uploads kept, every limit applied), and a changed file
added again under the same source replacing its earlier version atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import KnowledgeBase, Settings
from rag.cli import main
from rag.web.library import document_rows, rebuild
from rag.web.uploads import UPLOADS_DIR, add_upload

LIBRARY = "青山镇新闻\n\n青山镇今年新建了一座图书馆，馆藏图书三万册，由镇长王小明揭牌。\n"
EDITED = "青山镇新闻\n\n青山镇今年新建了一座图书馆，馆藏图书八万册，由副镇长李大海揭牌。\n"
ROAD = "河西村新闻\n\n河西村修好了一条三公里长的水泥路，村民出行更方便了。\n"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def texts(knowledge: KnowledgeBase, question: str) -> str:
    return "".join(hit.chunk.clean for hit in knowledge.search(question, k=10))


@pytest.fixture()
def knowledge(writable_index_dir: Path, tmp_path: Path) -> KnowledgeBase:
    corpus = tmp_path / "corpus"
    write(corpus, "road.txt", ROAD)
    return KnowledgeBase.open(Settings(index_dir=writable_index_dir, corpus=[corpus]), build_if_missing=False)


# ---------------------------------------------------------------------------- replacing by source
def test_an_upload_with_the_same_name_replaces_its_earlier_version(knowledge: KnowledgeBase, tmp_path: Path) -> None:
    first = add_upload(knowledge, write(tmp_path / "a", "news.txt", LIBRARY), "青山镇.txt")
    assert first.ok and first.message.startswith("已添加"), first.message
    version = knowledge.stats().version
    count = knowledge.stats().documents

    second = add_upload(knowledge, write(tmp_path / "b", "news.txt", EDITED), "青山镇.txt")
    assert second.ok and second.doc_id != first.doc_id
    assert second.message.startswith("已更新"), second.message
    stats = knowledge.stats()
    assert stats.version == version + 1 and stats.documents == count  # one new version: the old one gone with it
    assert knowledge.document(first.doc_id) is None and knowledge.document(second.doc_id).updated
    assert [p.name for p in (knowledge.path / UPLOADS_DIR).iterdir()] == [
        Path(knowledge.document(second.doc_id).document.source).name
    ]  # the earlier saved copy is deleted: a rebuild does not bring it back
    found = texts(knowledge, "青山镇图书馆馆藏多少册？")
    assert "八万册" in found and "三万册" not in found
    row = next(row for row in document_rows(knowledge) if row[4] == second.doc_id)
    assert row[1] == "青山镇.txt" and "已更新" in row[3]

    reopened = KnowledgeBase.open(knowledge.settings, build_if_missing=False)
    assert reopened.document(second.doc_id).updated and reopened.document(first.doc_id) is None
    other = add_upload(knowledge, write(tmp_path / "c", "news.txt", LIBRARY), "另一个.txt")  # another name: added
    assert other.ok and other.message.startswith("已添加") and knowledge.stats().documents == count + 1


def test_a_file_edited_and_added_again_replaces_the_old_one_in_one_version(
    knowledge: KnowledgeBase, tmp_path: Path
) -> None:
    path = write(tmp_path / "docs", "library.txt", LIBRARY)
    old = knowledge.add_paths([path]).update.added[0]
    version = knowledge.stats().version
    path.write_text(EDITED, encoding="utf-8")
    report = knowledge.add_paths([path])
    assert report.update.removed == [old] and report.update.updated == report.update.added
    assert "1 updated" in report.summary()
    assert knowledge.stats().version == version + 1 and knowledge.document(old) is None
    found = texts(knowledge, "青山镇图书馆馆藏多少册？")
    assert "八万册" in found and "三万册" not in found


# ---------------------------------------------------------------------------- one rebuild
def test_rag_index_keeps_the_uploads(knowledge: KnowledgeBase, tmp_path: Path) -> None:
    upload = add_upload(knowledge, write(tmp_path / "in", "x.txt", LIBRARY), "图书馆.txt")
    docs = tmp_path / "docs"
    write(docs, "road.txt", ROAD)
    assert main(["index", str(docs), "--index-dir", str(knowledge.path)]) == 0
    knowledge.refresh()
    names = sorted(r.document.display_name for r in knowledge.documents)
    assert names == ["road.txt", "图书馆.txt"]  # the seeds are gone (not named), the upload kept with its name
    assert knowledge.document(upload.doc_id) is not None


def test_the_page_rebuild_applies_the_file_size_limit(knowledge: KnowledgeBase, tmp_path: Path) -> None:
    big = add_upload(knowledge, write(tmp_path / "in", "big.txt", LIBRARY * 40), "大文件.txt")
    small = add_upload(knowledge, write(tmp_path / "in", "small.txt", EDITED), "小文件.txt")
    assert big.ok and small.ok
    saved = Path(knowledge.document(big.doc_id).document.source).name
    limited = knowledge.with_settings(knowledge.settings.with_overrides(max_file_mb=0.004))  # ~4 KB: over for big
    report = rebuild(limited)
    assert [Path(e.source).name for e in report.errors] == [saved] and "RAG_MAX_FILE_MB" in str(report.errors[0])
    limited.refresh()
    assert {r.document.display_name for r in limited.documents} == {"road.txt", "小文件.txt"}
    assert len(list((knowledge.path / UPLOADS_DIR).iterdir())) == 2  # refused, not deleted: a later rebuild may take it


def test_a_settings_change_rebuilds_keeping_every_document(knowledge: KnowledgeBase, tmp_path: Path) -> None:
    added = write(tmp_path / "docs", "library.txt", LIBRARY)
    added_id = knowledge.add_paths([added]).update.added[0]
    upload = add_upload(knowledge, write(tmp_path / "in", "x.txt", EDITED), "上传的.txt")
    added.unlink()  # its file is gone: the stored text is what is left of it
    before = {r.document.id: r.document.display_name for r in knowledge.documents}

    rebuilt = KnowledgeBase.open(knowledge.settings.with_overrides(chunk_size=200), build_if_missing=False)
    assert {r.document.id: r.document.display_name for r in rebuilt.documents} == before
    assert rebuilt.document(added_id) is not None and rebuilt.document(upload.doc_id).document.name == "上传的.txt"
    assert rebuilt.stats().version > knowledge.stats().version
    assert any("三万册" in chunk.clean for chunk in rebuilt.chunks() if chunk.doc_id == added_id)
