"""The web page's helpers (rendering, uploads, library) and the Gradio app itself over loopback."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError
from support import free_port, serve

import app
from rag import Answer, Chunk, Citation, Hit, KnowledgeBase, Settings
from rag.assistant import Assistant
from rag.web.library import delete_document, document_rows, rebuild
from rag.web.render import Turn, answer_html, conversation_html, passage_html
from rag.web.uploads import UPLOADS_DIR, add_upload, safe_name, uploaded_files

ROOT = Path(__file__).resolve().parent.parent

EVIL = "<script>alert(1)</script> 和 <img src=x onerror=alert(1)>"


def make_chunk(clean: str, *, title: str = "标题", source: str = "seeds/a.txt", chunk_id: str = "c1") -> Chunk:
    return Chunk(chunk_id, "d1", source, clean, clean, clean, title, 0, len(clean), 3, 7)


def make_answer(text: str, citations: list[Citation], **fields) -> Answer:
    passages = [Hit(c.chunk, 1.0, rank=i + 1) for i, c in enumerate(citations)]
    return Answer(
        question=fields.pop("question", "问题？"),
        text=text,
        refused=False,
        citations=citations,
        passages=passages,
        **fields,
    )


def tags(html: str) -> set[str]:
    return {name.lower() for name in re.findall(r"<([a-zA-Z]+)", html)}


# ---------------------------------------------------------------------------- rendering
def test_markers_link_to_their_sources_and_quote_is_marked():
    chunk = make_chunk("第一句。李强3月13日在北京调研。第三句。", title="李强在北京调研时强调")
    answer = make_answer("3月13日[1]。另见[2]。", [Citation(1, chunk, quote="李强3月13日在北京调研。")])
    html = answer_html(answer, turn=4)
    assert '<a class="rag-cite" href="#src-4-1" data-n="1">[1]</a>' in html
    assert "[2]" in html and 'href="#src-4-2"' not in html  # no such citation: stays text
    assert '<details class="rag-source" id="src-4-1">' in html
    assert "<mark>李强3月13日在北京调研。</mark>" in html
    assert "李强在北京调研时强调" in html and "a.txt · 第 3–7 行" in html


def test_document_text_is_escaped_everywhere():
    chunk = make_chunk(f"前文。{EVIL}。后文。", title=EVIL, source=f"uploads/{EVIL}.txt")
    answer = make_answer(
        f"答案{EVIL}[1]",
        [Citation(1, chunk, quote=f"{EVIL}。")],
        question=EVIL,
        rewritten_question=EVIL + "？",
        note=EVIL,
    )
    html = conversation_html([Turn(EVIL, answer), Turn(EVIL, partial=EVIL), Turn(EVIL, error=EVIL)])
    assert "script" not in tags(html) and "img" not in tags(html)
    assert "onerror=alert(1)" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert passage_html(chunk, "不在文中") == passage_html(chunk, "")


def test_refusal_looks_like_a_refusal():
    hit = Hit(make_chunk("无关的段落。"), 0.1, rank=1)
    answer = Answer(question="谁？", text="根据现有资料无法回答该问题。", refused=True, passages=[hit])
    html = answer_html(answer, turn=0)
    assert "rag-refusal" in html and "未找到依据" in html
    assert "rag-cite" not in html and "rag-error" not in html
    assert "检索到的段落（1）" in html  # what was searched is still inspectable


def test_rewritten_question_is_shown_only_when_it_differs():
    chunk = make_chunk("黑龙江的边境线长2981公里。")
    same = make_answer("2981公里[1]", [Citation(1, chunk)], question="边境线多长？", rewritten_question="边境线多长？")
    changed = make_answer(
        "2981公里[1]", [Citation(1, chunk)], question="那边境线呢？", rewritten_question="黑龙江的边境线有多长？"
    )
    assert "改写后的问题" not in answer_html(same, 0)
    assert "黑龙江的边境线有多长？" in answer_html(changed, 0)


def test_each_turn_has_its_own_source_ids():
    chunk = make_chunk("一段话。")
    turns = [
        Turn("一？", make_answer("甲[1]", [Citation(1, chunk)])),
        Turn("二？", make_answer("乙[1]", [Citation(1, chunk)])),
    ]
    html = conversation_html(turns)
    assert html.count('id="src-0-1"') == 1 and html.count('id="src-1-1"') == 1
    assert 'href="#src-1-1"' in html


# ---------------------------------------------------------------------------- uploads
@pytest.mark.parametrize(
    ("original", "pattern"),
    [
        ("../../etc/passwd.txt", r"passwd_[0-9a-f]{8}\.txt"),
        ("C:\\Users\\me\\新闻 稿(1).MD", r"新闻_稿_1_[0-9a-f]{8}\.md"),
        ("<script>.html", r"script_[0-9a-f]{8}\.html"),
        ("...", r"file_[0-9a-f]{8}"),
        ("报道", r"报道_[0-9a-f]{8}"),
    ],
)
def test_safe_name(original, pattern):
    name = safe_name(original, b"data")
    assert re.fullmatch(pattern, name), name
    assert "/" not in name and "\\" not in name and not name.startswith(".")


def test_safe_name_differs_by_content():
    assert safe_name("a.txt", b"one") != safe_name("a.txt", b"two")
    assert safe_name("a.txt", b"one") == safe_name("a.txt", b"one")


@pytest.fixture()
def knowledge(writable_index_dir: Path) -> KnowledgeBase:
    return KnowledgeBase.open(Settings(index_dir=writable_index_dir, max_file_mb=0.01), build_if_missing=False)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "incoming" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


NEWS = "青山镇新闻\n\n青山镇今年新建了一座图书馆，馆藏图书三万册，由镇长王小明揭牌。\n"


def test_upload_is_saved_safely_indexed_and_searchable(knowledge, tmp_path):
    before = len(knowledge.documents)
    result = add_upload(knowledge, write(tmp_path, "青山 news.txt", NEWS.encode("gb18030")), "../青山 news.txt")
    assert result.ok and result.chunks >= 1, result.message
    assert len(knowledge.documents) == before + 1
    saved = list((knowledge.index.path / UPLOADS_DIR).iterdir())
    assert [p.name for p in saved] == [safe_name("青山 news.txt", NEWS.encode("gb18030"))]
    hits = knowledge.search("青山镇图书馆馆藏多少册？", k=1)
    assert hits[0].chunk.doc_id == result.doc_id and "三万册" in hits[0].chunk.clean
    again = add_upload(knowledge, write(tmp_path, "copy.txt", NEWS.encode("gb18030")))
    assert again.ok and "已在知识库中" in again.message and len(knowledge.documents) == before + 1
    assert len(list((knowledge.index.path / UPLOADS_DIR).iterdir())) == 1


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("big.txt", NEWS.encode() * 200, "文件过大"),
        ("tool.exe", b"MZ\x90\x00", "不支持的文件类型"),
        ("blob.txt", b"\x00\x01\x02" * 100, "二进制"),
        ("empty.md", b"   \n", "空"),
        ("broken.docx", b"PK not a zip", "docx"),
    ],
)
def test_failed_upload_leaves_the_index_as_it_was(knowledge, tmp_path, name, data, message):
    version = knowledge.index.snapshot.version
    result = add_upload(knowledge, write(tmp_path, name, data))
    assert not result.ok and message in result.message
    assert knowledge.index.snapshot.version == version
    uploads = knowledge.index.path / UPLOADS_DIR
    assert not uploads.exists() or not any(uploads.iterdir())


# ---------------------------------------------------------------------------- library
def test_delete_removes_passages_and_saved_file(knowledge, tmp_path):
    result = add_upload(knowledge, write(tmp_path, "town.txt", NEWS.encode()))
    assert any(row[4] == result.doc_id for row in document_rows(knowledge))
    message = delete_document(knowledge, result.doc_id)
    assert "已删除" in message
    assert all(hit.chunk.doc_id != result.doc_id for hit in knowledge.search("青山镇图书馆", k=5))
    assert not any((knowledge.index.path / UPLOADS_DIR).iterdir())
    assert delete_document(knowledge, result.doc_id) == "该文档已不在知识库中"


def test_rebuild_reads_corpus_and_uploads(writable_index_dir, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one.txt").write_text("河西村新闻\n\n河西村修好了一条三公里长的水泥路。\n", encoding="utf-8")
    knowledge = KnowledgeBase.open(Settings(index_dir=writable_index_dir, corpus=[corpus]), build_if_missing=False)
    uploaded = add_upload(knowledge, write(tmp_path, "town.txt", NEWS.encode()))
    report = rebuild(knowledge)
    assert not report.errors
    sources = sorted(Path(r.document.source).name for r in knowledge.documents)
    assert sources == sorted(["one.txt", safe_name("town.txt", NEWS.encode())])
    assert uploaded.doc_id in {r.document.id for r in knowledge.documents}
    assert knowledge.search("河西村的水泥路多长？", k=1)[0].chunk.source.endswith("one.txt")
    with pytest.raises(FileNotFoundError):
        rebuild(
            KnowledgeBase.open(
                Settings(index_dir=writable_index_dir, corpus=[tmp_path / "gone"]), build_if_missing=False
            )
        )


def test_uploads_are_shown_under_the_name_the_user_gave(writable_index_dir, tmp_path):
    knowledge = KnowledgeBase.open(Settings(index_dir=writable_index_dir, corpus=[ROOT / "seeds"]), build_if_missing=False)
    data = "<h1>青山镇新闻</h1><p>青山镇今年新建了一座图书馆，馆藏图书三万册。</p>".encode()
    name = "<b>粗体</b>新闻.html"
    result = add_upload(knowledge, write(tmp_path, "gradio-copy.html", data), name)
    assert result.ok, result.message
    stored = knowledge.index.snapshot.documents[result.doc_id].document
    assert stored.source == f"{UPLOADS_DIR}/{safe_name(name, data)}" and stored.display_name == name
    assert [row[1] for row in document_rows(knowledge) if row[4] == result.doc_id] == [name]
    hit = knowledge.search("青山镇图书馆馆藏多少册？", k=1)[0]
    html = answer_html(make_answer("三万册[1]。", [Citation(1, hit.chunk)]), 0, {result.doc_id: name})
    assert "&lt;b&gt;粗体&lt;/b&gt;新闻.html · 第" in html and "b" not in tags(html)
    rebuild(knowledge)  # the name survives a rebuild from the saved files
    assert knowledge.index.snapshot.documents[result.doc_id].document.display_name == name
    assert KnowledgeBase.open(knowledge.settings, build_if_missing=False).documents  # and a reopen
    assert delete_document(knowledge, result.doc_id).startswith(f"已删除 {name}")
    # what the page's upload event receives: Gradio's copy and the name the browser sent
    assert uploaded_files([{"path": "/tmp/gradio/x/b粗体b新闻.html", "orig_name": name}]) == [
        ("/tmp/gradio/x/b粗体b新闻.html", name)
    ]


# ---------------------------------------------------------------------------- the Gradio app over loopback
@pytest.fixture(scope="module")
def server(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The app on a free loopback port, over a private copy of the seeds index."""
    index_dir = tmp_path_factory.mktemp("app") / "index"
    shutil.copytree(seed_index_dir, index_dir)
    with serve(Assistant.load(Settings(index_dir=index_dir, port=free_port()))) as url:
        assert url.startswith("http://127.0.0.1:")
        yield url


