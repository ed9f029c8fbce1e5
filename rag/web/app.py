"""The chat page: ``rag app`` (or ``python app.py`` in a checkout) serves http://127.0.0.1:7860.

The server answers at once: the knowledge base is opened (on first run, the default one is built
from the bundled pages) in the background while the page shows the progress in Chinese, and becomes
usable without a reload when it is ready (:mod:`rag.startup`). The page's settings are
flags (``--port 8000``, ``rag app --help``) and environment variables (``RAG_PORT=8000``).
The page is thin: answers come from :class:`rag.assistant.Assistant`, documents from its
:class:`rag.knowledge.KnowledgeBase`, knowledge bases from :mod:`rag.registry`; HTML and upload
handling live in :mod:`rag.web`.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import anyio
import gradio as gr

from rag.assistant import Assistant
from rag.cli import PAGE_SETTINGS, add_page_options, settings_from_args, settings_parser
from rag.embeddings import EmbeddingError
from rag.knowledge import KnowledgeBaseNotFoundError, NothingToIndexError
from rag.registry import list_knowledge_bases
from rag.settings import Settings
from rag.startup import NotReadyError, Startup
from rag.store import IndexStoreError
from rag.types import Answer
from rag.validation import InputError
from rag.web.login import READ_ONLY_MESSAGE, LoginGuard, PageLogin
from rag.web.library import COLUMNS, delete_document, document_choices, document_rows, rebuild
from rag.web.render import CLICK_JS, CSS, Turn, conversation_html
from rag.web.status import STATUS_CSS, status_html, status_json
from rag.web.uploads import CANCELLED, UPLOAD_TYPES, UploadResult, add_upload_steps, uploaded_files

__all__ = [
    "ERROR_MESSAGE",
    "EXAMPLES",
    "FALLBACK_NOTE",
    "SESSION_CAPACITY",
    "build_app",
    "launch",
    "llm_overrides",
    "main",
    "parse_args",
    "serve",
]

log = logging.getLogger("rag.app")

#: Questions about the bundled pages (the default knowledge base), simplified and traditional.
EXAMPLES = [
    "去年江西外贸总值是多少？",
    "广东省工信厅厅长是谁？",
    "黑龍江的邊境線有多長？",
    "东盟已连续多少年是广西最大的贸易伙伴？",
    "长光卫星把“吉林一号”组网卫星数量提升到了多少颗？",
]
FALLBACK_NOTE = "生成服务出错，以下是抽取式回答。"
ERROR_MESSAGE = "抱歉，回答时出错了，请稍后再试。"
STREAM_INTERVAL = 0.1  # seconds between page updates while an answer streams in
UPLOAD_COLUMNS = ["文件", "状态", "说明"]
#: Browser sessions whose state the server keeps (least recently used dropped first). Gradio keeps a
#: copy of the page's config per session, about 85 KB for this page (measured), for 10 000 sessions by
#: default: memory would grow by up to ~850 MB with visitors. 1 000 bounds it near 85 MB.
SESSION_CAPACITY = 1000
STATUS_INTERVAL = 1.0  # seconds between updates of the start-up banner while the knowledge base loads
PAGE_CSS = CSS + STATUS_CSS


def history_of(turns: list[Turn]) -> list[dict[str, str]]:
    """The finished turns as chat messages, for follow-up questions."""
    messages: list[dict[str, str]] = []
    for turn in turns:
        if turn.answer is not None:
            messages += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": turn.answer.text}]
    return messages


def llm_overrides(settings: Settings, base_url: str, model: str, api_key: str) -> dict[str, str | None]:
    """The LLM settings a visitor typed. The server's own key goes only to the server's own endpoint:
    sent to an address a visitor typed, it would hand the key to whoever runs that address."""
    elsewhere = bool(base_url) and base_url != settings.openai_base_url
    return {
        "openai_base_url": base_url or None,
        "openai_model": model or None,
        "openai_api_key": api_key or ("" if elsewhere else None),  # "" means no key; None keeps the server's
    }


def close_when_idle(stream: Iterator, patience: float = 600) -> None:
    """Close a generator as soon as no thread is running it (a cancelled step may still be in progress)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return stream.close()
        except ValueError:  # "generator already executing"; its steps end at the latest at the LLM deadline
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _names(assistant: Assistant) -> dict[str, str]:
    """doc id -> the name an upload is shown under (documents without one show their file name)."""
    return {r.document.id: r.document.name for r in assistant.knowledge.documents if r.document.name}


