"""The HTTP API (rag.api) driven by real clients over HTTP: the official ``openai`` client (sync and
streaming), LangChain's ``ChatOpenAI`` in an LCEL chain, and httpx for the error cases."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import httpx
import openai
import pytest
from api_serving import API_KEYS, RO_KEY, RW_KEY, serve_api
from pydantic import SecretStr

from rag import Assistant, Settings
from rag.api import SingleAssistant, create_api
from rag.api.keys import parse_keys

QUESTIONS = ["黑龙江的边境线有多长？", "去年江西外贸总值是多少？", "广东省工信厅厅长是谁？", "火星上有几座城市？"]
AUTH = {"Authorization": f"Bearer {RW_KEY}"}
MAX_FILE_MB = 0.1  # small, so the size limits are quick to reach


@pytest.fixture(scope="module")
def api_settings(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path = tmp_path_factory.mktemp("api") / "index"
    shutil.copytree(seed_index_dir, path)  # uploads and deletions change it
    return Settings(index_dir=path, api_keys=SecretStr(API_KEYS), max_file_mb=MAX_FILE_MB)


@pytest.fixture(scope="module")
def api_assistant(api_settings: Settings) -> Assistant:
    return Assistant.load(api_settings)


@pytest.fixture(scope="module")
def api_url(api_assistant: Assistant, api_settings: Settings):
    with serve_api(create_api(SingleAssistant(api_assistant), api_settings)) as url:
        yield url


@pytest.fixture()
def client(api_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{api_url}/v1", api_key=RW_KEY, max_retries=0)


@pytest.fixture()
def http(api_url: str):
    with httpx.Client(base_url=api_url, timeout=60) as session:
        yield session


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"]
    return body["error"]


# ---------------------------------------------------------------------------- the openai client
def test_models_list_the_knowledge_bases(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["default"]


@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_match_the_assistant(client: openai.OpenAI, seed_assistant: Assistant, question: str) -> None:
    expected = seed_assistant.ask(question)
    response = client.chat.completions.create(model="default", messages=[{"role": "user", "content": question}])
    assert response.choices[0].message.content == expected.text
    assert response.choices[0].finish_reason == "stop"
    extra = response.model_extra["rag"]
    assert extra["refused"] == expected.refused
    assert extra["citations"] == [c.to_dict() for c in expected.citations]


def test_citations_locate_their_quotes(client: openai.OpenAI, api_assistant: Assistant) -> None:
    response = client.chat.completions.create(model="default", messages=[{"role": "user", "content": QUESTIONS[0]}])
    text, citations = response.choices[0].message.content, response.model_extra["rag"]["citations"]
    assert citations and "[1]" in text
    for citation in citations:
        assert f"[{citation['n']}]" in text
        assert {"source", "title", "line_start", "line_end", "quote", "start", "end"} <= set(citation)
        document = api_assistant.knowledge.index.snapshot.documents[citation["doc_id"]].document
        assert document.text[citation["start"] : citation["end"]] == citation["text"]


def test_streaming_matches_the_assistant(client: openai.OpenAI, seed_assistant: Assistant) -> None:
    expected = seed_assistant.ask(QUESTIONS[1])
    chunks = list(
        client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": QUESTIONS[1]}], stream=True
        )
    )
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert content == expected.text
    assert chunks[-1].choices[0].finish_reason == "stop"
    extra = chunks[-1].model_extra["rag"]
    assert extra["text"] == expected.text
    assert extra["citations"] == [c.to_dict() for c in expected.citations]
    assert all("rag" not in (chunk.model_extra or {}) for chunk in chunks[:-1])


def test_earlier_turns_are_the_history(client: openai.OpenAI, seed_assistant: Assistant) -> None:
    first = seed_assistant.ask("广东省工信厅厅长是谁？")
    follow_up = "他说了什么？"
    expected = seed_assistant.ask(follow_up, history=[("广东省工信厅厅长是谁？", first.text)])
    messages = [
        {"role": "system", "content": "ignored: the assistant answers from its documents"},
        {"role": "user", "content": "广东省工信厅厅长是谁？"},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": [{"type": "text", "text": follow_up}]},
    ]
    response = client.chat.completions.create(model="default", messages=messages)
    assert response.choices[0].message.content == expected.text
    assert response.model_extra["rag"]["rewritten_question"] == expected.rewritten_question
    assert expected.rewritten_question  # the follow-up was made standalone from the history


def test_k_and_mode_are_passed_through(client: openai.OpenAI, seed_assistant: Assistant) -> None:
    expected = seed_assistant.ask(QUESTIONS[0], k=1, mode="bm25")
    response = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": QUESTIONS[0]}], extra_body={"k": 1, "mode": "bm25"}
    )
    assert response.model_extra["rag"]["citations"] == [c.to_dict() for c in expected.citations]


def test_langchain_chat_openai_in_an_lcel_chain(api_url: str, seed_assistant: Assistant) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{api_url}/v1", api_key=RW_KEY, model="default", max_retries=0)
    chain = ChatPromptTemplate.from_messages([("user", "{question}")]) | llm | StrOutputParser()
    assert chain.invoke({"question": QUESTIONS[0]}) == seed_assistant.ask(QUESTIONS[0]).text
    assert "".join(chain.stream({"question": QUESTIONS[1]})) == seed_assistant.ask(QUESTIONS[1]).text


# ---------------------------------------------------------------------------- retrieve and documents
def test_retrieve_returns_passages_like_rag_search(http: httpx.Client, seed_knowledge) -> None:
    response = http.post("/v1/retrieve", headers=AUTH, json={"query": QUESTIONS[0], "k": 3})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == [hit.to_dict() for hit in seed_knowledge.search(QUESTIONS[0], k=3)]


def test_upload_list_ask_delete(http: httpx.Client, client: openai.OpenAI, api_settings: Settings) -> None:
    text = "青禾镇新闻\n\n青禾镇今年新建了一座跨河大桥，全长四百八十米，于十月通车。\n".encode()
    name = "<b>青禾</b>镇.txt"
    response = http.post("/v1/documents", headers=AUTH, files={"files": (name, text, "text/plain")})
    assert response.status_code == 200, response.text
    (result,) = response.json()["data"]
    assert result["ok"] and result["name"] == name and result["chunks"] >= 1
    doc_id = result["id"]
    listed = {d["id"]: d for d in http.get("/v1/documents", headers=AUTH).json()["data"]}
    assert doc_id in listed and "/" not in listed[doc_id]["name"] and "<" not in listed[doc_id]["name"]
    saved = api_settings.index_dir / "uploads" / listed[doc_id]["name"]
    assert saved.read_bytes() == text

    answer = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "青禾镇的跨河大桥全长多少米？"}]
    )
    assert "四百八十米" in answer.choices[0].message.content
    assert answer.model_extra["rag"]["citations"][0]["doc_id"] == doc_id

    again = http.post("/v1/documents", headers=AUTH, files={"files": ("copy.txt", text)})
    assert again.status_code == 200 and again.json()["data"][0]["id"] == doc_id  # the same content, not twice

    deleted = http.delete(f"/v1/documents/{doc_id}", headers=AUTH)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert doc_id not in {d["id"] for d in http.get("/v1/documents", headers=AUTH).json()["data"]}
    assert not saved.exists()
    assert _error(http.delete(f"/v1/documents/{doc_id}", headers=AUTH))["code"] == "document_not_found"


def _state(http: httpx.Client, settings: Settings) -> tuple:
    uploads = settings.index_dir / "uploads"
    files = sorted(p.name for p in uploads.iterdir()) if uploads.is_dir() else []
    return http.get("/v1/documents", headers=AUTH).json()["data"], files, (settings.index_dir / "CURRENT").read_bytes()


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        ("virus.exe", b"MZ\x90\x00", 400, "不支持的文件类型"),
        ("empty.txt", b"", 400, "文件是空的"),
        ("binary.txt", bytes(range(256)) * 8, 400, "二进制"),
        ("big.txt", "新闻".encode() * int(MAX_FILE_MB * 1024 * 1024 / 5), 413, "文件过大"),
    ],
)
def test_failed_uploads_change_nothing(
    http: httpx.Client, api_settings: Settings, name: str, data: bytes, status: int, message: str
) -> None:
    before = _state(http, api_settings)
    response = http.post("/v1/documents", headers=AUTH, files={"files": (name, data)})
    assert response.status_code == status, response.text
    assert message in _error(response)["message"] and name in _error(response)["message"]
    assert _state(http, api_settings) == before


def test_upload_body_over_the_limit_is_413(http: httpx.Client, api_settings: Settings) -> None:
    before = _state(http, api_settings)
    data = b"a" * (5 * api_settings.max_file_bytes)
    response = http.post("/v1/documents", headers=AUTH, files={"files": ("huge.txt", data)})
    assert response.status_code == 413 and _error(response)["code"] == "request_too_large"
    assert _state(http, api_settings) == before


# ---------------------------------------------------------------------------- access
def test_keys_are_required(http: httpx.Client, api_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789abcdef"}, {"Authorization": RW_KEY}):
        for method, path in (
            ("GET", "/v1/models"),
            ("POST", "/v1/chat/completions"),
            ("POST", "/v1/retrieve"),
            ("GET", "/v1/documents"),
            ("POST", "/mcp"),
        ):
            response = http.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            error = _error(response)
            assert error["code"] in ("missing_api_key", "invalid_api_key")
            assert "wrong-key" not in response.text and RW_KEY not in response.text  # never echoed
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{api_url}/v1", api_key="wrong-key-0123456789abcdef", max_retries=0).models.list()
    assert http.get("/v1/models", headers=AUTH).status_code == 200
    assert "wrong-key" not in caplog.text and RW_KEY not in caplog.text  # never logged


def test_read_only_keys_read_but_cannot_write(http: httpx.Client, api_settings: Settings, api_url: str) -> None:
    read_only = {"Authorization": f"Bearer {RO_KEY}"}
    assert http.get("/v1/documents", headers=read_only).status_code == 200
    ro_client = openai.OpenAI(base_url=f"{api_url}/v1", api_key=RO_KEY, max_retries=0)
    assert ro_client.chat.completions.create(model="default", messages=[{"role": "user", "content": QUESTIONS[0]}])
    before = _state(http, api_settings)
    upload = http.post("/v1/documents", headers=read_only, files={"files": ("a.txt", "新的文档内容。".encode())})
    assert upload.status_code == 403 and _error(upload)["code"] == "read_only_key"
    doc_id = before[0][0]["id"]
    delete = http.delete(f"/v1/documents/{doc_id}", headers=read_only)
    assert delete.status_code == 403
    assert _state(http, api_settings) == before


def test_key_syntax() -> None:
    keys = parse_keys(SecretStr(" a" * 0 + "first-key-0123456789, ro:second-key-0123456789 ,rw:third-key-0123456789,"))
    assert [(k.secret, k.read_only) for k in keys] == [
        ("first-key-0123456789", False),
        ("second-key-0123456789", True),
        ("third-key-0123456789", False),
    ]
    assert "first-key" not in repr(keys)
    for bad in ("short", ",,", "ro:short-but-ok,long-enough-key-0123"):
        with pytest.raises(ValueError) as caught:
            parse_keys(bad)
        assert "short" not in str(caught.value).replace("shorter", "")
    assert parse_keys(None) == [] and parse_keys("") == []


# ---------------------------------------------------------------------------- bad input
def test_unknown_model_is_404(client: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": QUESTIONS[0]}])
    assert "nope" in str(caught.value) and "default" in str(caught.value)
    assert (
        _error(http.post("/v1/retrieve", headers=AUTH, json={"query": "x", "kb": "nope"}))["code"] == "model_not_found"
    )
    assert http.get("/v1/documents?kb=nope", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"model": "default", "messages": [', "not valid JSON"),
        (b"[1, 2]", "Invalid request"),
        (json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(), "model"),
        (json.dumps({"model": "default", "messages": []}).encode(), "messages is empty"),
        (json.dumps({"model": "default", "messages": [{"role": "bot", "content": "hi"}]}).encode(), "role"),
        (json.dumps({"model": "default", "messages": [{"role": "user", "content": "  "}]}).encode(), "问题不能为空"),
        (
            json.dumps({"model": "default", "messages": [{"role": "assistant", "content": "hi"}]}).encode(),
            "last message",
        ),
        (json.dumps({"model": "default", "messages": [{"role": "user", "content": "长" * 1001}]}).encode(), "问题太长"),
        (json.dumps({"model": "default", "k": 0, "messages": [{"role": "user", "content": "hi"}]}).encode(), "k 必须"),
        (
            json.dumps({"model": "default", "k": 2.5, "messages": [{"role": "user", "content": "hi"}]}).encode(),
            "k 必须",
        ),
        (
            json.dumps({"model": "default", "mode": "x", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            "mode",
        ),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_bad_chat_bodies_are_400(http: httpx.Client, body: bytes, message: str, stream: bool) -> None:
    if stream and body.startswith(b"{") and b'"messages": [' not in body[-3:]:
        body = body[:-1] + b', "stream": true}'
    response = http.post("/v1/chat/completions", headers={**AUTH, "Content-Type": "application/json"}, content=body)
    assert response.status_code == 400, response.text
    assert message in _error(response)["message"]


def test_bad_retrieve_bodies_are_400(http: httpx.Client) -> None:
    for body, message in (
        ({"query": ""}, "问题不能为空"),
        ({"query": "x" * 1001}, "问题太长"),
        ({"query": "边境线", "k": 101}, "k 必须"),
        ({"question": "边境线"}, "query"),
    ):
        response = http.post("/v1/retrieve", headers=AUTH, json=body)
        assert response.status_code == 400 and message in _error(response)["message"], response.text


def test_ten_megabyte_body_is_413(http: httpx.Client) -> None:
    huge = json.dumps({"model": "default", "messages": [{"role": "user", "content": "长" * (10 * 1024 * 1024)}]})
    response = http.post("/v1/chat/completions", headers=AUTH, content=huge.encode())
    assert response.status_code == 413 and _error(response)["code"] == "request_too_large"

    def chunked():  # no Content-Length: the body is counted as it arrives
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    response = http.post(
        "/v1/chat/completions", headers={**AUTH, "Content-Type": "application/json"}, content=chunked()
    )
    assert response.status_code == 413 and _error(response)["code"] == "request_too_large"
    assert http.post("/mcp", headers=AUTH, content=huge.encode()).status_code == 413


# ---------------------------------------------------------------------------- streams that clients abandon
def test_a_client_leaving_mid_stream_frees_its_slot(seed_knowledge, chat_server) -> None:
    """One LLM slot: streams abandoned mid-answer must each give it back (and close the LLM's connection)."""
    settings = seed_knowledge.settings.with_overrides(
        generator="openai",
        openai_base_url=chat_server.base_url,
        llm_concurrency=1,
        llm_timeout=300,
        llm_max_chars=100_000,
    )
    assistant = Assistant(seed_knowledge, settings)
    body = {"model": "default", "stream": True, "messages": [{"role": "user", "content": QUESTIONS[0]}]}
    with (
        serve_api(create_api(SingleAssistant(assistant), settings)) as url,
        httpx.Client(base_url=url, timeout=120) as http,
    ):
        chat_server.mode, chat_server.max_seconds = "endless", 600  # only a closed connection ends these streams
        for _ in range(3):  # more than the one slot
            with http.stream("POST", "/v1/chat/completions", json=body) as response:  # no keys configured here
                assert response.status_code == 200
                lines = response.iter_lines()
                pieces = [next(lines) for _ in range(8)]
                assert any(chat_server.piece in line for line in pieces)
            # a generous bound for a loaded machine, well before llm_timeout or max_seconds would end the stream
            assert chat_server.wait_until(lambda fake: fake.open_streams == 0, timeout=90)
        chat_server.mode = "ok"
        chat_server.reply = "黑龙江拥有2981公里的漫长边境线[1]。"
        response = http.post("/v1/chat/completions", json={**body, "stream": False})
        assert response.status_code == 200
        assert "2981" in response.json()["choices"][0]["message"]["content"]


def test_a_stream_the_citation_check_changes_ends_with_the_checked_answer(seed_knowledge, chat_server) -> None:
    """An LLM draft without citations is streamed, then replaced by the refusal: the stream says so."""
    from rag.answer import REFUSAL
    from rag.api.chat import CHECKED

    settings = seed_knowledge.settings.with_overrides(generator="openai", openai_base_url=chat_server.base_url)
    chat_server.reply = "火星上有三座城市。"  # cites nothing
    client_body = {"model": "default", "messages": [{"role": "user", "content": "火星上有几座城市？"}]}
    with serve_api(create_api(SingleAssistant(Assistant(seed_knowledge, settings)), settings)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        chunks = list(client.chat.completions.create(**client_body, stream=True))
        whole = client.chat.completions.create(**client_body)
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert content == "火星上有三座城市。" + CHECKED + REFUSAL
    assert chunks[-1].model_extra["rag"]["text"] == REFUSAL and chunks[-1].model_extra["rag"]["refused"]
    assert whole.choices[0].message.content == REFUSAL
