"""The ``rag`` command. Every setting is also a flag (``--chunk-size 300``) and an env var (``RAG_CHUNK_SIZE``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from .settings import Settings
from .validation import InputError, apply_overrides

log = logging.getLogger("rag")

# Flags with a short alias; everything else is ``--field-name``.
_SHORT = {"k": "-k"}


def _flag_type(annotation: Any) -> tuple[Callable[[str], Any] | None, list[str] | None]:
    """(converter, choices) for a settings field, or (None, None) for fields without a flag."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is typing.Literal:
        return str, list(args)
    if args and origin is not list:  # Optional[X] / X | None
        return _flag_type(args[0])
    if annotation in (str, int, float, Path):
        return annotation, None
    if annotation is SecretStr:  # secrets come from the environment only: flags show in `ps` and shell history
        return None, None
    if annotation is bool:
        return lambda text: text.lower() in ("1", "true", "yes", "on"), None
    return None, None


def settings_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("settings (also RAG_<NAME> environment variables)")
    for name, info in Settings.model_fields.items():
        converter, choices = _flag_type(info.annotation)
        if converter is None:
            continue
        flags = [f"--{name.replace('_', '-')}"] + ([_SHORT[name]] if name in _SHORT else [])
        group.add_argument(
            *flags, dest=f"setting_{name}", type=converter, choices=choices, default=None, help=info.description
        )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {key[len("setting_") :]: value for key, value in vars(args).items() if key.startswith("setting_")}
    return apply_overrides(Settings(), overrides)


# ---------------------------------------------------------------------------- commands
def _print_report(report) -> int:
    print(report.summary())
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if report.errors and not report.update.added and not report.update.unchanged else 0


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from .knowledge import KnowledgeBase, NothingToIndexError

    paths = args.paths or settings.corpus
    try:
        knowledge, report = KnowledgeBase.build(paths, settings, progress=True)
    except NothingToIndexError as error:
        for problem in error.errors:
            print(f"error: {problem}", file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 1
    status = _print_report(report)
    print(f"index at {settings.index_dir}: {len(knowledge.documents)} documents")
    return status


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from .knowledge import KnowledgeBase

    knowledge = KnowledgeBase.open(settings, progress=True)
    return _print_report(knowledge.add_paths(args.files, progress=True))


def cmd_remove(args: argparse.Namespace, settings: Settings) -> int:
    from .knowledge import KnowledgeBase

    knowledge = KnowledgeBase.open(settings, build_if_missing=False)
    status = 0
    for ref in args.refs:
        try:
            report = knowledge.remove(ref)
            print(f"removed {', '.join(report.removed)}")
        except KeyError as error:
            print(f"error: {error.args[0]}", file=sys.stderr)
            status = 1
    return status


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from .knowledge import KnowledgeBase

    knowledge = KnowledgeBase.open(settings, build_if_missing=False)
    rows = [
        {
            "doc_id": r.document.id,
            "source": r.document.source,
            "chunks": len(r.chunk_ids),
            "added_at": r.added_at,
            "headline": r.document.headlines[0] if r.document.headlines else "",
        }
        for r in knowledge.documents
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        for row in rows:
            print(f"{row['doc_id']}  {row['chunks']:4d} chunks  {row['added_at']}  {row['source']}  {row['headline']}")
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from .knowledge import KnowledgeBase

    knowledge = KnowledgeBase.open(settings, progress=True)
    hits = knowledge.search(args.question)
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=1))
        return 0
    for hit in hits:
        c = hit.chunk
        print(f"[{hit.rank}] {hit.score:.4f}  {c.source}:{c.line_start}-{c.line_end}  {c.title}")
        print("    " + c.clean.replace("\n", "\n    "))
        if hit.also_in:
            print(f"    (also in: {', '.join(hit.also_in)})")
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from .eval import evaluate

    try:
        evaluate(
            args.dataset,
            format=args.format,
            corpus=args.corpus,
            configs=[" ".join(words) for words in args.config] if args.config else None,
            limit=args.limit,
            seed=args.seed,
            out=args.out,
            settings=settings,
        )
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out:
        print(f"report written to {args.out}/report.md")
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from .answer.render import to_text
    from .assistant import Assistant

    answer = Assistant.load(settings, progress=True).ask(args.question)
    print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1) if args.json else to_text(answer))
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from .answer.render import to_text
    from .assistant import Assistant
    from .types import Answer

    assistant = Assistant.load(settings, progress=True)
    history: list[tuple[str, str]] = []
    print("输入问题开始对话；追问会结合上文理解。输入 /new 开始新话题，/quit 或 Ctrl-D 退出。")
    while True:
        try:
            question = input("\n问：").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if question in ("/quit", "/exit", "退出"):
            return 0
        if question == "/new":
            history.clear()
            continue
        if not question:
            continue
        answer, streamed = None, []
        try:
            items = assistant.stream(question, history)
        except InputError as error:
            print(f"（{error}）")
            continue
        print("答：", end="", flush=True)
        for item in items:
            if isinstance(item, Answer):
                answer = item
            else:
                streamed.append(item)
                print(item, end="", flush=True)
        assert answer is not None
        checked = to_text(answer)
        if "".join(streamed).strip() != answer.text:  # citation checks changed the text: show the checked one
            print("\n（核对引用后）" + checked)
        else:
            print(checked[len(answer.text) :])
        history.append((question, answer.text))


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from .api.mcp_server import serve_stdio  # needs the `mcp` SDK; only this command loads it

    serve_stdio(settings)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, Settings], int], str]] = {
    "index": (cmd_index, "build a new index from files/folders (default: the corpus setting, seeds/)"),
    "add": (cmd_add, "add files to the index (unchanged files are skipped)"),
    "remove": (cmd_remove, "remove documents by id, id prefix or source path"),
    "list": (cmd_list, "list indexed documents"),
    "search": (cmd_search, "retrieve passages for a question"),
    "ask": (cmd_ask, "answer a question with citations"),
    "chat": (cmd_chat, "interactive conversation in the terminal (follow-ups keep context)"),
    "mcp": (cmd_mcp, "serve the knowledge base to MCP clients over stdio (tools: search, ask, list_documents)"),
    "eval": (cmd_eval, "evaluate retrieval and answers on a QA set, several configs side by side"),
}


