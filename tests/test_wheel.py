"""The installed product: the wheel, installed (not editable) into a fresh venv outside the repository,
works from an unrelated folder: `rag index` on a folder, `rag ask` (extractive, and the LLM generator
against a local chat-completions server, which needs the prompts shipped inside the package), `rag app`.

Offline: the wheel is built without build isolation and installed with --no-deps; the venv sees the
test environment's packages (but not its editable install of this project) through a .pth line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from support import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
NEWS = "白沙湾新闻\n\n白沙湾渔港今年新建了一座灯塔，灯塔高42米，是当地最高的建筑。\n"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return next(out.glob("rag_news_zh-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    site = Path(subprocess.check_output([path / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # The test environment's packages, appended after the venv's own: a plain path line, so the editable
    # install's finder (a .pth of its own there) is not run and `rag` comes from the wheel.
    (site / "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(path / "bin" / "python"), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return path


def test_the_wheel_holds_the_package_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {"rag/prompts/system.txt", "rag/prompts/answer.txt", "rag/prompts/rewrite.txt"} <= set(names)
    assert len([n for n in names if n.startswith("rag/seeds/") and n.endswith(".txt")]) == 5
    assert "rag/web/app.py" in names and "rag/registry.py" in names
    weights = {"rag/reader/weights/reader", "rag/embeddings/weights/query-student"}  # without them: slower, worse
    assert {f"{w}.{suffix}" for w in weights for suffix in ("safetensors", "json")} <= set(names)
    assert not [n for n in names if n.startswith(("tests/", "bench/", "app.py"))]


def test_installed_commands_work_outside_the_repository(venv: Path, tmp_path: Path, chat_server) -> None:
    work = tmp_path / "elsewhere"
    docs = work / "docs"
    docs.mkdir(parents=True)
    (docs / "灯塔.txt").write_text(NEWS, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "OPENAI_", "PYTHON"))}
    env |= {"RAG_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    rag = str(venv / "bin" / "rag")

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([rag, *args], cwd=work, env=env | extra, capture_output=True, text=True, timeout=600)

    where = subprocess.run([venv / "bin" / "python", "-c", "import rag; print(rag.__file__)"], cwd=work, env=env, capture_output=True, text=True)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    result = run("index", "docs")
    assert result.returncode == 0 and "added 1 document(s)" in result.stdout, result.stderr
    assert (tmp_path / "data" / "default" / "CURRENT").is_file() and not (work / "indexes").exists()
    result = run("ask", "白沙湾的灯塔有多高？")
    assert result.returncode == 0 and "42米" in result.stdout, result.stderr

    chat_server.reply = "灯塔高42米[1]。"
    result = run("ask", "白沙湾的灯塔有多高？", "--generator", "openai", "--json", OPENAI_BASE_URL=chat_server.base_url, OPENAI_API_KEY="sk-test")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["generator"].startswith("openai") and "42米" in answer["text"] and answer["citations"]
    system = chat_server.requests[-1]["messages"][0]["content"]
    assert "新闻问答助手" in system  # the system prompt, read from the installed package

    empty = work / "empty"
    empty.mkdir()
    result = run("index", "empty", "--kb", "nothing")
    assert result.returncode == 1 and "nothing to index" in result.stderr and not (tmp_path / "data" / "nothing").exists()

    port = free_port()
    page = subprocess.Popen([rag, "app", "--port", str(port)], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert page.poll() is None and time.monotonic() < deadline, page.stdout.read() if page.poll() is not None else "timeout"
                time.sleep(0.5)
    finally:
        page.terminate()
        page.wait(timeout=30)


def test_quickstart_notebook_runs_on_the_installed_wheel(venv: Path, tmp_path: Path, seed_index_dir: Path) -> None:
    """The notebook in a Jupyter kernel started from the wheel's venv, away from the source tree."""
    import nbformat
    from nbclient import NotebookClient

    kernels = tmp_path / "jupyter" / "kernels" / "rag-wheel"
    kernels.mkdir(parents=True)
    argv = [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (kernels / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "rag wheel", "language": "python"}))
    work = tmp_path / "notebooks"
    work.mkdir()
    (work / "seeds_qa.jsonl").write_bytes((ROOT / "examples" / "seeds_qa.jsonl").read_bytes())  # the notebook reads it
    notebook = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("import rag; print('rag from', rag.__file__)"))
    environment = {"JUPYTER_PATH": str(tmp_path / "jupyter"), "RAG_INDEX_DIR": str(seed_index_dir), "OMP_NUM_THREADS": "1"}
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)  # the kernel inherits this process's environment
    try:
        NotebookClient(notebook, timeout=300, kernel_name="rag-wheel", resources={"metadata": {"path": str(work)}}).execute()
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert f"rag from {venv}" in text and "包含标准答案" in text
