"""examples/quickstart.ipynb runs end to end (against the shared seeds index), so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_executes(monkeypatch: pytest.MonkeyPatch, seed_index_dir: Path) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_index_dir))  # the kernel inherits the environment
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel runs in the notebook's own folder, as `jupyter nbconvert --execute` and Jupyter do.
    folder = str(NOTEBOOK.parent)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
    outputs = {i: cell.get("outputs", []) for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    assert all(not any(o.get("output_type") == "error" for o in cell) for cell in outputs.values())
    html = [o["data"]["text/html"] for cell in outputs.values() for o in cell if "text/html" in o.get("data", {})]
    assert any("2981公里" in h and "<ol>" in h for h in html)  # the Answer rendered with its source list
    text = "".join(o.get("text", "") for cell in outputs.values() for o in cell)
    assert (
        "哈尔滨新区有多少户高新技术企业？" in text
        and "包含标准答案" in text
        and "True 根据现有资料无法回答该问题。" in text
    )
