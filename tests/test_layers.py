"""Layering: the storage backends persist, publish and verify; they never run the indexing pipeline,
and the faces go through :class:`~rag.knowledge.KnowledgeBase` rather than the store."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rag"
#: What makes rows out of documents: chunking, embedding, cleaning and tokenising, and the pipeline itself.
PIPELINE = ("rag.chunking", "rag.embeddings", "rag.text", "rag.indexing")


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved), at any depth in the file."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_import_reader_resolves_relative_imports() -> None:
    names = imported_modules(PACKAGE / "knowledge.py")
    assert "rag.indexing" in names and "rag.store" in names
    assert "rag.settings" in imported_modules(PACKAGE / "store" / "index.py")


@pytest.mark.parametrize("path", sorted((PACKAGE / "store").glob("*.py")), ids=lambda p: p.name)
def test_store_modules_do_not_import_the_indexing_pipeline(path: Path) -> None:
    offending = sorted(n for n in imported_modules(path) if any(n == m or n.startswith(m + ".") for m in PIPELINE))
    assert offending == [], f"{path.name} imports {offending}"


FACES = ["web", "api", "eval", "assistant.py", "cli.py", "startup.py"]


@pytest.mark.parametrize("face", FACES)
def test_faces_do_not_reach_into_the_store(face: str) -> None:
    root = PACKAGE / face
    files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
    for path in files:
        source = path.read_text(encoding="utf-8")
        for internal in (".index.", ".snapshot", "Index.create", "Index.open", "Index.exists"):
            assert internal not in source, f"{path.relative_to(PACKAGE)} uses {internal}"
