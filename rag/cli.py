"""The ``rag`` command: one subcommand per task, each with its own options (``rag COMMAND --help``).

Every setting is an environment variable (``RAG_CHUNK_SIZE``); the ones a command uses most are its flags
(``--chunk-size 300``), any other one is ``--set chunk_size=300``; ``rag settings`` lists them all.
Modules beyond argparse are imported inside the commands, so ``rag --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger("rag")

# Flags with a short alias; everything else is ``--field-name``.
_SHORT = {"k": "-k"}
_METAVARS = {int: "N", float: "X", Path: "DIR", str: "TEXT"}
_NAMED_METAVARS = {"kb": "NAME", "embedding_model": "MODEL", "openai_base_url": "URL", "openai_model": "MODEL",
                   "auth_user": "USER", "host": "HOST", "max_file_mb": "MB"}

# The settings each command offers as flags (every other one: --set NAME=VALUE, see `rag settings`).
_WHERE = ("kb", "index_dir")
_OCR = ("ocr_engine", "ocr_max_pages")
_INDEXING = ("chunk_size", "chunk_overlap", "embedding_model", "dense_max_chars", "max_file_mb", *_OCR)
_RETRIEVAL = ("k", "mode")
_ANSWERING = ("generator", "answer_script", "reader_threshold", "openai_base_url", "openai_model")
PAGE_SETTINGS = (*_WHERE, *_RETRIEVAL, *_ANSWERING, "host", "port", "auth_user", "max_file_mb", "concurrency_limit")


def _flag_type(annotation: Any) -> tuple[Callable[[str], Any] | None, list[str] | None]:
    """(converter, choices) for a settings field, or (None, None) for fields without a flag."""
    from pydantic import SecretStr

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


def add_setting_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Flags for the settings ``names`` (default: all that can be flags), plus ``--set NAME=VALUE``."""
    from .settings import Settings

    group = parser.add_argument_group("settings (also RAG_<NAME> environment variables; all of them: rag settings)")
    for name in names if names is not None else Settings.model_fields:
        info = Settings.model_fields[name]
        converter, choices = _flag_type(info.annotation)
        if converter is None:
            continue
        flags = [_SHORT[name]] if name in _SHORT else []
        flags.append(f"--{name.replace('_', '-')}")
        default = info.get_default(call_default_factory=False) if info.default_factory is None else None
        help_text = (info.description or "").rstrip(".") + (f" (default: {default})" if default is not None else "")
        help_text = help_text.replace("%", "%%")  # argparse formats help with %: a literal "3 %" must be escaped
        group.add_argument(
            *flags,
            dest=f"setting_{name}",
            type=converter,
            choices=choices,
            default=None,
            metavar=None if choices else _NAMED_METAVARS.get(name) or _METAVARS.get(converter, name.upper()),
            help=help_text or None,
        )
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other setting, e.g. --set chunk_size=200 (repeatable; lists as JSON)",
    )


