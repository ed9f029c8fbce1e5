"""Load on the real server (CI size): users asking at once while files are uploaded and deleted, and
API clients (the official ``openai`` client) asking alongside page users.

``python app.py`` runs in a subprocess over a copy of the seeds index; users ask through ``/chat``
as the browser does, with tests/load_driver.py (shared with the full run, bench/bench_load.py:
50 users × 60 s, twice, then 50 API clients with 10 page users).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gradio_client import Client
from load_driver import (
    ApiClients,
    PhaseReport,
    Users,
    answer_text,
    api_baseline,
    baseline,
    library_work,
    news_files,
    together,
)
from support import app_process

USERS = 8
SECONDS = 10.0
#: Allowed growth of the server's RSS from after the warm-up to the end. Measured +41 to +45 MB for
#: this run: the working memory of 8 concurrent users and of indexing two files, which the allocator
#: keeps (the full run shows it levelling off), plus ~85 KB per Gradio session. 100 MB leaves room
#: for allocator noise and still fails on a leak of a few hundred KB per question or ~25 MB per upload.
RSS_BOUND_MB = 100
API_CLIENTS = 6
API_PAGE_USERS = 2


@pytest.fixture(scope="module")
def app(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    index_dir = tmp_path_factory.mktemp("load") / "index"
    shutil.copytree(seed_index_dir, index_dir)
    log = tmp_path_factory.getbasetemp() / "load_app.log"
    with app_process(["--index-dir", str(index_dir)], log=log, timeout=180) as process:
        yield process


def test_users_ask_while_files_are_uploaded_and_deleted(app, seed_qa: list[dict], tmp_path: Path) -> None:
    questions = [row["question"] for row in seed_qa[::6]]
    expected = baseline(app.url, questions)  # each answer with nobody else asking; warms the app up
    users = Users(app.url, USERS, questions)
    files = news_files(tmp_path, 2, paragraphs=30)
    phase = PhaseReport("ask+upload", USERS, SECONDS, rss_before_mb=app.rss_mb())
    users.run(phase, expected, during=library_work(app.url, files, deletes=1))
    phase.rss_after_mb = app.rss_mb()
    print(phase.summary())
    report = phase.to_dict()

    assert report["errors"] == 0, report["error_examples"]
    assert {s.user for s in phase.samples if s.served} == set(range(USERS))  # each was answered (how often: the machine)
    assert report["changed"] == 0, report["changed_examples"]  # no answer was disturbed by the indexing
    # (not whether each finished inside the phase: on a slow machine the last upload may end after it)
    assert [(op.kind, op.ok) for op in phase.library] == [("upload", True), ("delete", True), ("upload", True)], (
        report["library"]
    )
    # afterwards the file that was kept is answerable on the page, citing it; the deleted one is gone
    client = Client(app.url, verbose=False)
    kept, deleted = files[1], files[0]
    html, _ = client.predict(kept.question, api_name="/chat")
    assert kept.answer in answer_text(html) and f'<span class="rag-loc">{kept.place}新闻.' in html
    answer = client.predict(deleted.question, api_name="/ask")
    assert phase.library[0].doc_id not in [hit["doc_id"] for hit in answer["passages"]]
    assert report["rss_growth_mb"] < RSS_BOUND_MB, report


def test_api_clients_ask_alongside_page_users(app, seed_qa: list[dict]) -> None:
    questions = [row["question"] for row in seed_qa[::6]]
    expected = baseline(app.url, questions)
    api_expected = api_baseline(app.url, questions)
    page = Users(app.url, API_PAGE_USERS, questions)
    api = ApiClients(app.url, API_CLIENTS, questions)
    before = app.rss_mb()
    api_phase = PhaseReport("api+page: API", API_CLIENTS, SECONDS, rss_before_mb=before)
    page_phase = PhaseReport("api+page: page", API_PAGE_USERS, SECONDS, rss_before_mb=before)
    together(lambda: api.run(api_phase, api_expected), lambda: page.run(page_phase, expected))
    api_phase.rss_after_mb = page_phase.rss_after_mb = app.rss_mb()
    print(api_phase.summary(), page_phase.summary(), sep="\n")
    api_report, page_report = api_phase.to_dict(), page_phase.to_dict()

    for report in (api_report, page_report):
        assert report["errors"] == 0, report["error_examples"]
        assert report["changed"] == 0, report["changed_examples"]  # the same answers as when idle
    assert api_report["served"] >= API_CLIENTS and page_report["served"] >= API_PAGE_USERS  # everybody was answered
    assert {s.user % 2 for s in api_phase.served} == {0, 1}  # streamed and plain requests both
    assert api_report["rss_growth_mb"] < RSS_BOUND_MB, api_report