@pytest.fixture()
def client(server: str) -> Client:
    return Client(server, verbose=False)


def test_chat_streams_a_cited_answer_and_uses_the_conversation(client):
    job = client.submit("黑龙江的边境线有多长？", api_name="/chat")
    html, _ = job.result()
    outputs = job.outputs()
    assert len(outputs) >= 2 and "正在检索资料" in outputs[0][0]  # the question shows before the answer
    assert "2981公里" in html and '<a class="rag-cite" href="#src-0-1"' in html and 'id="src-0-1"' in html
    html, box = client.predict("那它2023年的货物贸易进出口总值是多少？", api_name="/chat")
    assert box == "" and 'id="turn-1"' in html and "2978.3亿元" in html
    assert "查看改写后的问题" in html and "黑龙江" in html.split("查看改写后的问题")[1]


def test_unanswerable_question_is_refused_not_an_error(client):
    html, _ = client.predict("火星的首都在哪里？", api_name="/chat")
    assert "rag-refusal" in html and "rag-error" not in html and "rag-cite" not in html


@pytest.mark.parametrize(
    ("question", "message"),
    [("黑龙江" * 3334, "问题太长"), ("😀🎉🔥", "没有可检索的文字"), ("\u200b\u200d", "没有可检索的文字")],
    ids=["10000-chars", "emoji-only", "invisible-only"],
)
def test_a_bad_question_gets_its_own_message(client, question, message):
    html, box = client.predict(question, api_name="/chat")
    assert "rag-error" in html and message in html and app.ERROR_MESSAGE not in html
    assert box == ""