def settings_parser(names: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """A parent parser with the setting flags (see :func:`add_setting_flags`)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_setting_flags(parser, names)
    return parser


def _set_value(item: str) -> tuple[str, Any]:
    name, equals, value = item.partition("=")
    if not equals:
        raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
    name = name.strip().replace("-", "_")
    try:
        return name, json.loads(value) if value[:1] in "[{" else value
    except json.JSONDecodeError as error:
        raise ValueError(f"--set {name}: {error}") from None


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, then ``--set`` values, then the setting flags."""
    from pydantic import SecretStr

    from .settings import Settings
    from .validation import InputError, apply_overrides

    overrides = dict(_set_value(item) for item in getattr(args, "set", []) or [])
    for name in overrides:
        if name not in Settings.model_fields:
            raise InputError(f"unknown setting {name!r} (see `rag settings`)")
        annotation = Settings.model_fields[name].annotation
        if SecretStr in (annotation, *typing.get_args(annotation)):
            raise InputError(f"{name} is a secret: set it in the environment, not on the command line")
    overrides |= {key[len("setting_") :]: value for key, value in vars(args).items() if key.startswith("setting_")}
    return apply_overrides(Settings(), overrides)


# ---------------------------------------------------------------------------- commands
def _print_report(report) -> int:
    print(report.summary())
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if report.errors and not report.update.added and not report.update.unchanged else 0


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from .knowledge import KnowledgeBase, NothingToIndexError

    from .settings import DEFAULT_KB

    if not args.paths and settings.kb != DEFAULT_KB:
        print(f"error: name the files or folders to index into knowledge base {settings.kb!r}", file=sys.stderr)
        return 1
    paths = args.paths or settings.corpus
    try:
        knowledge, report = KnowledgeBase.build(paths, settings, progress=True)
    except NothingToIndexError as error:
        for problem in error.errors:
            print(f"error: {problem}", file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 1
    status = _print_report(report)
    print(f"knowledge base {settings.kb!r} at {settings.index_path}: {len(knowledge.documents)} documents")
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
    from .validation import InputError

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


def cmd_kb(args: argparse.Namespace, settings: Settings) -> int:
    from . import registry

    if args.action == "list":
        rows = [_kb_row(name, settings) for name in registry.list_knowledge_bases(settings)]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=1))
        for row in rows if not args.json else []:
            documents = "not built yet" if row["documents"] is None else f"{row['documents']} documents"
            print(f"{row['name']}  {documents}  {row['path']}")
        return 0
    try:
        if args.action == "create":
            print(f"created knowledge base {args.name!r} at {registry.create_knowledge_base(args.name, settings)}")
            print(f"add documents with: rag add --kb {args.name} FILE_OR_FOLDER ...")
            return 0
        path = registry.knowledge_base_path(args.name, settings)
        if not args.yes:
            if not sys.stdin.isatty():
                print(f"error: deleting {path} needs --yes when not asked interactively", file=sys.stderr)
                return 1
            if input(f"delete knowledge base {args.name!r} and all its files at {path}? [y/N] ").strip().lower() != "y":
                print("nothing deleted")
                return 1
        print(f"deleted knowledge base {args.name!r} ({registry.delete_knowledge_base(args.name, settings)})")
        return 0
    except (ValueError, KeyError) as error:
        print(f"error: {error.args[0] if isinstance(error, KeyError) else error}", file=sys.stderr)
        return 1


def _kb_row(name: str, settings: Settings) -> dict[str, Any]:
    from .registry import knowledge_base_path
    from .store import IndexStoreError, backend

    path = knowledge_base_path(name, settings)
    try:
        documents = backend(settings).document_count(path, settings)
    except (IndexStoreError, OSError, KeyError):
        documents = None
    return {"name": name, "path": str(path), "documents": documents}


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import SecretStr

    from .settings import Settings

    rows = []
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = "(set)"
        rows.append({"name": name, "env": f"RAG_{name.upper()}", "value": value, "help": info.description or ""})
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
        return 0
    for row in rows:
        value = "" if row["value"] is None else row["value"]
        print(f"{row['env']} = {value}")
        if row["help"]:
            print(f"    {row['help']}")
    return 0


