"""The chat page: ``python app.py`` builds the default index if missing, then serves http://127.0.0.1:7860.

Every setting is also a flag (``--port 8000``) and an environment variable (``RAG_PORT=8000``).
The page is thin: answers come from :class:`rag.assistant.Assistant`, documents from its
:class:`rag.knowledge.KnowledgeBase`; HTML and upload handling live in :mod:`rag.web`.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import anyio
import gradio as gr

from rag.assistant import Assistant
from rag.cli import settings_from_args, settings_parser
from rag.embeddings import EmbeddingError
from rag.knowledge import NothingToIndexError
from rag.settings import Settings
from rag.store import IndexStoreError
from rag.types import Answer
from rag.validation import InputError
from rag.web.library import COLUMNS, delete_document, document_choices, document_rows, rebuild
from rag.web.render import CLICK_JS, CSS, Turn, conversation_html
from rag.web.uploads import UPLOAD_TYPES, UploadResult, add_upload

log = logging.getLogger("rag.app")

#: Questions about the default corpus (seeds/), simplified and traditional.
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


def build_app(assistant: Assistant) -> gr.Blocks:
    settings = assistant.settings
    knowledge = assistant.knowledge

    # Answers are worked out in threads: at most `concurrency_limit` at a time that use the CPU, and
    # apart from them at most `llm_concurrency` that wait on an LLM. The chat event itself has no
    # queue limit, so questions kept waiting by a slow LLM do not hold up the extractive answers.
    cpu = anyio.CapacityLimiter(settings.concurrency_limit)
    llm = anyio.CapacityLimiter(settings.llm_concurrency)

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
        try:
            stream = assistant.stream(question, history, **overrides)
            while (item := await anyio.to_thread.run_sync(next, stream, None, limiter=limiter)) is not None:
                if isinstance(item, Answer):
                    turn.answer = item
                    continue
                turn.partial += item
                if time.monotonic() - shown >= STREAM_INTERVAL:
                    shown = time.monotonic()
                    yield conversation_html(turns), turns, ""
            stream = None
        except InputError as error:  # an overlong or symbol-only question: say what is wrong with it
            turn.error = str(error)
        except Exception:  # the page shows a friendly message and the offline answer instead
            log.exception("answering failed; falling back to the extractive answer")
            stream = None
            turn.partial = ""
            extractive = functools.partial(assistant.ask, question, history, **{**overrides, "generator": "extractive"})
            try:
                turn.answer = await anyio.to_thread.run_sync(extractive, limiter=cpu)
                turn.answer.note = FALLBACK_NOTE + (f"（{turn.answer.note}）" if turn.answer.note else "")
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

    def ask(question: str, k: int = settings.k, mode: str = settings.mode) -> dict:
        """One answer as JSON (text with [n] markers, citations, passages); no conversation."""
        try:
            return assistant.ask(question, None, k=k, mode=mode).to_dict()
        except InputError as error:  # gr.Error reaches the caller with its message; other errors do not
            raise gr.Error(str(error)) from error

    def library_view() -> tuple[list[list], dict]:
        return document_rows(knowledge), gr.update(choices=document_choices(knowledge), value=None)

    def upload(paths: list[str] | None, progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        paths = paths or []
        rows = [[Path(p).name, "等待", ""] for p in paths]
        results: list[UploadResult] = []
        for i, path in enumerate(paths):
            rows[i][1] = "索引中…"
            progress((i, len(paths)), desc=f"正在索引 {rows[i][0]}")
            yield rows, *library_view(), gr.update(), gr.update()
            result = add_upload(knowledge, path, rows[i][0])
            results.append(result)
            rows[i][1:] = ["✓ 完成" if result.ok else "✗ 失败", result.message]
        failed = sum(not r.ok for r in results)
        summary = f"上传完成：{len(results) - failed} 个成功" + (f"，{failed} 个失败" if failed else "")
        yield rows, *library_view(), summary, None  # the status table now lists the files

    def delete(doc_id: str | None) -> tuple:
        message = delete_document(knowledge, doc_id) if doc_id else "请先选择要删除的文档"
        return *library_view(), message

    def rebuild_index(progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
        progress(0, desc="正在重建索引")
        try:
            report = rebuild(knowledge, progress=True)
        except FileNotFoundError as error:
            return *library_view(), f"未重建：{error}"
        except NothingToIndexError:
            return *library_view(), "未重建：语料和已上传文件中没有可读取的文件，知识库未改变"
        message = f"已重建：{len(knowledge.documents)} 个文档，{report.update.chunks_added} 个段落"
        if report.errors:
            message += f"；{len(report.errors)} 个文件无法读取"
        return *library_view(), message

    with gr.Blocks(title="新闻问答助手", analytics_enabled=False) as demo:
        turns_state = gr.State([])
        gr.Markdown("## 新闻问答助手\n根据知识库中的新闻回答问题，每句回答都标注出处；点击 [1] 查看原文。")
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
                    gr.Examples(EXAMPLES, inputs=question, label="示例问题（默认语料）")
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
                headers=COLUMNS, value=document_rows(knowledge), interactive=False, wrap=True, elem_id="documents"
            )
            files = gr.File(
                label=f"上传文件（{'、'.join(UPLOAD_TYPES)}；每个不超过 {settings.max_file_mb:g} MB）",
                file_count="multiple",  # no file_types: Gradio would refuse the whole batch; each file is checked
                elem_id="upload",
            )
            upload_rows = gr.Dataframe(headers=UPLOAD_COLUMNS, interactive=False, wrap=True, elem_id="upload-status")
            with gr.Row():
                selected = gr.Dropdown(
                    choices=document_choices(knowledge), label="选择文档", scale=4, elem_id="doc-select"
                )
                delete_button = gr.Button("删除文档", variant="stop", scale=1, elem_id="delete")
            rebuild_button = gr.Button("从源文件重建索引（默认语料 + 已上传文件）", size="sm", elem_id="rebuild")
            library_message = gr.Markdown(elem_id="library-message")

        chat_inputs = [question, turns_state, k, mode, generator, answer_script, base_url, model, api_key]
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
            upload, files, [upload_rows, *library_outputs, library_message, files], api_name="upload", **writes
        )
        delete_button.click(delete, selected, [*library_outputs, library_message], api_name="delete", **writes)
        rebuild_button.click(rebuild_index, None, [*library_outputs, library_message], api_name="rebuild", **writes)
        demo.load(library_view, None, library_outputs, api_name=False)
    return demo


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(
        description="新闻问答助手的网页（Gradio）。每个设置也可用 RAG_<NAME> 环境变量指定。",
        parents=[settings_parser()],
    )
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    if bool(settings.auth_user) != bool(settings.auth_password):
        parser.error(
            "登录需要同时设置用户名和密码（--auth-user 或 RAG_AUTH_USER，以及环境变量 RAG_AUTH_PASSWORD）"
        )
    return args, settings


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
        css=CSS,
        footer_links=["api"],
        state_session_capacity=SESSION_CAPACITY,
        prevent_thread_lock=not block,
        quiet=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args, settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    print(f"正在加载知识库 {settings.index_dir}（首次运行会先建立索引，需要几分钟）…", flush=True)
    try:
        assistant = Assistant.load(settings, progress=True)
    except (IndexStoreError, EmbeddingError) as error:  # a damaged index, a model that cannot be loaded
        print(f"无法加载知识库：{error}", file=sys.stderr)
        return 2
    print(f"知识库：{len(assistant.knowledge.documents)} 个文档", flush=True)
    assistant.ask(EXAMPLES[0])  # loads the tokenizer dictionary and caches now, not on the first visitor's question
    demo = build_app(assistant)
    _, url, _ = launch(demo, settings, share=args.share, block=False)
    print(f"新闻问答助手已启动：{url}（按 Ctrl+C 退出）", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
