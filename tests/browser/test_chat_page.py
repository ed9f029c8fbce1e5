"""End to end in headless Chromium: ask, follow a citation, upload a file, ask about it, delete it.

Runs ``python app.py`` in a subprocess over a copy of the session's seeds index and drives Debian's
Chromium with Playwright. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import app_process

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]

# The uploaded file: a news item whose headline and text carry markup that must show as text.
UPLOAD_NAME = "白沙湾 灯塔.md"
UPLOAD_TEXT = (
    "# 白沙湾新闻<img src=x onerror=alert(1)>\n\n"
    "白沙湾渔港今年新建了一座灯塔，灯塔高四十二米。<script>alert(1)</script>\n"
)


@pytest.fixture(scope="module")
def app_url(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """``python app.py`` on a free port over a private copy of the seeds index."""
    index_dir = tmp_path_factory.mktemp("browser") / "index"
    shutil.copytree(seed_index_dir, index_dir)
    log = tmp_path_factory.getbasetemp() / "app.log"
    # OCR at the server's own priority: on a busy test machine a lower-priority OCR may wait long.
    with app_process(env={"RAG_INDEX_DIR": str(index_dir), "RAG_OCR_NICE": "0"}, log=log, timeout=180) as app:
        yield app.url


@pytest.fixture()
def dialogs() -> list[str]:
    """Messages of JavaScript dialogs: any alert() means markup from a document was executed."""
    return []


@pytest.fixture()
def page(app_url, dialogs, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale="zh-CN",
        )
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(app_url)
        yield page
        context.close()


def ask(page, question: str, turn: int):
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    answer = page.locator(f"#turn-{turn} .rag-meta")  # the footer appears once the answer is complete
    answer.wait_for()
    return page.locator(f"#turn-{turn}")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_ask_follow_citation_upload_and_delete(page, dialogs, tmp_path):
    from playwright.sync_api import expect

    # 1. A question about the seeds: an answer with [1]; clicking it opens and shows the passage.
    turn = ask(page, "黑龙江的边境线有多长？", 0)
    expect(turn.locator(".rag-answer")).to_contain_text("2981公里")
    cite = turn.locator("a.rag-cite").first
    expect(cite).to_have_text("[1]")
    source = page.locator("#src-0-1")
    expect(source).not_to_have_attribute("open", "")
    cite.click()
    expect(source).to_have_attribute("open", "")
    expect(source.locator(".rag-passage mark")).to_be_visible()
    expect(source.locator(".rag-passage mark")).to_be_in_viewport()
    expect(source.locator(".rag-loc")).to_contain_text("行")
    shot(page, "chat.png")

    # 2. Upload a new file: per-file status, and it appears in the document list (markup as text).
    path = tmp_path / UPLOAD_NAME
    path.write_text(UPLOAD_TEXT, encoding="utf-8")
    page.get_by_role("tab", name="知识库").click()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    expect(page.locator("#upload-status")).to_contain_text("完成", timeout=90_000)
    expect(page.locator("#documents")).to_contain_text("白沙湾新闻<img src=x onerror=alert(1)>")
    shot(page, "library.png")

    # 3. Ask about it: the answer cites the uploaded file, whose markup shows as text.
    page.get_by_role("tab", name="问答").click()
    turn = ask(page, "白沙湾的灯塔有多高？", 1)
    expect(turn.locator(".rag-answer")).to_contain_text("四十二米")
    turn.locator("a.rag-cite").first.click()
    source = turn.locator("details.rag-source[open]")
    expect(source.locator(".rag-loc")).to_contain_text(UPLOAD_NAME)  # the name it was uploaded with
    expect(source.locator(".rag-passage")).to_contain_text("<script>alert(1)</script>")
    assert turn.locator("script, img").count() == 0
    shot(page, "upload-answer.png")

    # 4. Delete it: gone from the list, and from the next answer.
    page.get_by_role("tab", name="知识库").click()
    page.locator("#doc-select input").click()
    page.get_by_role("option", name=UPLOAD_NAME, exact=False).first.click()
    page.locator("#delete").click()
    expect(page.locator("#delete-question")).to_contain_text(UPLOAD_NAME)  # asks first
    page.locator("#delete-yes").click()
    expect(page.locator("#library-message")).to_contain_text("已删除")
    expect(page.locator("#documents")).not_to_contain_text("白沙湾")
    expect(page.locator("#upload-status")).to_contain_text("已删除")  # no longer "added"
    page.get_by_role("tab", name="问答").click()
    turn = ask(page, "白沙湾的灯塔有多高？", 2)
    expect(turn).not_to_contain_text(UPLOAD_NAME)
    expect(turn).not_to_contain_text("四十二米")

    assert dialogs == []


def test_scanned_upload_shows_pages_done_and_can_be_cancelled(page, tmp_path):
    """A four-page scan: the upload table counts the pages OCR'd; 取消上传 stops it and nothing is added."""
    from playwright.sync_api import expect

    import page_render as pr

    if pr.MISSING_FONTS:
        pytest.skip("needs Debian's CJK fonts (apt-get install fonts-noto-cjk fonts-wqy-microhei)")
    path = tmp_path / "扫描版.tiff"
    path.write_bytes(pr.multipage_tiff([pr.small_page()] * 4))
    page.get_by_role("tab", name="知识库").click()
    expect(page.locator("#documents")).to_contain_text(".txt")  # the list is filled
    documents = page.locator("#documents").inner_text()
    page.locator("#upload input[type=file]").set_input_files(str(path))
    expect(page.locator("#upload-status")).to_contain_text("/4 页", timeout=120_000)  # e.g. 文字识别 1/4 页
    shot(page, "upload-ocr-progress.png")
    page.locator("#upload-cancel").click()
    expect(page.locator("#upload-status")).to_contain_text("已取消", timeout=60_000)
    expect(page.locator("#library-message")).to_contain_text("上传已取消")
    assert page.locator("#documents").inner_text() == documents and "扫描版" not in documents  # unchanged
