"""The `rag` command: index/add/remove/list/search, JSON offsets into the files, settings from env and flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.cli import main
from rag.store import read_manifest

ROOT = Path(__file__).resolve().parent.parent
NEWS = (
    "极光列车新线路开通\n\n"
    "从漠河开往三亚的极光列车新线路今天正式开通，全程需要五十六小时。列车配备卧铺和观景车厢，票价从九百元起。\n\n"
    "铁路部门表示，这条线路将带动沿线旅游发展，预计每年运送旅客八十万人次。\n"
)
MORE = (
    "彩虹猫咪合作社成立\n\n"
    "彩虹猫咪合作社今天在哈尔滨成立，首批社员共有三十七人。合作社将为城市流浪猫提供免费体检服务。\n"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))  # knowledge bases by name: a private folder


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def search_json(capsys: pytest.CaptureFixture, *argv: str) -> list[dict]:
    status, out, err = run(capsys, "search", *argv, "--json")
    assert status == 0, err
    return json.loads(out)


def test_search_json_offsets_index_the_original_files(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, seed_index_dir: Path
) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_index_dir))
    for question in ("黑龙江的边境线有多长？", "李強在京調研新質生產力發展情況", "新疆跨境电商"):
        hits = search_json(capsys, question)
        assert [hit["rank"] for hit in hits] == [1, 2, 3, 4, 5]
        for hit in hits:
            with open(hit["source"], encoding="utf-8", newline="") as handle:
                original = handle.read()
            assert original[hit["start"] : hit["end"]] == hit["text"]
            assert original.count("\n", 0, hit["start"]) + 1 == hit["line_start"]
            assert original.count("\n", 0, hit["end"] - 1) + 1 == hit["line_end"]


def test_flags_and_environment_choose_k_and_mode(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, seed_index_dir: Path
) -> None:
    question = "黑龍江的邊境線有多長？"
    assert len(search_json(capsys, question, "--index-dir", str(seed_index_dir), "-k", "3")) == 3
    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_index_dir))
    monkeypatch.setenv("RAG_K", "2")
    monkeypatch.setenv("RAG_MODE", "dense")
    hits = search_json(capsys, question)
    assert len(hits) == 2 and all(set(hit["scores"]) == {"dense"} for hit in hits)
    hits = search_json(capsys, question, "--mode", "bm25", "-k", "4")  # flags beat the environment
    assert len(hits) == 4 and all(set(hit["scores"]) == {"bm25"} for hit in hits)

    status, out, _ = run(capsys, "search", question, "--mode", "bm25")
    assert status == 0 and out.startswith("[1] ") and "2981公里" in out


def test_bad_setting_values_are_rejected(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["search", "问题", "--chunk-size", "10"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit):
        main(["search", "问题", "--mode", "fuzzy"])
    monkeypatch.setenv("RAG_K", "0")
    with pytest.raises(SystemExit):
        main(["list"])
    assert "k" in capsys.readouterr().err


def test_list_the_seed_index(capsys: pytest.CaptureFixture, seed_index_dir: Path) -> None:
    status, out, _ = run(capsys, "list", "--json", "--index-dir", str(seed_index_dir))
    rows = json.loads(out)
    assert status == 0 and len(rows) == 5
    first = next(row for row in rows if Path(row["source"]).name.startswith("000_"))
    assert first["headline"] == "李強在京調研新質生產力發展情況" and first["chunks"] > 5


def test_index_add_remove_list_cycle(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "train.txt").write_text(NEWS, encoding="utf-8")
    index_dir = tmp_path / "index"
    monkeypatch.setenv("RAG_INDEX_DIR", str(index_dir))
    monkeypatch.setenv("RAG_CHUNK_SIZE", "120")

    status, out, _ = run(capsys, "index", str(docs), "--chunk-overlap", "20")
    assert status == 0 and "added 1 document(s)" in out
    manifest, _ = read_manifest(index_dir)
    assert (manifest["settings"]["chunk_size"], manifest["settings"]["chunk_overlap"]) == (120, 20)
    monkeypatch.setenv("RAG_CHUNK_OVERLAP", "20")

    extra = tmp_path / "cats.txt"
    extra.write_text(MORE, encoding="utf-8")
    status, out, _ = run(capsys, "add", str(extra))
    assert status == 0 and "added 1 document(s)" in out
    status, out, _ = run(capsys, "add", str(extra))
    assert status == 0 and "added 0 document(s)" in out and "1 unchanged" in out
    assert read_manifest(index_dir)[0]["version"] == manifest["version"] + 1

    rows = json.loads(run(capsys, "list", "--json")[1])
    assert sorted(Path(row["source"]).name for row in rows) == ["cats.txt", "train.txt"]
    hits = search_json(capsys, "彩虹猫咪合作社", "--mode", "bm25")
    assert Path(hits[0]["source"]).name == "cats.txt"

    train_id = next(row["doc_id"] for row in rows if row["source"].endswith("train.txt"))
    status, out, _ = run(capsys, "remove", train_id, str(extra))
    assert status == 0 and train_id in out
    assert json.loads(run(capsys, "list", "--json")[1]) == []
    status, out, err = run(capsys, "search", "极光列车")  # an empty knowledge base says so, and fails
    assert status == 2 and out == "" and "还没有文档" in err
    status, _, err = run(capsys, "ask", "极光列车开到哪里？")
    assert status == 2 and "还没有文档" in err

    status, _, err = run(capsys, "remove", "no-such-document")
    assert status == 1 and "no-such-document" in err

    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 64)
    status, _, err = run(capsys, "add", str(tmp_path / "binary.txt"))
    assert status == 1 and "binary.txt" in err


def test_index_problems_exit_with_a_message(
    capsys: pytest.CaptureFixture, tmp_path: Path, tiny_cli_index: Path
) -> None:
    status, _, err = run(capsys, "list", "--index-dir", str(tmp_path / "missing"))
    assert status == 2 and "rag index" in err

    status, _, err = run(capsys, "list", "--index-dir", str(tiny_cli_index), "--set", "chunk_size=200")
    assert status == 0  # a settings change rebuilds (logged), it does not fail

    segment = read_manifest(tiny_cli_index)[0]["segments"][-1]["name"]
    chunks = tiny_cli_index / "segments" / segment / "chunks.jsonl"
    chunks.write_bytes(chunks.read_bytes()[:-10])
    status, _, err = run(capsys, "search", "极光列车", "--index-dir", str(tiny_cli_index), "--set", "chunk_size=200")
    assert status == 2 and "chunks.jsonl" in err and "rag index" in err


@pytest.fixture()
def tiny_cli_index(capsys: pytest.CaptureFixture, tmp_path: Path) -> Path:
    docs = tmp_path / "tiny-docs"
    docs.mkdir()
    (docs / "train.txt").write_text(NEWS, encoding="utf-8")
    path = tmp_path / "tiny-index"
    assert main(["index", str(docs), "--index-dir", str(path)]) == 0
    capsys.readouterr()
    return path


def test_the_command_runs_in_a_fresh_process(seed_index_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    result = subprocess.run(
        [sys.executable, "-m", "rag", "list", "--json", "--index-dir", str(seed_index_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 5


def test_indexing_nothing_fails_plainly_and_leaves_no_index(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.xyz").write_text("not a document", encoding="utf-8")
    status, _, err = run(capsys, "index", str(empty))
    assert status == 1 and "nothing to index" in err and "no index was created" in err
    assert not (tmp_path / "data" / "default").exists()
    status, _, err = run(capsys, "index", "--kb", "news")  # a named knowledge base needs its files named
    assert status == 1 and "news" in err and not (tmp_path / "data" / "news").exists()


def test_knowledge_bases_by_name(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    data = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "train.txt").write_text(NEWS, encoding="utf-8")
    (tmp_path / "cats.txt").write_text(MORE, encoding="utf-8")
    keep = tmp_path / "data-neighbour.txt"
    keep.write_text("not part of any knowledge base", encoding="utf-8")

    status, out, _ = run(capsys, "kb", "create", "trains")
    assert status == 0 and str(data / "trains") in out
    assert run(capsys, "kb", "create", "trains")[0] == 1  # exists
    status, _, err = run(capsys, "search", "极光列车", "--kb", "trains")
    assert status == 2 and "还没有文档" in err  # created, but empty: said plainly
    assert run(capsys, "add", str(docs), "--kb", "trains")[0] == 0
    assert run(capsys, "index", str(tmp_path / "cats.txt"), "--kb", "cats")[0] == 0  # index creates one too

    rows = json.loads(run(capsys, "kb", "list", "--json")[1])
    assert [(r["name"], r["documents"]) for r in rows] == [("default", None), ("cats", 1), ("trains", 1)]
    hits = search_json(capsys, "彩虹猫咪合作社", "--kb", "cats", "--mode", "bm25")
    assert {Path(h["source"]).name for h in hits} == {"cats.txt"}
    hits = search_json(capsys, "极光列车", "--kb", "trains")
    assert {Path(h["source"]).name for h in hits} == {"train.txt"}
    status, out, _ = run(capsys, "ask", "极光列车全程需要多长时间？", "--kb", "trains", "--json")
    assert status == 0 and {Path(p["source"]).name for p in json.loads(out)["passages"]} == {"train.txt"}

    status, _, err = run(capsys, "search", "极光列车", "--kb", "nope")
    assert status == 2 and "不存在" in err and not (data / "nope").exists()
    for bad in ("../x", "..", "a/b", ".hidden", ""):
        with pytest.raises(SystemExit):
            main(["search", "q", "--kb", bad])
        assert "知识库名称无效" in capsys.readouterr().err
        try:
            status = main(["kb", "delete", bad, "--yes"])
        except SystemExit as exit:  # "" is a missing NAME: a usage error
            status = exit.code
        assert status in (1, 2) and "知识库名称" in capsys.readouterr().err or bad == ""
    assert run(capsys, "kb", "delete", "cats")[0] == 1  # not a terminal: asks for --yes, deletes nothing
    status, out, _ = run(capsys, "kb", "delete", "cats", "--yes")
    assert status == 0 and not (data / "cats").exists()
    assert (data / "trains").is_dir() and keep.read_text(encoding="utf-8") and docs.is_dir()
    assert [r["name"] for r in json.loads(run(capsys, "kb", "list", "--json")[1])] == ["default", "trains"]
    assert run(capsys, "kb", "delete", "cats", "--yes")[0] == 1  # already gone


def test_help_is_short_and_each_command_shows_its_own_options(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 40 and "SETTING_" not in out
    for command in ("index", "add", "search", "ask", "chat", "app", "kb", "settings", "eval"):
        assert f"\n    {command}" in out
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 40 and "SETTING_" not in out and "--host" not in out and "--port" not in out
    assert "-k N" in out and "--kb NAME" in out and "Passages returned per question" in out and "--set" in out
    with pytest.raises(SystemExit):
        main(["app", "--help"])
    out = capsys.readouterr().out
    assert "--host" in out and "--port" in out and "--share" in out and "--chunk-size" not in out


def test_settings_command_lists_every_setting(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.settings import Settings

    monkeypatch.setenv("RAG_K", "7")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    status, out, _ = run(capsys, "settings")
    assert status == 0 and "RAG_K = 7" in out and "sk-secret-value" not in out
    rows = json.loads(run(capsys, "settings", "--json")[1])
    assert [row["name"] for row in rows] == list(Settings.model_fields)
    assert next(r for r in rows if r["name"] == "openai_api_key")["value"] == "(set)"
    with pytest.raises(SystemExit):
        main(["search", "黑龙江", "--set", "no_such=1"])
    assert "unknown setting 'no_such'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "黑龙江", "--set", "openai_api_key=sk-x"])  # secrets only from the environment