def test_a_fractional_k_on_the_chat_endpoint_is_refused_not_rounded(client):
    html, _ = client.predict("黑龙江的边境线有多长？", 2.5, "hybrid", "extractive", "auto", "", "", "", api_name="/chat")
    assert "rag-error" in html and "1 到 100" in html


@pytest.mark.parametrize(("k", "message"), [(0, "1 到 100"), (-5, "1 到 100"), (10**6, "1 到 100")])
def test_the_ask_api_names_a_bad_k(client, k, message):
    with pytest.raises(AppError, match=message):
        client.predict("黑龙江的边境线有多长？", k, "hybrid", api_name="/ask")
    assert "2981公里" in client.predict("黑龙江的边境线有多长？", 100, "hybrid", api_name="/ask")["text"]


def test_upload_answer_and_delete(client, tmp_path):
    news = "白沙湾新闻\n\n白沙湾渔港今年新建了一座灯塔，灯塔高42米，是当地最高的建筑。<script>alert(1)</script><img src=x onerror=alert(1)>\n"
    name = "白沙湾 灯塔（第2版）.txt"  # stored as 白沙湾_灯塔_第2版_<hash>.txt, shown as named
    path = tmp_path / name
    path.write_text(news, encoding="utf-8")
    (tmp_path / "bad.exe").write_bytes(b"MZ")
    rows, documents, _, message, _ = client.predict(
        [handle_file(path), handle_file(tmp_path / "bad.exe")], api_name="/upload"
    )
    assert [row[:2] for row in rows["data"]] == [[name, "✓ 完成"], ["bad.exe", "✗ 失败"]]
    assert "不支持的文件类型" in rows["data"][1][2] and "已添加" in rows["data"][0][2]
    assert "1 个成功，1 个失败" in message
    doc_id = next(row[4] for row in documents["data"] if row[1] == name)  # shown as the user named it

    answer = client.predict("白沙湾的灯塔有多高？", api_name="/ask")
    assert not answer["refused"] and answer["citations"][0]["doc_id"] == doc_id
    assert answer["citations"][0]["source"].startswith("uploads/白沙湾_灯塔_第2版_")  # the stored name: internal
    html, _ = client.predict("白沙湾的灯塔有多高？", api_name="/chat")
    assert "42米" in html and "script" not in tags(html) and "img" not in tags(html)
    assert f"{name} · 第" in html  # the citation names the file as uploaded

    documents, _, message, rows = client.predict(doc_id, api_name="/delete")
    assert "已删除" in message and name in message and doc_id not in [row[4] for row in documents["data"]]
    assert rows["data"][0][:2] == [name, "已删除"]  # the upload table no longer says it was added
    answer = client.predict("白沙湾的灯塔有多高？", api_name="/ask")
    assert all(hit["doc_id"] != doc_id for hit in answer["passages"])


