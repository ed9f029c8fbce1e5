"""Evaluators in the sentence-transformers style: built from the queries, the corpus and what is
relevant, called with a system, returning a flat ``{metric: value}`` dict.

Each keeps its per-question rows (``.rows``) and can aggregate any subset of them again
(``.aggregate(rows)``), which is how the per-``type`` breakdowns are made.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

from ..answer.citations import MARKER
from ..types import Answer, Chunk, Hit
from .datasets import EvalItem
from .metrics import (
    best_f1,
    contains_gold,
    covered_evidence,
    exact_match,
    hit_at_k,
    is_relevant,
    mean,
    median,
    ndcg_at_k,
    percentile,
    reciprocal_rank,
    refusal_scores,
)

Search = Callable[[str, int], list[Hit]]
Ask = Callable[[str], Answer]


class RelevanceJudge:
    """Relevance of retrieved passages within one corpus; a passage also covers what the
    near-duplicates collapsed into it (``Hit.also_in``) cover."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        self.chunks = {chunk.id: chunk for chunk in chunks}
        self._per_document = Counter(chunk.doc_id for chunk in chunks)

    def covers(self, hit: Hit, item: EvalItem) -> frozenset[int]:
        covered = covered_evidence(hit.chunk, item)
        for chunk_id in hit.also_in:
            if chunk_id in self.chunks:
                covered |= covered_evidence(self.chunks[chunk_id], item)
        return covered

    def relevant(self, hit: Hit, item: EvalItem) -> bool:
        return bool(self.covers(hit, item))

    def count(self, item: EvalItem) -> int:
        """How many corpus chunks are relevant (the ideal ranking for nDCG)."""
        documents = {e.doc_id for e in item.evidence if e.doc_id}
        if documents:
            return sum(self._per_document[d] for d in documents)
        return sum(is_relevant(chunk, item) for chunk in self.chunks.values()) if item.evidence else 0


def _brief(hit: Hit) -> dict[str, Any]:
    return {"rank": hit.rank, "source": hit.chunk.source, "chunk_id": hit.chunk.id, "text": hit.chunk.clean[:80]}


def _latency(prefix: str, seconds: Sequence[float]) -> dict[str, float | None]:
    ms = [s * 1000 for s in seconds]
    return {f"{prefix}_p50_ms": percentile(ms, 50), f"{prefix}_p95_ms": percentile(ms, 95)}


