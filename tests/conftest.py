"""Shared fixtures: one index over the seeds, built once per test session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag import KnowledgeBase, Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_QA = ROOT / "examples" / "seeds_qa.jsonl"
DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def seed_qa() -> list[dict]:
    return [json.loads(line) for line in SEED_QA.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only index of seeds/ built with the default settings. Copy it before changing it."""
    path = tmp_path_factory.mktemp("index") / "seeds"
    KnowledgeBase.build([SEEDS], Settings(index_dir=path))
    return path


@pytest.fixture(scope="session")
def seed_knowledge(seed_index_dir: Path) -> KnowledgeBase:
    """The shared seeds knowledge base (do not add or remove documents through it)."""
    return KnowledgeBase.open(Settings(index_dir=seed_index_dir), build_if_missing=False)


@pytest.fixture()
def writable_index_dir(seed_index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the seeds index that a test may change."""
    path = tmp_path / "index"
    shutil.copytree(seed_index_dir, path)
    return path