def test_chat_answers_while_an_upload_is_indexed(client, server, tmp_path):
    path = tmp_path / "long.txt"
    path.write_text(
        "".join(
            f"第{i}段\n\n长江沿岸第{i}个码头今年吞吐量增长了{i}成，码头工人共有{i * 7}名。\n\n" for i in range(400)
        ),
        encoding="utf-8",
    )
    upload = Client(server, verbose=False).submit([handle_file(path)], api_name="/upload")
    deadline = time.monotonic() + 60
    while not upload.outputs():  # the first update says the file is being indexed
        assert time.monotonic() < deadline and not upload.done()
        time.sleep(0.05)
    assert upload.outputs()[0][0]["data"][0][1] == "索引中…"
    html, _ = client.predict("广东省工信厅厅长是谁？", api_name="/chat")
    assert "涂高坤" in html
    assert not upload.done(), "the upload should still be indexing"
    assert upload.result()[0]["data"][0][1] == "✓ 完成"


def test_knowledge_bases_by_name_on_the_page(client, tmp_path):
    assert client.predict("../etc", api_name="/create_kb")[1].startswith("知识库名称无效")
    _, message, _ = client.predict("地方新闻", api_name="/create_kb")
    assert "已创建" in message
    assert "已存在" in client.predict("地方新闻", api_name="/create_kb")[1]
    with pytest.raises(AppError, match="还没有文档"):  # an empty knowledge base says so, it does not refuse
        client.predict("白沙湾的灯塔有多高？", 5, "hybrid", "地方新闻", api_name="/ask")
    html, _ = client.predict("灯塔有多高？", 5, "hybrid", "extractive", "auto", "", "", "", "地方新闻", api_name="/chat")
    assert "rag-error" in html and "还没有文档" in html

    path = tmp_path / "灯塔.txt"
    path.write_text("白沙湾新闻\n\n白沙湾渔港今年新建了一座灯塔，灯塔高42米，是当地最高的建筑。\n", encoding="utf-8")
    rows, documents, _, _, _ = client.predict([handle_file(path)], "地方新闻", api_name="/upload")
    assert rows["data"][0][1] == "✓ 完成" and [row[1] for row in documents["data"]] == ["灯塔.txt"]
    answer = client.predict("白沙湾的灯塔有多高？", 5, "hybrid", "地方新闻", api_name="/ask")
    assert "42米" in answer["text"] and len(answer["passages"]) == 1
    seeds = client.predict("白沙湾的灯塔有多高？", api_name="/ask")  # the default one does not have it
    assert all(hit["source"] != answer["passages"][0]["source"] for hit in seeds["passages"])
    with pytest.raises(AppError, match="不存在"):
        client.predict("灯塔？", 5, "hybrid", "没有这个库", api_name="/ask")