class RetrievalEvaluator:
    """hit@k, MRR@k and nDCG@k for a search function ``(question, k) -> hits``; questions
    without evidence (unanswerable) are skipped."""

    def __init__(
        self,
        items: Sequence[EvalItem],
        judge: RelevanceJudge,
        ks: Sequence[int] = (1, 3, 5, 10),
        progress: bool = True,
        name: str = "",
    ) -> None:
        self.items = [item for item in items if item.evidence]
        self.judge = judge
        self.ks = tuple(sorted(ks))
        self.progress = progress
        self.name = name
        self.rows: list[dict[str, Any]] = []

    def __call__(self, search: Search) -> dict[str, float | None]:
        depth = self.ks[-1]
        self.rows = []
        for item in tqdm(self.items, desc=f"{self.name} retrieval".strip(), unit="q", disable=not self.progress):
            started = time.perf_counter()
            hits = search(item.question, depth)
            seconds = time.perf_counter() - started
            self.rows.append(
                {
                    "id": item.id,
                    "type": item.type,
                    "relevance": [self.judge.relevant(hit, item) for hit in hits[:depth]],
                    "n_relevant": self.judge.count(item),
                    "search_s": seconds,
                    "retrieved": [_brief(hit) for hit in hits[:3]],
                }
            )
        return self.aggregate(self.rows)

    def aggregate(self, rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
        if not rows:
            return {}
        depth = self.ks[-1]
        metrics: dict[str, float | None] = {"questions": float(len(rows))}
        for k in self.ks:
            metrics[f"hit@{k}"] = mean([hit_at_k(r["relevance"], k) for r in rows])
        metrics[f"mrr@{depth}"] = mean([reciprocal_rank(r["relevance"], depth) for r in rows])
        metrics[f"ndcg@{depth}"] = mean([ndcg_at_k(r["relevance"], depth, r["n_relevant"]) for r in rows])
        metrics.update(_latency("search", [r["search_s"] for r in rows]))
        return metrics

    def curve(self, rows: Sequence[dict[str, Any]] | None = None) -> list[float]:
        """hit@k for k = 1 .. max k (for plots)."""
        rows = self.rows if rows is None else rows
        return [mean([hit_at_k(r["relevance"], k) for r in rows]) or 0.0 for k in range(1, self.ks[-1] + 1)]


def _without_markers(text: str) -> str:
    return MARKER.sub("", text)


class AnswerEvaluator:
    """Answer, refusal and citation quality, answer length and per-stage latency for an ask
    function ``question -> Answer``."""

    def __init__(self, items: Sequence[EvalItem], judge: RelevanceJudge, progress: bool = True, name: str = "") -> None:
        self.items = list(items)
        self.judge = judge
        self.progress = progress
        self.name = name
        self.rows: list[dict[str, Any]] = []

    def __call__(self, ask: Ask) -> dict[str, float | None]:
        self.rows = []
        for item in tqdm(self.items, desc=f"{self.name} answers".strip(), unit="q", disable=not self.progress):
            started = time.perf_counter()
            answer = ask(item.question)
            elapsed = time.perf_counter() - started
            self.rows.append(self._row(item, answer, elapsed))
        return self.aggregate(self.rows)

    def _row(self, item: EvalItem, answer: Answer, elapsed: float) -> dict[str, Any]:
        shown = {hit.chunk.id: hit for hit in answer.passages}
        shown_evidence = frozenset().union(*(self.judge.covers(hit, item) for hit in shown.values()))
        cited, cited_evidence = [], frozenset()
        for citation in answer.citations:
            hit = shown.get(citation.chunk.id) or Hit(citation.chunk, 0.0)
            covered = self.judge.covers(hit, item)
            cited_evidence |= covered
            cited.append({"n": citation.n, "chunk_id": citation.chunk.id, "quote": citation.quote,
                          "relevant": bool(covered)})
        answered = item.answerable and not answer.refused
        return {
            "id": item.id,
            "type": item.type,
            "question": item.question,
            "gold": item.answer,
            "answerable": item.answerable,
            "answer": answer.text,
            "refused": answer.refused,
            "contains": contains_gold(answer.text, item.golds) if answered else 0.0,
            "f1": best_f1(answer.text, item.golds) if answered else 0.0,
            "em": exact_match(answer.text, item.golds) if answered else 0.0,
            # The short answer the text leads with (the whole text when there is none), scored alone.
            "span_f1": best_f1(answer.span or _without_markers(answer.text), item.golds) if answered else 0.0,
            "span_em": exact_match(answer.span or _without_markers(answer.text), item.golds) if answered else 0.0,
            "length": len(answer.text),
            "citations": cited,
            # Precision: cited passages that are relevant. Recall: evidence pieces (quotes, gold
            # context) present in the shown passages that a citation points at.
            "citation_precision": sum(c["relevant"] for c in cited) / len(cited) if cited and item.answerable else None,
            "citation_recall": len(cited_evidence & shown_evidence) / len(shown_evidence)
            if shown_evidence and answered
            else None,
            "shown": [hit.chunk.id for hit in answer.passages],
            "retrieve_s": answer.timings.get("retrieve", 0.0),
            "generate_s": answer.timings.get("generate", 0.0),
            "total_s": answer.timings.get("total", elapsed),
        }

    def aggregate(self, rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
        if not rows:
            return {}
        answerable = [r for r in rows if r["answerable"]]
        metrics: dict[str, float | None] = {
            "questions": float(len(rows)),
            "contains_gold": mean([r["contains"] for r in answerable]),
            "f1": mean([r["f1"] for r in answerable]),
            "em": mean([r["em"] for r in answerable]),
            "span_f1": mean([r["span_f1"] for r in answerable]),
            "span_em": mean([r["span_em"] for r in answerable]),
            **refusal_scores([r["refused"] for r in rows], [r["answerable"] for r in rows]),
            "citation_precision": mean([r["citation_precision"] for r in rows]),
            "citation_recall": mean([r["citation_recall"] for r in rows]),
            "median_answer_chars": median([r["length"] for r in rows if not r["refused"]]),
        }
        for stage in ("retrieve", "generate", "total"):
            metrics.update(_latency(stage, [r[f"{stage}_s"] for r in rows]))
        return metrics
