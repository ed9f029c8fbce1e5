"""Start-up stays light: importing the library loads none of the heavy stacks, and jieba's dictionary
comes from a per-user cache built once. Facts, not timings (bench/bench_startup.py has the timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Loaded only when used: the LLM client, the page, torch and friends, plotting, POS tagging.
HEAVY = (
    "openai",
    "langchain_openai",
    "langsmith",
    "gradio",
    "torch",
    "sentence_transformers",
    "transformers",
    "matplotlib",
    "jieba.posseg",
)


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    """The last line ``code`` prints, run in a fresh interpreter (a module imported here would count)."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("statement", ["import rag", "from rag import Assistant", "import rag.cli"])
def test_importing_loads_nothing_heavy(statement: str) -> None:
    loaded = run_python(f"{statement}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    assert json.loads(loaded) == []


def test_the_names_of_the_package_resolve_when_used() -> None:
    import rag

    assert set(rag.__all__) <= set(dir(rag))
    assert rag.Assistant.__module__ == "rag.assistant" and rag.Settings.__module__ == "rag.settings"
    with pytest.raises(AttributeError):
        rag.NoSuchThing  # noqa: B018


TOKENIZE = """
import json, os
from rag.text import tokenize
from rag.text.dictionary import cache_path
path = cache_path()
print(json.dumps([tokenize("黑龙江拥有2981公里的漫长边境线"), str(path), os.stat(path).st_mtime_ns]))
"""


def test_jiebas_dictionary_is_cached_once_per_user(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    tokens, path, built = json.loads(run_python(TOKENIZE, env))
    assert "边境线" in tokens and "2981" in tokens
    assert Path(path).parent == tmp_path / "cache" / "rag-news-zh" and Path(path).stat().st_size > 1_000_000
    again, same_path, mtime = json.loads(run_python(TOKENIZE, env))
    assert (again, same_path, mtime) == (tokens, path, built)  # read, not written again

    Path(path).write_bytes(b"\x00damaged")  # a damaged cache is rebuilt, not fatal
    rebuilt, _, _ = json.loads(run_python(TOKENIZE, env))
    assert rebuilt == tokens and Path(path).stat().st_size > 1_000_000


def test_an_unwritable_cache_directory_still_tokenizes(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("", encoding="utf-8")  # the cache dir cannot be created under a file
    code = "from rag.text import tokenize\nprint(tokenize('黑龙江拥有2981公里的漫长边境线'))"
    assert "边境线" in run_python(code, {"XDG_CACHE_HOME": str(blocked)})