def cmd_app(args: argparse.Namespace, settings: Settings) -> int:
    from .web.app import serve

    return serve(settings, share=args.share)


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace, Settings], int], str, tuple[str, ...] | None]] = {
    "index": (cmd_index, "build a knowledge base's index from files/folders (default: the bundled pages)", _WHERE + _INDEXING),
    "add": (cmd_add, "add files to a knowledge base (unchanged files are skipped)", (*_WHERE, "max_file_mb", *_OCR)),
    "remove": (cmd_remove, "remove documents by id, id prefix or source path", _WHERE),
    "list": (cmd_list, "list a knowledge base's documents", _WHERE),
    "search": (cmd_search, "retrieve passages for a question", _WHERE + _RETRIEVAL),
    "ask": (cmd_ask, "answer a question with citations", _WHERE + _RETRIEVAL + _ANSWERING),
    "chat": (cmd_chat, "interactive conversation in the terminal (follow-ups keep context)", _WHERE + _RETRIEVAL + _ANSWERING),
    "app": (cmd_app, "start the chat page (alias: serve)", PAGE_SETTINGS),
    "kb": (cmd_kb, "create, list or delete knowledge bases", ("data_dir", "index_dir")),
    "settings": (cmd_settings, "list every setting with its environment variable, value and meaning", ()),
    "mcp": (cmd_mcp, "serve the knowledge base to MCP clients over stdio (tools: search, ask, list_documents)", _WHERE + _RETRIEVAL + _ANSWERING),
    "eval": (cmd_eval, "evaluate retrieval and answers on a QA set, several configs side by side", ()),
}
_ALIASES = {"serve": "app"}


def add_page_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command`` only that command gets its setting flags (the others need not import them)."""
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Chinese news question answering with citations.",
        epilog="`rag COMMAND --help` shows a command's options; `rag settings` lists every setting.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parsers: dict[str, argparse.ArgumentParser] = {}
    for name, (_, help_text, settings) in COMMANDS.items():
        aliases = [alias for alias, target in _ALIASES.items() if target == name]
        parsers[name] = sub.add_parser(name, aliases=aliases, help=help_text, description=help_text)
        parsers[name].add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what happens")
        if command is None or _ALIASES.get(command, command) == name:
            add_setting_flags(parsers[name], settings)
    parsers["index"].add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: the corpus setting)")
    parsers["add"].add_argument("files", nargs="+", metavar="PATH", help="files or folders")
    parsers["remove"].add_argument("refs", nargs="+", metavar="DOC_ID|PATH", help="document ids, id prefixes or paths")
    parsers["list"].add_argument("--json", action="store_true", help="print a JSON list")
    parsers["search"].add_argument("question")
    parsers["search"].add_argument("--json", action="store_true", help="print a JSON list, best first")
    parsers["ask"].add_argument("question")
    parsers["ask"].add_argument("--json", action="store_true", help="print the Answer as JSON")
    add_page_options(parsers["app"])
    kb = parsers["kb"]
    kb.add_argument("action", choices=["list", "create", "delete"], help="what to do")
    kb.add_argument("name", nargs="?", metavar="NAME", help="the knowledge base (create, delete)")
    kb.add_argument("--yes", action="store_true", help="delete without asking")
    kb.add_argument("--json", action="store_true", help="list: print JSON")
    parsers["settings"].add_argument("--json", action="store_true", help="print JSON")
    evaluation = parsers["eval"]
    evaluation.add_argument("--dataset", required=True, type=Path, help="QA set: our JSONL or SQuAD-style JSON")
    evaluation.add_argument("--format", choices=["jsonl", "squad"], help="default: from the file")
    evaluation.add_argument("--corpus", type=Path, help="JSONL sets: the documents asked about (default: the bundled pages)")
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


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    return next((word for word in argv if word in COMMANDS or word in _ALIASES), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_in(argv) or "")
    args = parser.parse_args(argv)
    command = _ALIASES.get(args.command, args.command)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from pydantic import ValidationError

    from .validation import InputError

    if command == "kb" and args.action != "list" and not args.name:
        parser.error(f"rag kb {args.action} needs a NAME")
    try:
        settings = settings_from_args(args)
    except (ValidationError, InputError, ValueError) as error:
        parser.error(str(error))
    handler = COMMANDS[command][0]
    from .embeddings import EmbeddingError
    from .knowledge import NothingToIndexError
    from .store import IndexStoreError

    try:
        return handler(args, settings)
    except (IndexStoreError, EmbeddingError, InputError, NothingToIndexError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
