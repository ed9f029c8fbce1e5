"""Okapi BM25 over pre-tokenised chunks (jieba tokens of t2s-normalised text)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np


class BM25:
    def __init__(self, documents: list[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.size = len(documents)
        lengths = np.array([len(tokens) for tokens in documents], dtype=np.float32)
        average = float(lengths.mean()) if self.size else 0.0
        # Per-document length normalisation, computed once.
        self._norm = self.k1 * (1 - self.b + self.b * lengths / max(average, 1e-9))
        postings: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for row, tokens in enumerate(documents):
            for term, tf in Counter(tokens).items():
                rows, tfs = postings[term]
                rows.append(row)
                tfs.append(tf)
        self._postings = {
            term: (np.array(rows, dtype=np.int64), np.array(tfs, dtype=np.float32))
            for term, (rows, tfs) in postings.items()
        }

    def idf(self, term: str) -> float:
        df = len(self._postings[term][0]) if term in self._postings else 0
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def scores(self, query: list[str]) -> np.ndarray:
        scores = np.zeros(self.size, dtype=np.float32)
        for term, count in Counter(query).items():
            posting = self._postings.get(term)
            if posting is None:
                continue
            rows, tf = posting
            scores[rows] += count * self.idf(term) * tf * (self.k1 + 1) / (tf + self._norm[rows])
        return scores

    def top(self, query: list[str], n: int) -> list[tuple[int, float]]:
        """Rows and scores of the ``n`` best documents with a positive score, best first."""
        scores = self.scores(query)
        n = min(n, int((scores > 0).sum()))
        if n <= 0:
            return []
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(row), float(scores[row])) for row in best]
