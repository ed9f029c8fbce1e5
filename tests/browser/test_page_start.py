"""In headless Chromium: with API keys the page asks for one; while the knowledge base is built it shows
the progress, then answers without a reload; a read-only key sees no upload or delete controls.

The server (page and API, one port) runs in this process over a corpus folder written here; the build is
held half-way by an observer of its progress, so the banner can be seen whatever the machine's speed.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from api_serving import API_KEYS, RO_KEY, serve_api
from support import free_port

from rag.progress import Step, observe
from rag.settings import Settings
from rag.startup import Startup
from rag.web.app import build_app, server_app

from test_chat_page import CHROMIUM, CHROMIUM_ARGS, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

NEWS = {
    "江城新闻.txt": "江城新闻\n\n江城今年新建了一座跨江大桥，大桥全长1860米，预计明年五月通车。\n",
    "山城新闻.txt": "山城新闻\n\n山城的新图书馆藏书四十万册，每天开放十二个小时。\n",
    "海城新闻.txt": "海城新闻\n\n海城港今年的集装箱吞吐量达到了三百万标准箱。\n",
}


def test_login_progress_then_answers_without_a_reload(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    corpus = tmp_path / "news"
    corpus.mkdir()
    for name, text in NEWS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", corpus=[corpus], port=free_port(), api_keys=API_KEYS)
    held, release = threading.Event(), threading.Event()

    def hold(step: Step) -> None:
        if step.stage == "chunking" and step.done == 2:
            held.set()
            release.wait(300)

    startup = Startup(settings)
    app = server_app(build_app(startup), startup, settings)
    with observe(hold):
        startup.start()
    with serve_api(app) as url, sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            assert held.wait(120)

            page.goto(url + "/")
            expect(page).to_have_url(url + "/login")  # the page wants a key
            page.fill("#key", "not-a-key-0123456789")
            page.click("button[type=submit]")
            expect(page.locator(".error")).to_contain_text("密钥无效")
            page.fill("#key", RO_KEY)
            page.click("button[type=submit]")

            banner = page.locator("#startup-status")
            expect(banner).to_contain_text("切分文档 第 1/3 篇")
            shot(page, "start-progress.png")
            page.get_by_role("tab", name="知识库").click()
            expect(page.locator("#library-message")).to_contain_text("只读密钥")
            expect(page.locator("#upload")).to_be_hidden()
            expect(page.locator("#delete")).to_be_hidden()
            page.get_by_role("tab", name="问答").click()
        finally:
            release.set()
        expect(banner).to_be_hidden(timeout=300_000)  # ready: the timer hid it, no reload
        box = page.locator("#question textarea")
        box.fill("江城的大桥有多长？")
        box.press("Enter")
        page.locator("#turn-0 .rag-meta").wait_for()
        expect(page.locator("#turn-0 .rag-answer")).to_contain_text("1860米")
        shot(page, "start-ready.png")
        browser.close()
