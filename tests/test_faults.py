"""Faults of the LLM endpoint: each one degrades to the extractive answer with a visible note.

The endpoint is a local fake server (conftest.FakeChatServer) that is down, slow, failing, garbled,
never-ending or reflects the API key; everything else is the real assistant and the real page
(served from this process over a private copy of the seeds index). No test here measures time: a
timeout shows as its note, and bench/bench_faults.py prints how long each fallback takes.
"""

from __future__ import annotations

import logging
import shutil
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from gradio_client import Client
from support import free_port, serve

import app
from rag import Assistant, Settings

QUESTION = "黑龙江的边境线有多长？"
TIMEOUT = 1.0  # llm_timeout of the assistant-level calls that are meant to time out
PATIENT = 60.0  # llm_timeout where a fault must show as itself, not as a timeout, however busy the machine
PAGE_TIMEOUT = 3.0  # llm_timeout of the page
SETTLE = 20.0  # at most this long for a closed connection to be noticed (only a hang waits it out)
SERVER_KEY = "sk-server-0f9e8d7c6b5a4"
USER_KEY = "sk-user-1a2b3c4d5e6f7"

#: fault → (the fake server's mode, or "down" for a closed port; what the note must say)
FAULTS = {
    "down": ("down", "无法连接"),
    "http_500": ("error", "HTTP 500"),
    "malformed_json": ("garbage", "无法解析"),
    "malformed_sse": ("bad_sse", "无法解析"),
    "slow": ("slow", "超时"),
    "never_ending": ("endless", "超时"),
    "keepalive_only": ("silent", "超时"),
    "runaway_length": ("endless", "过长"),
    "rejected_key": ("reflect", "HTTP 401"),
}


def endpoint(chat_server, fault: str) -> str:
    """Make the fake server misbehave as ``fault``; the base URL to use."""
    mode, _ = FAULTS[fault]
    chat_server.delay = 30.0
    chat_server.max_seconds = 10.0  # a stream nobody closes still ends (then the test fails on its note)
    if fault == "runaway_length":
        chat_server.interval = 0.0  # as fast as it can
    if mode == "down":
        return f"http://127.0.0.1:{free_port()}/v1"
    chat_server.mode = mode
    return chat_server.base_url


def assert_fallback(answer, fault: str) -> None:
    assert answer.generator == "extractive (fallback)", answer.text
    assert FAULTS[fault][1] in answer.note and "抽取式" in answer.note, answer.note
    assert answer.text.startswith("2981公里") and answer.citations


# ---------------------------------------------------------------------------- the assistant
@pytest.mark.parametrize("fault", FAULTS)
def test_assistant_falls_back_with_a_note(seed_assistant: Assistant, chat_server, fault: str) -> None:
    llm = {"generator": "openai", "openai_base_url": endpoint(chat_server, fault), "openai_api_key": "sk-test"}
    timeout = TIMEOUT if FAULTS[fault][1] == "超时" else PATIENT
    for streaming in (False, True):
        if streaming:
            *_, answer = seed_assistant.stream(QUESTION, **llm, llm_timeout=timeout, llm_max_chars=300)
        else:
            answer = seed_assistant.ask(QUESTION, **llm, llm_timeout=timeout, llm_max_chars=300)
        assert_fallback(answer, fault)
    # the connection of a stream that was given up is closed, not left running
    assert chat_server.wait_until(lambda server: server.open_streams == 0, SETTLE)


def test_closing_the_answer_stream_closes_the_connection(seed_assistant: Assistant, chat_server) -> None:
    chat_server.mode = "endless"
    llm = {"generator": "openai", "openai_base_url": chat_server.base_url, "openai_api_key": "sk-test"}
    stream = seed_assistant.stream(QUESTION, **llm, llm_timeout=30)
    assert next(stream) and next(stream)  # the answer is coming in
    assert chat_server.open_streams == 1
    stream.close()  # the reader went away
    assert chat_server.wait_until(lambda server: server.open_streams == 0, SETTLE)