def build_parser() -> argparse.ArgumentParser:
    common = settings_parser()
    parser = argparse.ArgumentParser(prog="rag", description="Chinese news question answering with citations.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    index = sub.add_parser("index", parents=[common], help=COMMANDS["index"][1])
    index.add_argument("paths", nargs="*", help="files or folders")
    add = sub.add_parser("add", parents=[common], help=COMMANDS["add"][1])
    add.add_argument("files", nargs="+")
    remove = sub.add_parser("remove", parents=[common], help=COMMANDS["remove"][1])
    remove.add_argument("refs", nargs="+", metavar="DOC_ID|PATH")
    listing = sub.add_parser("list", parents=[common], help=COMMANDS["list"][1])
    listing.add_argument("--json", action="store_true")
    search = sub.add_parser("search", parents=[common], help=COMMANDS["search"][1])
    search.add_argument("question")
    search.add_argument("--json", action="store_true", help="print a JSON list, best first")
    ask = sub.add_parser("ask", parents=[common], help=COMMANDS["ask"][1])
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")
    sub.add_parser("chat", parents=[common], help=COMMANDS["chat"][1])
    sub.add_parser("mcp", parents=[common], help=COMMANDS["mcp"][1])
    evaluation = sub.add_parser("eval", parents=[common], help=COMMANDS["eval"][1])
    evaluation.add_argument("--dataset", required=True, type=Path, help="QA set: our JSONL or SQuAD-style JSON")
    evaluation.add_argument("--format", choices=["jsonl", "squad"], help="default: from the file")
    evaluation.add_argument("--corpus", type=Path, help="JSONL sets: the documents asked about (default: seeds/)")
    evaluation.add_argument(
        "--config",
        action="append",
        nargs="+",
        metavar="NAME [field=value ...]",
        help="a configuration to compare (repeatable): bm25, dense, hybrid, naive, or e.g. 'chunk300 chunk_size=300'; "
        "default: bm25, dense, hybrid, naive",
    )
    evaluation.add_argument("--limit", type=int, help="evaluate a fixed random sample of N questions")
    evaluation.add_argument("--seed", type=int, default=0, help="seed of the --limit sample")
    evaluation.add_argument("--out", type=Path, help="folder for report.md, metrics.json, results.jsonl and plots")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings = settings_from_args(args)
    except (ValidationError, InputError) as error:
        parser.error(str(error))
    handler, _ = COMMANDS[args.command]
    from .embeddings import EmbeddingError
    from .store import IndexStoreError

    try:
        return handler(args, settings)
    except (IndexStoreError, EmbeddingError, InputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
