"""With RAG_API_KEYS set the page asks for one of those keys; a read-only key may ask, not change the library.

The page and the API are served together on one port (as ``rag serve`` does), over a copy of the
seeds index; clients are real (httpx, ``gradio_client``) and talk HTTP to it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from api_serving import API_KEYS, RO_KEY, RW_KEY, serve_api
from gradio_client import Client, handle_file
from support import free_port

from rag.settings import Settings
from rag.startup import Startup
from rag.web.app import build_app, check_login, server_app
from rag.web.login import COOKIE, READ_ONLY_MESSAGE

NEWS = "白沙湾新闻\n\n白沙湾渔港今年新建了一座灯塔，灯塔高42米，是当地最高的建筑。\n"


@pytest.fixture(scope="module")
def site(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    index_dir = tmp_path_factory.mktemp("login") / "index"
    shutil.copytree(seed_index_dir, index_dir)
    settings = Settings(index_dir=index_dir, port=free_port(), api_keys=API_KEYS)
    startup = Startup(settings).start()
    app = server_app(build_app(startup), startup, settings)
    with serve_api(app) as url:
        assert startup.wait(300).state == "ready"
        yield url + "/"


def logged_in(url: str, key: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=60)
    response = http.post("login", data={"key": key})
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert COOKIE in http.cookies and key not in http.cookies[COOKIE]  # the cookie is not the key
    return http


def test_the_page_needs_a_login(site: str) -> None:
    page = httpx.get(site, headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert httpx.get(site + "config", timeout=30).status_code == 401  # Gradio's own routes too
    with pytest.raises(Exception):  # noqa: B017 - gradio_client raises its own errors for a 401
        Client(site, verbose=False)
    form = httpx.get(site + "login", timeout=30)
    assert form.status_code == 200 and "访问密钥" in form.text and 'type="password"' in form.text

    wrong = httpx.post(site + "login", data={"key": "not-a-key-0123456789"}, timeout=30)
    assert wrong.status_code == 401 and "密钥无效" in wrong.text and COOKIE not in wrong.cookies

    http = logged_in(site, RW_KEY)
    page = http.get("", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "新闻问答助手" in page.text
    assert http.get("v1/models").status_code == 401  # the API still wants its bearer key, not the page's cookie
    assert http.get("logout").status_code == 303
    assert http.get("", headers={"Accept": "text/html"}).status_code == 303  # logged out


def test_a_read_only_key_asks_but_cannot_change_the_library(site: str, tmp_path: Path) -> None:
    path = tmp_path / "白沙湾.txt"
    path.write_text(NEWS, encoding="utf-8")
    reader = Client(site, verbose=False, headers={"Authorization": f"Bearer {RO_KEY}"})
    writer = Client(site, verbose=False, headers={"Authorization": f"Bearer {RW_KEY}"})

    html, _ = reader.predict("广东省工信厅厅长是谁？", api_name="/chat")
    assert "涂高坤" in html
    rows, documents, _, _, _ = writer.predict([handle_file(path)], api_name="/upload")
    assert rows["data"][0][1] == "✓ 完成", rows
    doc_id = next(row[4] for row in documents["data"] if row[1] == "白沙湾.txt")

    other = tmp_path / "别的.txt"
    other.write_text("别的新闻\n\n别的渔港今年没有新建灯塔。\n", encoding="utf-8")
    _, documents, _, message, _ = reader.predict([handle_file(other)], api_name="/upload")
    assert message == READ_ONLY_MESSAGE and [row[1] for row in documents["data"]].count("别的.txt") == 0
    assert reader.predict(api_name="/rebuild")[2] == READ_ONLY_MESSAGE
    assert reader.predict("只读的库", api_name="/create_kb")[1] == READ_ONLY_MESSAGE
    documents, _, message, _ = reader.predict(doc_id, api_name="/delete")  # its list (from /upload) has the file
    assert message == READ_ONLY_MESSAGE and doc_id in [row[4] for row in documents["data"]]
    assert "42米" in reader.predict("白沙湾的灯塔有多高？", api_name="/ask")["text"]  # still there, and readable
    documents, _, message, _ = writer.predict(doc_id, api_name="/delete")
    assert "已删除" in message and doc_id not in [row[4] for row in documents["data"]]


def test_keys_and_a_user_login_or_a_public_link_do_not_mix() -> None:
    with pytest.raises(ValueError, match="auth_user"):
        check_login(Settings(api_keys=API_KEYS, auth_user="ann", auth_password="pw"))
    with pytest.raises(ValueError, match="--share"):
        check_login(Settings(api_keys=API_KEYS), share=True)
    check_login(Settings(api_keys=API_KEYS))
