"""Security properties that hold for the whole code base, not one feature.

No unsafe deserialisation anywhere; secrets only from the environment (flags show in ``ps`` and shell
history) and never written into an index, logs or reprs; the chat page listens on loopback only.
"""

from __future__ import annotations

import ast
import logging
import os
import socket
from pathlib import Path

import pytest
from support import app_process

from rag import KnowledgeBase, Settings
from rag.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("rag/**/*.py"), ROOT / "app.py", *ROOT.glob("bench/*.py")])
KEY = "sk-test-5ecret-do-not-leak-0123456789"
PASSWORD = "pw-5ecret-do-not-leak"

# Modules that run code while loading data, and calls that run code or may unpickle.
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal", "cloudpickle"}
UNSAFE_CALLS = {"eval", "exec", "load_local"}  # load_local: LangChain's FAISS store unpickles its docstore
# As methods only load_local is unsafe: `module.eval()` puts a torch module in inference mode, no Python eval.
UNSAFE_METHODS = {"load_local"}
UNSAFE_ATTRIBUTE_CALLS = {
    ("yaml", "load"), ("torch", "load"), ("np", "load"), ("numpy", "load"), ("builtins", "eval"), ("builtins", "exec")
}

NUMPY_LOADS = {("np", "load"), ("numpy", "load")}


def _keyword_is(call: ast.Call, name: str, value: object) -> bool:
    """Whether ``call`` passes ``name=value`` as a literal."""
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_unsafe_deserialisation(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names = {(node.module or "").split(".")[0]}
        elif isinstance(node, ast.Call):
            called = node.func
            name = called.id if isinstance(called, ast.Name) else getattr(called, "attr", None)
            owner = getattr(called.value, "id", None) if isinstance(called, ast.Attribute) else None
            unsafe = UNSAFE_CALLS if isinstance(called, ast.Name) else UNSAFE_METHODS
            if (owner, name) in NUMPY_LOADS and _keyword_is(node, "allow_pickle", False):
                continue  # .npy arrays read as plain data: object arrays (pickles) are refused
            assert name not in unsafe and (owner, name) not in UNSAFE_ATTRIBUTE_CALLS, (
                f"{path.name}:{node.lineno} calls {owner or ''}.{name}"
            )
            continue
        else:
            continue
        assert not names & UNSAFE_MODULES, f"{path.name}:{node.lineno} imports {names & UNSAFE_MODULES}"
    assert "allow_dangerous_deserialization" not in source


def test_index_files_are_data_formats_only(seed_index_dir: Path) -> None:
    suffixes = {p.suffix for p in seed_index_dir.rglob("*") if p.is_file()}
    assert suffixes <= {"", ".json", ".jsonl", ".npy", ".lock"}, suffixes  # .npy: read with allow_pickle=False


def test_secrets_have_no_command_line_flags(capsys: pytest.CaptureFixture) -> None:
    assert build_parser().parse_args(["list", "--index-dir", "x"]).setting_index_dir == Path("x")
    for flag in ("--openai-api-key", "--auth-password", "--api-keys"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["list", flag, KEY])
        assert "unrecognized arguments" in capsys.readouterr().err


def test_secrets_stay_out_of_reprs_dumps_and_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("RAG_AUTH_PASSWORD", PASSWORD)
    monkeypatch.setenv("RAG_AUTH_USER", "editor")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "news.txt").write_text("快讯\n\n本报讯 某市今日召开会议，讨论明年预算。", encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index")
    assert settings.openai_api_key.get_secret_value() == KEY
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert KEY not in text and PASSWORD not in text
    with caplog.at_level(logging.DEBUG):
        KnowledgeBase.build([docs], settings)
    for file in (tmp_path / "index").rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert KEY.encode() not in data and PASSWORD.encode() not in data, file
    assert KEY not in caplog.text and PASSWORD not in caplog.text


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent, it only picks the outgoing interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_chat_page_listens_on_loopback_only(seed_index_dir: Path, tmp_path: Path) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address besides loopback")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}  # the default host, whatever CI sets
    with app_process(["--index-dir", str(seed_index_dir)], env=env, log=tmp_path / "app.log") as app:
        port = int(app.url.rsplit(":", 1)[1].strip("/"))
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex((outside, port)) != 0, f"the page answers on {outside}:{port}"
