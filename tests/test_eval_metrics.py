"""Metric functions on small cases checked by hand, relevance matching, and config parsing."""

from __future__ import annotations

import math

import pytest

from rag.eval.configs import parse_config, parse_configs
from rag.eval.datasets import EvalItem, Evidence, question_type
from rag.eval.metrics import (
    best_f1,
    char_f1,
    contains_gold,
    covered_evidence,
    exact_match,
    hit_at_k,
    is_relevant,
    ndcg_at_k,
    normalize_answer,
    percentile,
    reciprocal_rank,
    refusal_scores,
)
from rag.types import Chunk


def test_hit_at_k():
    ranked = [False, False, True, False]
    assert [hit_at_k(ranked, k) for k in (1, 2, 3, 10)] == [0.0, 0.0, 1.0, 1.0]
    assert hit_at_k([], 5) == 0.0


def test_reciprocal_rank():
    assert reciprocal_rank([False, True, True]) == 0.5
    assert reciprocal_rank([False, False, False, True]) == 0.25
    assert reciprocal_rank([False, False, False, True], k=3) == 0.0
    assert reciprocal_rank([]) == 0.0


def test_ndcg_by_hand():
    # Relevant at ranks 2 and 4 of 2 relevant passages: (1/log2 3 + 1/log2 5) / (1 + 1/log2 3).
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k([False, True, False, True], 10, 2) == pytest.approx(expected)
    assert expected == pytest.approx(0.6509, abs=1e-4)
    assert ndcg_at_k([True, True], 10, 2) == pytest.approx(1.0)
    # The ideal ranking holds at most k relevant passages.
    assert ndcg_at_k([True], 1, 5) == pytest.approx(1.0)
    assert ndcg_at_k([False, False], 10, 0) == 0.0


def test_char_f1_by_hand():
    # 6 shared characters; precision 6/13, recall 6/6 → F1 = 12/19.
    assert char_f1("黑龙江有2981公里边境线", "2981公里") == pytest.approx(12 / 19)
    assert char_f1("2981公里", "2981公里") == 1.0
    assert char_f1("北京", "上海") == 0.0
    # Script, width and punctuation do not count.
    assert char_f1("「2978.3億元」", "2978.3亿元") == 1.0
    assert best_f1("2981公里", ["边境线", "2981公里"]) == 1.0
    assert best_f1("anything", []) == 0.0


def test_exact_match_and_contains():
    assert normalize_answer(" 國務院總理，李強！") == "国务院总理李强"
    assert exact_match("國務院。", ["国务院"]) == 1.0
    assert exact_match("国务院总理", ["国务院"]) == 0.0
    assert contains_gold("他在3月13日到北京调研。[1]", ["3月13日"]) == 1.0
    assert contains_gold("他在3月到北京调研。", ["3月13日", "13日"]) == 0.0
    assert contains_gold("随便什么", [""]) == 0.0


def test_refusal_precision_recall_by_hand():
    # 4 questions, the last two unanswerable; refused: 2nd (wrongly) and 3rd (rightly).
    scores = refusal_scores([False, True, True, False], [True, True, False, False])
    assert scores["refusal_precision"] == 0.5
    assert scores["refusal_recall"] == 0.5
    assert scores["refusal_rate"] == 0.5
    none = refusal_scores([False, False], [True, True])
    assert none["refusal_precision"] is None and none["refusal_recall"] is None


def test_percentile_matches_linear_interpolation():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile([], 50) is None


def _chunk(text: str, doc_id: str = "d1") -> Chunk:
    return Chunk("c", doc_id, "s.txt", text, text, text, "", 0, len(text), 1, 1)


def test_relevance_quote_ignores_whitespace_and_script():
    item = EvalItem("q", "?", "3月13日", evidence=(Evidence("a.txt", "國務院總理李強3月13日在北京調研"),))
    assert is_relevant(_chunk("新华社北京电 国务院总理李强3月13日\n在北京调研新质生产力"), item)
    assert not is_relevant(_chunk("国务院总理李强3月14日在北京调研"), item)


def test_relevance_gold_document_and_pieces():
    item = EvalItem("q", "?", "x", evidence=(Evidence("a.txt", doc_id="d1"), Evidence("b.txt", "第二段")))
    assert covered_evidence(_chunk("无关", "d1"), item) == {0}
    assert covered_evidence(_chunk("这是第二段", "d2"), item) == {1}
    assert covered_evidence(_chunk("无关", "d2"), item) == frozenset()


def test_question_type_labels():
    assert question_type("李强是哪一年出生的？") == "time"
    assert question_type("谁发明了电话？") == "person"
    assert question_type("黑龍江的邊境線有多長？") == "number"
    assert question_type("为什么要这样做？") == "reason"


def test_parse_configs():
    assert parse_config("bm25").overrides == {"mode": "bm25"}
    assert parse_config("chunk300 chunk_size=300,chunk_overlap=30").overrides == {
        "chunk_size": "300",
        "chunk_overlap": "30",
    }
    assert parse_config("rerank:reranker=/models/x").overrides == {"reranker": "/models/x"}
    assert [c.name for c in parse_configs(None)] == ["bm25", "dense", "hybrid", "naive"]
    assert parse_config("naive").naive
    for bad in ("", "x nosuchfield=1", "x novalue"):
        with pytest.raises(ValueError):
            parse_config(bad)
    with pytest.raises(ValueError):
        parse_configs(["bm25", "bm25 k=3"])
