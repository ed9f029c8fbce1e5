"""README.md's examples cannot drift: its Python blocks are executed, its ``rag`` command lines parsed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rag.cli import build_parser
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_the_python_examples_run(monkeypatch: pytest.MonkeyPatch, seed_index_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_index_dir))  # the default knowledge base: the shared seeds index
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # from any folder
    from api_serving import serve_api

    from rag.api import SingleAssistant, create_api

    examples = blocks("python")
    assert len(examples) >= 2 and any("citations[0].source" in code for code in examples)
    # The HTTP examples talk to `rag app` on its default port: here the same API, served on a free one.
    with serve_api(create_api(SingleAssistant.load(), Settings())) as url:
        for number, code in enumerate(examples):
            namespace: dict = {}
            code = code.replace("http://127.0.0.1:7860", url)
            exec(compile(code, f"README.md python block {number + 1}", "exec"), namespace)
    from rag.registry import list_knowledge_bases

    assert list_knowledge_bases() == ["default"]  # the example deleted what it created
    assert not (tmp_path / "data" / "readme-demo").exists()


def test_the_command_lines_parse() -> None:
    lines = [line for code in blocks("bash") for line in code.splitlines() if line.startswith("rag ")]
    assert len(lines) >= 10
    for line in lines:
        argv = shlex.split(line, comments=True)[1:]
        try:
            build_parser(argv[0]).parse_args(argv)
        except SystemExit as exit:
            pytest.fail(f"README command does not parse: {line} (exit {exit.code})")