def build_app(source: Assistant | Startup) -> gr.Blocks:
    """The page over an open assistant's knowledge base, or over a :class:`~rag.startup.Startup` that is
    still opening it (the page shows its progress meanwhile). The selector opens the other knowledge
    bases by name, through the Startup's assistants (which the HTTP API shares when both are served).

    With ``settings.api_keys``, a read-only key's visitor cannot change the library (the login itself is
    :func:`server_app`'s); ``ValueError`` for malformed keys."""
    startup = source if isinstance(source, Startup) else Startup.ready(source)
    settings = startup.settings
    first = settings.kb
    login = PageLogin.from_settings(settings)

    # Answers are worked out in threads: at most `concurrency_limit` at a time that use the CPU, and
    # apart from them at most `llm_concurrency` that wait on an LLM. The chat event itself has no
    # queue limit, so questions kept waiting by a slow LLM do not hold up the extractive answers.
    cpu = anyio.CapacityLimiter(settings.concurrency_limit)
    llm = anyio.CapacityLimiter(settings.llm_concurrency)

    def open_kb(name: str | None) -> Assistant:
        """The assistant of knowledge base ``name``; a problem is an InputError with a message for the page."""
        try:
            return startup.get(name or first)
        except NotReadyError as error:  # still loading (the banner shows how far), or it failed
            raise InputError(str(error).rstrip("…") + ("，请稍候再试" if error.status.state == "loading" else "")) from None
        except KeyError:  # never created: the same words as the CLI's
            raise InputError(str(KnowledgeBaseNotFoundError(name or first))) from None
        except (IndexStoreError, EmbeddingError, NothingToIndexError, ValueError) as error:
            log.warning("cannot open knowledge base %r: %s", name, error)
            raise InputError(f"无法打开知识库“{name}”：{error}") from error

    async def chat(
        question: str,
        turns: list[Turn],
        k: float,
        mode: str,
        generator: str,
        answer_script: str,
        base_url: str,
        model: str,
        api_key: str,
        kb: str | None = None,
    ) -> AsyncIterator[tuple[str, list[Turn], str]]:
        question = (question or "").strip()
        if not question:
            yield conversation_html(turns), turns, ""
            return
        history = history_of(turns)
        turn = Turn(question)
        turns = [*turns, turn]
        yield conversation_html(turns), turns, ""
        # k goes through as sent: the assistant refuses 2.5 or text with a message rather than rounding it.
        overrides = {"k": k, "mode": mode, "answer_script": answer_script, "generator": generator}
        limiter = cpu
        if generator == "openai":
            limiter = llm
            overrides |= llm_overrides(settings, base_url, model, api_key)
        shown = time.monotonic()
        stream = None
        chosen = None
        try:
            chosen = await anyio.to_thread.run_sync(open_kb, kb, limiter=cpu)
            stream = chosen.stream(question, history, **overrides)
            while (item := await anyio.to_thread.run_sync(next, stream, None, limiter=limiter)) is not None:
                if isinstance(item, Answer):
                    turn.answer = item
                    turn.names = _names(chosen)
                    continue
                turn.partial += item
                if time.monotonic() - shown >= STREAM_INTERVAL:
                    shown = time.monotonic()
                    yield conversation_html(turns), turns, ""
            stream = None
        except InputError as error:  # an overlong question, an empty knowledge base: say what is wrong
            turn.error = str(error)
        except Exception:  # the page shows a friendly message and the offline answer instead
            log.exception("answering failed; falling back to the extractive answer")
            stream = None
            turn.partial = ""
            try:
                assert chosen is not None
                extractive = functools.partial(chosen.ask, question, history, **{**overrides, "generator": "extractive"})
                turn.answer = await anyio.to_thread.run_sync(extractive, limiter=cpu)
                turn.answer.note = FALLBACK_NOTE + (f"（{turn.answer.note}）" if turn.answer.note else "")
                turn.names = _names(chosen)
            except Exception:
                log.exception("the extractive fallback failed too")
                turn.error = ERROR_MESSAGE
        finally:
            if stream is not None:  # the reader left mid-answer: stop it (an LLM's connection is closed)
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(close_when_idle, stream)
        if turn.answer is None and turn.error is None:
            turn.error = ERROR_MESSAGE
        yield conversation_html(turns), turns, ""

    def ask(question: str, k: int = settings.k, mode: str = settings.mode, kb: str = first) -> dict:
        """One answer as JSON (text with [n] markers, citations, passages); no conversation."""
        try:
            return open_kb(kb).ask(question, None, k=k, mode=mode).to_dict()
        except InputError as error:  # gr.Error reaches the caller with its message; other errors do not
            raise gr.Error(str(error)) from error

    def library_view(kb: str | None) -> tuple[list[list], dict]:
        try:
            knowledge = open_kb(kb).knowledge
        except InputError:
            return [], gr.update(choices=[], value=None)
        return document_rows(knowledge), gr.update(choices=document_choices(knowledge), value=None)

    def status_rows(uploads: list[list]) -> list[list]:
        """The upload table: file, status, message (the doc id stays in the state)."""
        return [row[:3] for row in uploads]

    def writable(request: gr.Request | None) -> None:
        """A read-only key's visitor changes nothing (the buttons are hidden too; this is the check)."""
        if not login.can_write(request):
            raise InputError(READ_ONLY_MESSAGE)

    running: dict[str, threading.Event] = {}  # the cancel event of each browser session's upload in progress

    def upload(
        files: list | None, kb: str | None, request: gr.Request, progress: gr.Progress = gr.Progress()
    ) -> Iterator[tuple]:
        items = uploaded_files(files)
        uploads = [[name, "等待", "", None] for _, name in items]
        try:
            writable(request)
            knowledge = open_kb(kb).knowledge
        except InputError as error:
            yield [], uploads, *library_view(kb), str(error), None
            return
        cancel = threading.Event()
        session = getattr(request, "session_hash", None) or ""
        running[session] = cancel
        results: list[UploadResult] = []
        try:
            for i, (path, name) in enumerate(items):
                if cancel.is_set():  # the files after a cancel are not read at all
                    uploads[i][1:3] = ["已取消", CANCELLED]
                    continue
                uploads[i][1] = "索引中…"
                progress((i, len(items)), desc=f"正在索引 {name}")
                yield status_rows(uploads), uploads, *library_view(kb), gr.update(), gr.update()
                for step in add_upload_steps(knowledge, path, name, cancel):
                    if isinstance(step, UploadResult):
                        results.append(step)
                        state = "已取消" if step.message == CANCELLED else "✓ 完成" if step.ok else "✗ 失败"
                        uploads[i][1:] = [state, step.message, step.doc_id]
                        break
                    # Scanned pages: the indicator shows this file's pages done / total.
                    uploads[i][1] = f"文字识别 {step.done}/{step.total} 页"
                    progress((step.done, step.total), desc=f"正在识别 {name}（第 {i + 1}/{len(items)} 个文件）", unit="页")
                    yield status_rows(uploads), uploads, *library_view(kb), gr.update(), gr.update()
        finally:
            running.pop(session, None)
        failed = sum(not r.ok for r in results)
        summary = f"上传完成：{len(results) - failed} 个成功" + (f"，{failed} 个失败" if failed else "")
        if cancel.is_set():
            summary = f"上传已取消：{sum(r.ok for r in results)} 个文件已加入，其余未加入知识库"
        # the status table now lists the files
        yield status_rows(uploads), uploads, *library_view(kb), summary, None

    def cancel_upload(request: gr.Request) -> str:
        """Stop this visitor's upload in progress: the file being read is not added, nor any after it."""
        event = running.get(getattr(request, "session_hash", None) or "")
        if event is None:
            return "没有正在进行的上传"
        event.set()
        return "正在取消上传…"

    def confirm_delete(doc_id: str | None, kb: str | None, request: gr.Request) -> tuple:
        """The first click only asks: which document, and that it cannot be undone."""
        if not doc_id:
            return gr.update(visible=False), "", "请先选择要删除的文档"
        try:
            writable(request)
            record = open_kb(kb).knowledge.document(doc_id)
        except InputError as error:
            return gr.update(visible=False), "", str(error)
        if record is None:
            return gr.update(visible=False), "", "该文档已不在知识库中"
        question = f"确定要从知识库“{kb or first}”删除《{record.document.display_name}》吗？删除后不能恢复。"
        return gr.update(visible=True), question, ""

    def delete(
        doc_id: str | None, kb: str | None = None, uploads: list[list] | None = None, request: gr.Request = None
    ) -> tuple:
        uploads = [list(row) for row in uploads or []]
        try:
            writable(request)
            message = delete_document(open_kb(kb).knowledge, doc_id) if doc_id else "请先选择要删除的文档"
        except InputError as error:
            message = str(error)
        for row in uploads:  # the upload table must not keep saying "added" for it
            if doc_id and row[3] == doc_id:
                row[1:3] = ["已删除", "已从知识库删除"]
        return *library_view(kb), message, status_rows(uploads), uploads, gr.update(visible=False)

    def rebuild_index(
        kb: str | None, request: gr.Request, progress: gr.Progress = gr.Progress(track_tqdm=True)
    ) -> tuple:
        progress(0, desc="正在重建索引")
        try:
            writable(request)
            knowledge = open_kb(kb).knowledge
            report = rebuild(knowledge, progress=True)
        except InputError as error:
            return *library_view(kb), str(error)
        except FileNotFoundError as error:
            return *library_view(kb), f"未重建：{error}"
        except NothingToIndexError:
            return *library_view(kb), "未重建：语料和已上传文件中没有可读取的文件，知识库未改变"
        message = f"已重建：{len(knowledge.documents)} 个文档，{report.update.chunks_added} 个段落"
        if report.errors:
            message += f"；{len(report.errors)} 个文件无法读取"
        return *library_view(kb), message

    def knowledge_bases(selected: str | None = None) -> dict:
        return gr.update(choices=list_knowledge_bases(settings), value=selected or first)

    def create_kb(name: str, request: gr.Request) -> tuple:
        name = (name or "").strip()
        try:
            writable(request)
            startup.assistants.create(name)
        except (ValueError, NotReadyError) as error:  # read-only, an unsafe name, one that exists, not loaded yet
            return gr.update(), str(error), gr.update()
        return knowledge_bases(name), f"已创建知识库“{name}”，请在下方上传文件", ""

    def switch_kb(kb: str) -> tuple:
        """Another knowledge base: a new conversation, its documents, an empty upload table."""
        try:
            count = len(open_kb(kb).knowledge.documents)
            message = f"当前知识库“{kb}”：{count} 个文档" + ("（还没有文档，请先上传文件）" if not count else "")
        except InputError as error:
            message = str(error)
        return conversation_html([]), [], *library_view(kb), [], [], message, gr.update(visible=False)

    def startup_view(name: str | None) -> tuple:
        """The banner and, once the knowledge base is ready, the page's lists (the timer stops then)."""
        status = startup.status()
        banner = gr.update(value=status_html(status), visible=status.state != "ready")
        if status.state == "loading":
            return banner, gr.Timer(active=True), gr.update(), gr.update(), gr.update()
        return banner, gr.Timer(active=False), knowledge_bases(name), *library_view(name)

    def access_view(request: gr.Request) -> tuple:
        """A read-only key's visitor does not see the controls that change the library."""
        allowed = login.can_write(request)
        hidden = [gr.update(visible=allowed)] * 4
        return *hidden, "" if allowed else READ_ONLY_MESSAGE

    def startup_status() -> dict:
        """How far the server's start has come: state, message, stage, done/total, ETA (JSON)."""
        return status_json(startup.status())

    with gr.Blocks(title="新闻问答助手", analytics_enabled=False) as demo:
        turns_state = gr.State([])
        uploads_state = gr.State([])  # rows of the upload table, each with the doc id it added
        gr.Markdown(
            "## 新闻问答助手\n根据知识库中的新闻回答问题，每句回答都标注出处；点击 [1] 查看原文。"
            + ("　[退出登录](/logout)" if login.enabled else "")
        )
        banner = gr.HTML(visible=False, elem_id="startup-status")
        timer = gr.Timer(STATUS_INTERVAL, active=False)
        kb = gr.Dropdown(
            choices=list_knowledge_bases(settings), value=first, label="知识库", elem_id="kb-select", scale=0
        )
        with gr.Tab("问答", id="chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    conversation = gr.HTML(
                        conversation_html([]), js_on_load=CLICK_JS, elem_id="conversation", min_height=320
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="输入问题，按回车发送",
                            show_label=False,
                            scale=6,
                            elem_id="question",
                            max_lines=4,
                        )
                        send = gr.Button("发送", variant="primary", scale=1, min_width=80, elem_id="send")
                    gr.Examples(EXAMPLES, inputs=question, label="示例问题（默认知识库）")
                    clear = gr.Button("清空对话", size="sm", elem_id="clear")
                with gr.Column(scale=1, min_width=260):
                    with gr.Accordion("设置", open=True):
                        k = gr.Slider(1, 20, value=settings.k, step=1, label="检索段落数（top-k）")
                        mode = gr.Radio(
                            [("混合", "hybrid"), ("向量", "dense"), ("关键词（BM25）", "bm25")],
                            value=settings.mode,
                            label="检索方式",
                        )
                        generator = gr.Radio(
                            [("抽取式（离线）", "extractive"), ("OpenAI 兼容接口", "openai")],
                            value=settings.generator,
                            label="回答方式",
                        )
                        with gr.Group(visible=settings.generator == "openai") as llm_group:
                            base_url = gr.Textbox(
                                settings.openai_base_url or "", label="接口地址（Base URL）", placeholder="https://…/v1"
                            )
                            model = gr.Textbox(settings.openai_model, label="模型")
                            api_key = gr.Textbox(
                                "",
                                label="API Key",
                                type="password",
                                placeholder="已在服务器配置，留空即可" if settings.openai_api_key else "sk-…",
                            )
                        answer_script = gr.Radio(
                            [("跟随问题", "auto"), ("简体", "simplified"), ("繁體", "traditional")],
                            value=settings.answer_script,
                            label="回答字体",
                        )
        with gr.Tab("知识库", id="library"):
            documents = gr.Dataframe(
                headers=COLUMNS,
                interactive=False,
                wrap=True,
                elem_id="documents",
            )
            files = gr.File(
                label=f"上传文件（{'、'.join(UPLOAD_TYPES)}；每个不超过 {settings.max_file_mb:g} MB）",
                file_count="multiple",  # no file_types: Gradio would refuse the whole batch; each file is checked
                elem_id="upload",
            )
            upload_rows = gr.Dataframe(headers=UPLOAD_COLUMNS, interactive=False, wrap=True, elem_id="upload-status")
            # Always there (the upload's outputs stay as API clients know them); it stops this visitor's upload.
            cancel_upload_button = gr.Button("取消上传", size="sm", elem_id="upload-cancel")
            with gr.Row():
                selected = gr.Dropdown(choices=[], label="选择文档", scale=4, elem_id="doc-select")
                delete_button = gr.Button("删除文档", variant="stop", scale=1, elem_id="delete")
            with gr.Group(visible=False, elem_id="delete-confirm") as confirm_group:
                confirm_text = gr.Markdown(elem_id="delete-question")
                with gr.Row():
                    confirm_button = gr.Button("确认删除", variant="stop", elem_id="delete-yes")
                    cancel_button = gr.Button("取消", elem_id="delete-no")
            rebuild_button = gr.Button("从源文件重建索引（默认知识库：内置语料 + 已上传文件）", size="sm", elem_id="rebuild")
            library_message = gr.Markdown(elem_id="library-message")
            with gr.Accordion("新建知识库", open=False):
                with gr.Row():
                    new_kb = gr.Textbox(placeholder="名称，例如 地方新闻", show_label=False, scale=4, elem_id="new-kb")
                    create_button = gr.Button("新建", scale=1, elem_id="create-kb")

        chat_inputs = [question, turns_state, k, mode, generator, answer_script, base_url, model, api_key, kb]
        chat_outputs = [conversation, turns_state, question]
        # No queue limit: the limiters above bound the work (see there).
        gr.on([question.submit, send.click], chat, chat_inputs, chat_outputs, api_name="chat", concurrency_limit=None)
        clear.click(lambda: (conversation_html([]), []), None, [conversation, turns_state], api_name=False)
        generator.change(lambda g: gr.update(visible=g == "openai"), generator, llm_group, api_name=False)
        gr.api(ask, api_name="ask")

        library_outputs = [documents, selected]
        # Changes to the library run one at a time; they do not share the chat's concurrency limit.
        writes = {"concurrency_limit": 1, "concurrency_id": "library"}
        files.upload(
            upload,
            [files, kb],
            [upload_rows, uploads_state, *library_outputs, library_message, files],
            api_name="upload",
            preprocess=False,  # to see each file's own name (see uploaded_files)
            **writes,
        )
        # Not queued behind the upload it stops (the library's writes run one at a time).
        cancel_upload_button.click(cancel_upload, None, library_message, api_name="cancel_upload", concurrency_limit=None)
        delete_button.click(
            confirm_delete, [selected, kb], [confirm_group, confirm_text, library_message], api_name=False
        )
        cancel_button.click(lambda: gr.update(visible=False), None, confirm_group, api_name=False)
        delete_outputs = [*library_outputs, library_message, upload_rows, uploads_state, confirm_group]
        confirm_button.click(delete, [selected, kb, uploads_state], delete_outputs, api_name="delete", **writes)
        rebuild_button.click(rebuild_index, kb, [*library_outputs, library_message], api_name="rebuild", **writes)
        create_button.click(create_kb, new_kb, [kb, library_message, new_kb], api_name="create_kb", **writes)
        kb.change(
            switch_kb,
            kb,
            [conversation, turns_state, *library_outputs, upload_rows, uploads_state, library_message, confirm_group],
            api_name=False,
        )
        # The lists are filled on load, or by the timer once the knowledge base is ready (no reload needed).
        startup_outputs = [banner, timer, kb, *library_outputs]
        demo.load(startup_view, kb, startup_outputs, api_name=False)
        timer.tick(startup_view, kb, startup_outputs, api_name=False, show_progress="hidden", concurrency_limit=None)
        gr.api(startup_status, api_name="status")
        demo.load(
            access_view, None, [files, delete_button, rebuild_button, create_button, library_message], api_name=False
        )
    return demo


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Settings]:
    """``python app.py``'s options: those of ``rag app``."""
    parser = argparse.ArgumentParser(
        description="新闻问答助手的网页（Gradio）。每个设置也可用 RAG_<NAME> 环境变量指定。",
        parents=[settings_parser(PAGE_SETTINGS)],
    )
    add_page_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        check_login(settings, share=args.share)
    except ValueError as error:
        parser.error(str(error))
    return args, settings