def test_a_long_answer_within_the_limits_is_kept(seed_assistant: Assistant, chat_server) -> None:
    chat_server.reply = "黑龙江拥有2981公里的漫长边境线。[1]" * 8
    llm = {"generator": "openai", "openai_base_url": chat_server.base_url, "openai_api_key": "sk-test"}
    answer = seed_assistant.ask(QUESTION, **llm, llm_max_chars=len(chat_server.reply))
    assert answer.generator == "openai" and answer.note is None


# ---------------------------------------------------------------------------- the page
@pytest.fixture(scope="module")
def page(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The page, with a key configured on the server, answering LLM questions within PAGE_TIMEOUT."""
    index_dir = tmp_path_factory.mktemp("faults") / "index"
    shutil.copytree(seed_index_dir, index_dir)
    settings = Settings(index_dir=index_dir, port=free_port(), llm_timeout=PAGE_TIMEOUT, openai_api_key=SERVER_KEY)
    with serve(Assistant.load(settings)) as url:
        yield SimpleNamespace(url=url, index_dir=index_dir)


@pytest.fixture(scope="module")
def patient_page(seed_index_dir: Path):
    """The page with an LLM deadline no test waits for: what happens before it is not a race with it."""
    settings = Settings(index_dir=seed_index_dir, port=free_port(), llm_timeout=PATIENT)
    with serve(Assistant.load(settings)) as url:
        yield SimpleNamespace(url=url)


def llm_chat(client: Client, base_url: str, *, key: str = "", model: str = "m", question: str = QUESTION):
    """A ``/chat`` job asking the LLM at ``base_url`` (``model`` may name one of the fake server's modes)."""
    return client.submit(question, 5, "hybrid", "openai", "auto", base_url, model, key, api_name="/chat")


@pytest.mark.parametrize("fault", FAULTS)
def test_page_shows_the_extractive_answer_with_a_note(page, patient_page, chat_server, fault: str) -> None:
    # Only the timeouts wait for the page's deadline; the other faults must show as themselves, however slowly.
    client = Client((page if FAULTS[fault][1] == "超时" else patient_page).url, verbose=False)
    html, _ = llm_chat(client, endpoint(chat_server, fault), key=USER_KEY).result(timeout=60)
    note = html.split('<div class="rag-note">', 1)[-1].split("</div>", 1)[0]
    assert FAULTS[fault][1] in note and "抽取式" in note, html[:500]
    assert "2981公里" in html and "rag-error" not in html and "抽取式（备用）" in html


def test_page_answers_others_while_llm_calls_hang(patient_page, chat_server) -> None:
    """More LLM calls than the page's concurrency limit (4) hang; an extractive question is still answered,
    while they still hang (a starved question would wait for the LLM calls to time out)."""
    # Endless streams hold their threads and LLM slots as a hung server would, and, unlike a server that
    # never answers, let go as soon as their visitor leaves (the page's deadline is further than the test).
    chat_server.max_seconds = 2 * PATIENT
    clients = [Client(patient_page.url, verbose=False) for _ in range(7)]
    hanging = [llm_chat(c, chat_server.base_url, model="endless") for c in clients[:6]]
    try:
        assert chat_server.wait_until(lambda server: len(server.requests) >= len(hanging), PATIENT / 2)
        html, _ = clients[-1].predict("广东省工信厅厅长是谁？", api_name="/chat")
        assert "涂高坤" in html
        assert not any(job.done() for job in hanging), "answered only after LLM calls gave up"
    finally:
        for job in hanging:  # a visitor leaving closes the call (see the next test), so nothing outlives the test
            job.cancel()
    assert chat_server.wait_until(lambda server: server.open_streams == 0, SETTLE)


def test_leaving_the_page_mid_answer_closes_the_llm_connection(patient_page, chat_server) -> None:
    chat_server.max_seconds = 2 * PATIENT
    job = llm_chat(Client(patient_page.url, verbose=False), chat_server.base_url, model="endless")
    assert chat_server.wait_until(lambda server: server.open_streams == 1, PATIENT / 2)
    job.cancel()
    # closed by the cancel: the page's own deadline (PATIENT) and the server's (2 × PATIENT) are further away
    assert chat_server.wait_until(lambda server: server.open_streams == 0, SETTLE)


def test_api_keys_are_never_logged_echoed_or_indexed(
    seed_assistant: Assistant, seed_index_dir: Path, page, chat_server, caplog
) -> None:
    """The endpoint reflects the Authorization header into its error: the key must go no further."""
    caplog.set_level(logging.DEBUG)
    chat_server.mode = "reflect"
    answer = seed_assistant.ask(
        QUESTION, generator="openai", openai_base_url=chat_server.base_url, openai_api_key=USER_KEY
    )
    client = Client(page.url, verbose=False)
    typed, _ = llm_chat(client, chat_server.base_url, key=USER_KEY).result(timeout=30)
    # No key typed for an address the visitor chose: the server's key must not go there.
    configured, _ = llm_chat(client, chat_server.base_url, key="").result(timeout=30)
    sent = [headers.get("authorization") for headers in chat_server.headers]
    assert sent == [f"Bearer {USER_KEY}"] * 2 + ["Bearer not-needed"]  # it did get, and reflect, them

    shown = [answer.note, typed, configured]
    assert all("HTTP 401" in text for text in shown)
    for path in ("", "config", "gradio_api/info"):  # the page and what it tells the browser
        with urllib.request.urlopen(page.url + path) as response:
            shown.append(response.read().decode())
    logged = [caplog.text, *(record.getMessage() for record in caplog.records)]
    assert any("LLM call failed" in text for text in logged)
    files = [p for folder in (seed_index_dir, page.index_dir) for p in folder.rglob("*") if p.is_file()]
    assert files
    for key in (USER_KEY, SERVER_KEY):
        assert not any(key in text for text in shown), "a key is shown"
        assert not any(key in text for text in logged), "a key is logged"
        assert not any(key.encode() in p.read_bytes() for p in files), "a key is in the index"


def test_a_follow_up_waits_at_most_one_budget_per_call(seed_assistant: Assistant, chat_server) -> None:
    """Rewriting the follow-up and answering it are two calls; each gives up on its own deadline."""
    chat_server.mode = "silent"  # even the non-streaming rewrite gets only keep-alives, for ever
    chat_server.max_seconds = 10.0
    answer = seed_assistant.ask(
        "它有多少户高新技术企业？",
        [("哈尔滨新区是什么时候获批设立的？", "2015年12月。[1]")],
        generator="openai",
        openai_base_url=chat_server.base_url,
        openai_api_key="sk-test",
        llm_timeout=TIMEOUT,
    )
    # one call each (no retries), each ending on its own deadline ("超时"); bench_faults.py times it
    assert len(chat_server.requests) == 2 and not chat_server.requests[0].get("stream")
    assert answer.rewritten_question == "哈尔滨新区有多少户高新技术企业？"  # the heuristic's
    assert answer.generator == "extractive (fallback)" and "超时" in answer.note and "1097户" in answer.text
    assert chat_server.wait_until(lambda server: server.open_streams == 0, SETTLE)


def test_the_server_key_goes_only_to_the_server_endpoint() -> None:
    configured = Settings(openai_base_url="http://llm.internal/v1", openai_api_key=SERVER_KEY)
    for settings in (configured, Settings(openai_api_key=SERVER_KEY)):
        same = app.llm_overrides(settings, settings.openai_base_url or "", "m", "")
        assert same["openai_api_key"] is None  # None keeps the configured key
        assert settings.with_overrides(**same).openai_api_key.get_secret_value() == SERVER_KEY
        elsewhere = app.llm_overrides(settings, "http://attacker.example/v1", "m", "")
        assert not settings.with_overrides(**elsewhere).openai_api_key
        typed = app.llm_overrides(settings, "http://attacker.example/v1", "m", USER_KEY)
        assert settings.with_overrides(**typed).openai_api_key.get_secret_value() == USER_KEY
