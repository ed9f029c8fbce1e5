"""Hybrid retrieval: BM25 (t2s jieba tokens) + dense vectors, fused linearly (or by reciprocal rank),
near-duplicates collapsed, optionally re-ranked by a cross-encoder."""

from __future__ import annotations

import re
from functools import lru_cache

from .embeddings import DenseEmbeddings
from .rerank import CrossEncoderReranker
from .settings import RetrievalMode, Settings
from .store import Index, Snapshot
from .text import is_traditional, normalize, to_simplified, to_traditional, tokenize
from .threads import capped_threads, idle_cores
from .types import Chunk, Hit
from .validation import check_k

_NOT_CONTENT = re.compile(r"[\W_]+", re.UNICODE)


@lru_cache(maxsize=50_000)
def _trigrams(normalized_text: str) -> frozenset[str]:
    text = _NOT_CONTENT.sub("", normalized_text)
    return frozenset(text[i : i + 3] for i in range(max(1, len(text) - 2)))


def near_duplicate(a: Chunk, b: Chunk, threshold: float) -> bool:
    """Same passage, whatever the script: trigram containment of the t2s-normalised texts."""
    grams_a, grams_b = _trigrams(a.normalized), _trigrams(b.normalized)
    smaller = min(len(grams_a), len(grams_b))
    return smaller > 0 and len(grams_a & grams_b) / smaller >= threshold


class Retriever:
    """Searches one :class:`~rag.store.Index` according to the settings: its lexical and dense stores, fused here."""

    def __init__(
        self,
        index: Index,
        embeddings: DenseEmbeddings,
        settings: Settings,
        reranker: CrossEncoderReranker | None = None,
    ) -> None:
        self.index = index
        self.embeddings = embeddings
        self.settings = settings
        self.reranker = reranker
        if reranker is None and settings.reranker:
            self.reranker = CrossEncoderReranker(settings.reranker, settings.embedding_device)

    def search(self, question: str, k: int | None = None, mode: RetrievalMode | None = None) -> list[Hit]:
        k = check_k(self.settings.k if k is None else k)
        mode = mode or self.settings.mode
        snapshot = self.index.snapshot
        if not snapshot.chunks or not question.strip():
            return []
        depth = max(self.settings.candidates, k)
        ranked: dict[str, list[tuple[int, float]]] = {}  # (chunk key, score), best first
        if mode in ("hybrid", "bm25"):
            ranked["bm25"] = snapshot.lexical.top(tokenize(question), depth)
        if mode in ("hybrid", "dense"):
            ranked["dense"] = self._dense(snapshot, question, depth)
        hits = self._fuse(snapshot, ranked, mode)
        if self.reranker is not None:
            hits = self.reranker.rerank(question, hits[: max(3 * k, 20)])
        return self._collapse(hits, k, self._script(question))

    def _dense(self, snapshot: Snapshot, question: str, depth: int) -> list[tuple[int, float]]:
        with capped_threads(self.settings.search_threads or idle_cores()):
            vector = self.embeddings.embed_queries([normalize(question)])[0]
            keys, scores = snapshot.vectors.search(vector, depth)
        return [(int(key), float(score)) for key, score in zip(keys, scores)]

    def _fuse(self, snapshot: Snapshot, ranked: dict[str, list[tuple[int, float]]], mode: str) -> list[Hit]:
        hits: dict[int, Hit] = {}
        for name, keys in ranked.items():
            for key, score in keys:
                hits.setdefault(key, Hit(snapshot.chunk(key), 0.0)).scores[name] = score
        if mode != "hybrid":
            for hit in hits.values():
                hit.score = hit.scores[mode]
        elif self.settings.fusion == "rrf":
            self._fuse_rrf(hits, ranked)
        else:
            self._fuse_linear(hits, ranked)
        return sorted(hits.values(), key=lambda hit: -hit.score)

    def _fuse_rrf(self, hits: dict[int, Hit], ranked: dict[str, list[tuple[int, float]]]) -> None:
        weights = {"bm25": self.settings.weight_bm25, "dense": self.settings.weight_dense}
        for name, keys in ranked.items():
            for rank, (key, _) in enumerate(keys, start=1):
                hits[key].score += weights[name] / (self.settings.rrf_k + rank)

    def _fuse_linear(self, hits: dict[int, Hit], ranked: dict[str, list[tuple[int, float]]]) -> None:
        """BM25 divided by the best BM25 score plus min-max scaled cosine; a candidate missing from one
        list gets that list's floor. Measured on CMRC/DRCD samples: hit@1 0.985/0.960 against
        0.971/0.939 for the best RRF weighting and 0.968/0.938 for BM25 alone."""
        bm25, dense = ranked.get("bm25", []), ranked.get("dense", [])
        top_bm25 = max((score for _, score in bm25), default=0.0)
        low, high = min((s for _, s in dense), default=0.0), max((s for _, s in dense), default=0.0)
        for hit in hits.values():
            lexical = hit.scores.get("bm25", 0.0) / top_bm25 if top_bm25 > 0 else 0.0
            semantic = (hit.scores.get("dense", low) - low) / (high - low) if high > low else 0.0
            hit.score = self.settings.weight_bm25 * lexical + self.settings.weight_dense * semantic

    def _script(self, question: str) -> bool | None:
        """True/False: answers are traditional/simplified; None: the question does not tell."""
        if self.settings.answer_script != "auto":
            return self.settings.answer_script == "traditional"
        if to_simplified(question) == question and to_traditional(question) == question:
            return None
        return is_traditional(question)

    def _collapse(self, hits: list[Hit], k: int, traditional: bool | None) -> list[Hit]:
        """The best ``k`` hits, each near-duplicate folded into the one kept (``also_in``); of a pair of copies
        in both scripts, the one in the answer's script is shown."""
        kept: list[Hit] = []
        for hit in hits:
            twin = next((h for h in kept if near_duplicate(h.chunk, hit.chunk, self.settings.dedupe_threshold)), None)
            if twin is not None:
                in_script = traditional is not None and is_traditional(hit.chunk.clean) == traditional
                if in_script and is_traditional(twin.chunk.clean) != traditional:
                    twin.also_in.append(twin.chunk.id)
                    twin.chunk = hit.chunk
                else:
                    twin.also_in.append(hit.chunk.id)
                continue
            if len(kept) == k:
                break
            kept.append(hit)
        for rank, hit in enumerate(kept, start=1):
            hit.rank = rank
        return kept
