"""The server answers at once: while the knowledge base is built the page shows the progress in Chinese
and the API answers 503; then the page answers without a reload. A failure shows on the page.

The build is real (a corpus folder written here); it is held half-way by an observer of its progress
(:func:`rag.progress.observe`) so that the page can be looked at mid-build without depending on speed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from api_serving import serve_api
from gradio_client import Client
from support import app_process, free_port

from rag.progress import Step, observe
from rag.settings import Settings
from rag.startup import Startup, Status
from rag.store import read_manifest
from rag.web.app import build_app, server_app
from rag.web.status import status_html

NEWS = {
    "江城新闻.txt": "江城新闻\n\n江城今年新建了一座跨江大桥，大桥全长1860米，预计明年五月通车。\n",
    "山城新闻.md": "# 山城新闻\n\n山城的新图书馆藏书四十万册，每天开放十二个小时。\n",
    "海城新闻.txt": "海城新闻\n\n海城港今年的集装箱吞吐量达到了三百万标准箱，比去年增长一成。\n",
}


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name, text in NEWS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@contextmanager
def served(settings: Settings, *observers) -> Iterator[tuple[str, Startup]]:
    """The page and the API on one port, as ``rag serve`` runs them, with the build started under ``observers``."""
    startup = Startup(settings)
    app = server_app(build_app(startup), startup, settings)
    with ExitStack() as stack:
        for observer in observers:
            stack.enter_context(observe(observer))
        startup.start()  # the build's thread reports to the observers of this context
    with serve_api(app) as url:
        yield url + "/", startup


def test_the_page_answers_while_the_knowledge_base_is_built(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", corpus=[write_corpus(tmp_path / "news")], port=free_port())
    held, release = threading.Event(), threading.Event()
    seen: list[Step] = []

    def hold(step: Step) -> None:  # hold the build after the second document (the page shows 1/3 then)
        seen.append(step)
        if step.stage == "chunking" and step.done == 2:
            held.set()
            release.wait(120)

    with served(settings, hold) as (url, startup):
        try:
            assert held.wait(120), "the build did not start"
            page = httpx.get(url, timeout=30)
            assert page.status_code == 200 and "新闻问答助手" in page.text

            client = Client(url, verbose=False)  # one browser session, kept until the end
            status = client.predict(api_name="/status")
            assert status["state"] == "loading" and status["stage"] == "chunking"
            assert "正在建立知识库“default”：切分文档 第 1/3 篇" in status["message"]
            assert (status["done"], status["total"]) == (1, 3)
            html, _ = client.predict("江城的大桥有多长？", api_name="/chat")
            assert "rag-error" in html and "第 1/3 篇" in html and "请稍候" in html

            for path, body in [("v1/models", None), ("v1/chat/completions", {"model": "default", "messages": [
                {"role": "user", "content": "江城的大桥有多长？"}]})]:
                response = httpx.request("POST" if body else "GET", url + path, json=body, timeout=30)
                assert response.status_code == 503 and response.headers["retry-after"] == "5"
                error = response.json()["error"]
                assert error["code"] == "not_ready" and "第 1/3 篇" in error["message"]
        finally:
            release.set()
        assert startup.wait(300).state == "ready", startup.status()

        # the same session answers now, with no reload; the API too
        assert client.predict(api_name="/status")["state"] == "ready"
        html, _ = client.predict("江城的大桥有多长？", api_name="/chat")
        assert "1860米" in html and "rag-cite" in html
        models = httpx.get(url + "v1/models", timeout=30)
        assert models.status_code == 200 and "default" in [m["id"] for m in models.json()["data"]]
    # the page could follow every step: all documents chunked, all passages embedded
    stages = {step.stage: step for step in seen}
    assert stages["chunking"].done == 3 and stages["embedding"].done == stages["embedding"].total > 0


def test_nothing_to_index_is_shown_on_the_page(tmp_path: Path) -> None:
    corpus = tmp_path / "news"
    corpus.mkdir()
    (corpus / "tool.exe").write_bytes(b"MZ\x90\x00")  # no readable document
    settings = Settings(data_dir=tmp_path / "data", corpus=[corpus], port=free_port())
    with served(settings) as (url, startup):
        assert startup.wait(120).state == "failed"
        assert httpx.get(url, timeout=30).status_code == 200
        client = Client(url, verbose=False)
        status = client.predict(api_name="/status")
        assert status["state"] == "failed"
        assert "无法建立知识库“default”：语料中没有可读取的文件" in status["message"]
        assert "no index was created" in status["detail"]
        html, _ = client.predict("江城的大桥有多长？", api_name="/chat")
        assert "rag-error" in html and "语料中没有可读取的文件" in html and "请稍候" not in html
        response = httpx.get(url + "v1/models", timeout=30)
        assert response.status_code == 503 and response.json()["error"]["code"] == "knowledge_base_unavailable"
        assert "语料中没有可读取的文件" in response.json()["error"]["message"]
    assert not (tmp_path / "data" / "default" / "CURRENT").exists()  # no empty index was left


def test_python_app_py_shows_a_damaged_index_on_the_page(writable_index_dir: Path, tmp_path: Path) -> None:
    segment = read_manifest(writable_index_dir)[0]["segments"][-1]["name"]
    vectors = writable_index_dir / "segments" / segment / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-100])
    log = tmp_path / "app.log"
    with app_process(["--index-dir", str(writable_index_dir)], log=log, timeout=180, ready=False) as app:
        assert httpx.get(app.url, timeout=30).status_code == 200
        client = Client(app.url, verbose=False)
        deadline = time.monotonic() + 120  # opening fails within seconds; this only stops a hang
        while (status := client.predict(api_name="/status"))["state"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status["state"] == "failed" and "索引已损坏" in status["message"]
        assert "vectors.npy" in status["detail"] and "rag index" in status["detail"]
        assert httpx.get(app.url + "v1/models", timeout=30).status_code == 503
        assert app.process.poll() is None  # still serving the page that says what is wrong
    assert "vectors.npy" in log.read_text(encoding="utf-8")  # and the log says it too


def test_the_banner_escapes_what_it_shows() -> None:
    html = status_html(Status("failed", "无法打开知识库“<b>x</b>”", "<script>alert(1)</script>"))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert status_html(Status("ready", "")) == ""
