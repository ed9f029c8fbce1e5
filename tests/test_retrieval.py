"""Hybrid retrieval over the seeds: quality guard, cross-script questions, near-duplicate collapse, modes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag import KnowledgeBase
from rag.retrieval import near_duplicate
from rag.text import is_traditional, to_traditional
from rag.types import Hit


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def found(hits: list[Hit], item: dict) -> bool:
    """A hit: some retrieved chunk contains an evidence quote (whitespace ignored)."""
    return any(squeeze(e["quote"]) in squeeze(hit.chunk.text) for hit in hits for e in item["evidence"])


def page(hit: Hit) -> str:
    return Path(hit.chunk.source).name[:3]


def test_hybrid_hit_at_5_on_the_seed_questions(seed_knowledge: KnowledgeBase, seed_qa: list[dict]) -> None:
    answerable = [item for item in seed_qa if item["evidence"]]
    assert len(answerable) >= 70
    missed = [item["id"] for item in answerable if not found(seed_knowledge.search(item["question"], k=5), item)]
    assert 1 - len(missed) / len(answerable) >= 0.95, missed


@pytest.mark.parametrize("mode", ["hybrid", "bm25"])
def test_simplified_questions_find_the_traditional_page(
    seed_knowledge: KnowledgeBase, seed_qa: list[dict], mode: str
) -> None:
    items = [item for item in seed_qa if item["type"] == "cross_script"]
    assert len(items) >= 5
    for item in items:
        assert all("/000_" in e["file"] for e in item["evidence"])
        hits = seed_knowledge.search(item["question"], k=5, mode=mode)
        assert found(hits, item), (item["id"], item["question"])


def test_traditional_questions_find_the_simplified_pages(seed_knowledge: KnowledgeBase, seed_qa: list[dict]) -> None:
    items = [i for i in seed_qa if i["evidence"] and not any("/000_" in e["file"] for e in i["evidence"])]
    assert len(items) >= 30
    missed = []
    for item in items:
        question = to_traditional(item["question"])
        assert question != item["question"] or item["type"] == "unanswerable"
        if not found(seed_knowledge.search(question, k=5), item):
            missed.append(item["id"])
    assert len(missed) / len(items) <= 0.05, missed


def test_the_same_article_in_both_scripts_fills_the_top_k_once(seed_knowledge: KnowledgeBase) -> None:
    question = "李强在北京调研时考察了哪些企业？"
    hits = seed_knowledge.search(question, k=5)
    for i, a in enumerate(hits):
        for b in hits[i + 1 :]:
            assert not near_duplicate(a.chunk, b.chunk, seed_knowledge.settings.dedupe_threshold)
    chunks = {c.id: c for c in seed_knowledge.index.snapshot.chunks}
    twins = [(hit, chunks[other]) for hit in hits for other in hit.also_in]
    assert twins, "no near-duplicate was collapsed"
    assert any({page(hit), Path(twin.source).name[:3]} == {"000", "002"} for hit, twin in twins)

    # Without the collapse, both versions of the article compete for the same places.
    plain = seed_knowledge.retriever_for(seed_knowledge.settings.with_overrides(dedupe_threshold=1.0))
    pages = [page(hit) for hit in plain.search(question, k=5)]
    assert "000" in pages and "002" in pages


@pytest.mark.parametrize("question", ["李强在北京调研时考察了哪些企业？", "李強在北京調研時考察了哪些企業？"])
def test_of_two_copies_the_one_in_the_questions_script_is_shown(seed_knowledge: KnowledgeBase, question: str) -> None:
    wanted = is_traditional(question)
    chunks = {c.id: c for c in seed_knowledge.index.snapshot.chunks}
    crossed = [
        hit for hit in seed_knowledge.search(question, k=5)
        if any(is_traditional(chunks[other].clean) != is_traditional(hit.chunk.clean) for other in hit.also_in)
    ]
    assert crossed, "no copy in the other script was collapsed"
    assert all(is_traditional(hit.chunk.clean) == wanted for hit in crossed)


def test_near_duplicate_ignores_script_but_not_content(seed_knowledge: KnowledgeBase) -> None:
    chunks = seed_knowledge.index.snapshot.chunks
    first = {name: next(c for c in chunks if Path(c.source).name.startswith(name)) for name in ("000", "001", "002")}
    assert near_duplicate(first["000"], first["002"], 0.6)
    assert not near_duplicate(first["000"], first["001"], 0.6)


def test_modes_scores_ranks_and_k(seed_knowledge: KnowledgeBase) -> None:
    question = "黑龍江的邊境線有多長？"
    bm25 = seed_knowledge.search(question, k=3, mode="bm25")
    dense = seed_knowledge.search(question, k=3, mode="dense")
    hybrid = seed_knowledge.search(question, k=7, mode="hybrid")
    assert [len(bm25), len(dense), len(hybrid)] == [3, 3, 7]
    assert all(set(hit.scores) == {"bm25"} for hit in bm25)
    assert all(set(hit.scores) == {"dense"} for hit in dense)
    assert any(set(hit.scores) == {"bm25", "dense"} for hit in hybrid)
    for hits in (bm25, dense, hybrid):
        assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
        assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert "2981公里" in bm25[0].chunk.text
    assert len(seed_knowledge.search(question)) == seed_knowledge.settings.k


def test_questions_without_content_return_nothing(seed_knowledge: KnowledgeBase) -> None:
    assert seed_knowledge.retriever.search("   ") == []
    assert seed_knowledge.search("请问是什么？", mode="bm25") == []  # only stopwords: nothing to match


def test_hit_dicts_point_into_the_stored_documents(seed_knowledge: KnowledgeBase) -> None:
    documents = seed_knowledge.index.snapshot.documents
    for hit in seed_knowledge.search("新疆跨境电商发展", k=5):
        row = hit.to_dict()
        assert documents[row["doc_id"]].document.text[row["start"] : row["end"]] == row["text"]
        assert row["chunk_id"] == hit.chunk.id and row["rank"] == hit.rank