def test_command_line_and_environment(monkeypatch):
    monkeypatch.setenv("RAG_PORT", "8123")
    monkeypatch.setenv("RAG_AUTH_PASSWORD", "pw")  # secrets have no flags: they would show in `ps`
    args, settings = app.parse_args(["--host", "0.0.0.0", "--auth-user", "ann", "-k", "3"])
    assert (settings.host, settings.port, settings.k, settings.auth_user) == ("0.0.0.0", 8123, 3, "ann")
    assert settings.auth_password.get_secret_value() == "pw" and "pw" not in repr(settings)
    assert args.share is False
    assert Settings().host == "127.0.0.1"
    monkeypatch.delenv("RAG_AUTH_PASSWORD")
    with pytest.raises(SystemExit):
        app.parse_args(["--auth-user", "ann"])  # a login without a password is refused, not silently dropped


def test_login_is_required_when_configured(seed_knowledge):
    settings = Settings(index_dir=seed_knowledge.index.path, port=free_port(), auth_user="ann", auth_password="pw")
    with serve(Assistant(seed_knowledge, settings)) as url:
        with pytest.raises(AuthenticationError):
            Client(url, verbose=False)
        answer = Client(url, auth=("ann", "pw"), verbose=False).predict("广东省工信厅厅长是谁？", api_name="/ask")
        assert "涂高坤" in answer["text"]