def check_login(settings: Settings, *, share: bool = False) -> None:
    if bool(settings.auth_user) != bool(settings.auth_password):
        raise ValueError(
            "登录需要同时设置用户名和密码（--auth-user 或 RAG_AUTH_USER，以及环境变量 RAG_AUTH_PASSWORD）"
        )
    if settings.api_keys and settings.api_keys.get_secret_value().strip():
        if settings.auth_user:
            raise ValueError("已设置 RAG_API_KEYS：网页用其中的密钥登录，请不要再设置 auth_user/auth_password")
        if share:
            raise ValueError("公开链接（--share）只提供网页、不支持 RAG_API_KEYS 的登录；请改用 auth_user/auth_password")


def launch(demo: gr.Blocks, settings: Settings, *, share: bool = False, block: bool = True):
    auth = None
    if settings.auth_user and settings.auth_password:
        auth = (settings.auth_user, settings.auth_password.get_secret_value())
    demo.queue(default_concurrency_limit=settings.concurrency_limit)
    return demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        share=share,
        auth=auth,
        auth_message="新闻问答助手：请登录" if auth else None,
        max_file_size=f"{int(settings.max_file_mb * 4)}mb",  # hard cap; the per-file limit is checked with a message
        css=PAGE_CSS,
        footer_links=["api"],
        state_session_capacity=SESSION_CAPACITY,
        prevent_thread_lock=not block,
        quiet=True,
    )


def server_app(demo: gr.Blocks, startup: Startup, settings: Settings):
    """One app, one port: the HTTP API and MCP (``rag.api``) with the page mounted at ``/``."""
    from rag.api import create_api

    api = create_api(startup, settings)
    login = PageLogin.from_settings(settings)
    if login.enabled:  # the page needs one of the API's keys; the API and MCP check theirs themselves
        for route in login.routes():
            api.router.routes.append(route)  # before the page's mount at "/", which would take every path
        api.add_middleware(LoginGuard, login=login)
    auth = None
    if settings.auth_user and settings.auth_password:
        auth = (settings.auth_user, settings.auth_password.get_secret_value())
    demo.queue(default_concurrency_limit=settings.concurrency_limit)
    demo.state_session_capacity = SESSION_CAPACITY  # read when the page's routes are made
    return gr.mount_gradio_app(
        api,
        demo,
        path="/",
        auth=auth,
        auth_message="新闻问答助手：请登录" if auth else None,
        max_file_size=f"{int(settings.max_file_mb * 4)}mb",  # hard cap; the per-file limit is checked with a message
        css=PAGE_CSS,
        footer_links=["api"],
    )


def _say_when_ready(startup: Startup) -> None:
    """The terminal's line once the knowledge base is open (a failure is logged by the Startup)."""
    if startup.wait().state == "ready":
        count = len(startup.get(startup.settings.kb).knowledge.documents)
        print(f"知识库已就绪：{count} 个文档" + ("（还没有文档：请在网页的“知识库”页上传文件）" if not count else ""), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args, settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return serve(settings, share=args.share)


def serve(settings: Settings, *, share: bool = False) -> int:
    """Serve the page (and the API) at once, and open the knowledge base ``settings.kb`` meanwhile (building
    the default one if missing): the page shows the progress, and an error to open it, in Chinese."""
    try:
        check_login(settings, share=share)
        startup = Startup(settings, warm_up=EXAMPLES[0])
        demo = build_app(startup)
    except ValueError as error:  # also a malformed RAG_API_KEYS (the message does not contain the keys)
        print(f"error: {error}", file=sys.stderr)
        return 2
    # A public link needs Gradio's own server: the page alone, without the HTTP API.
    app = None if share else server_app(demo, startup, settings)
    print(f"正在加载知识库“{settings.kb}”：{settings.index_path}（首次运行会先建立索引，进度见网页）…", flush=True)
    startup.start()  # after the imports above: the build then does not slow the server's own start
    threading.Thread(target=_say_when_ready, args=(startup,), daemon=True).start()
    if app is None:
        _, url, _ = launch(demo, settings, share=True, block=False)
        print(f"新闻问答助手已启动：{url}（按 Ctrl+C 退出）", flush=True)
        try:
            demo.block_thread()
        except KeyboardInterrupt:
            pass
        return 0
    import uvicorn

    print(f"新闻问答助手已启动：http://{settings.host}:{settings.port}/（API：/v1，MCP：/mcp；按 Ctrl+C 退出）", flush=True)
    # Open streams (a page's event stream) would keep Ctrl+C waiting without the graceful-shutdown limit.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
