"""Okapi BM25 over pre-tokenised chunks (jieba tokens of t2s-normalised text), addressed by integer keys.

An in-memory :class:`~rag.store.backend.LexicalStore` (the naive evaluation baseline's, and the reference
the local backend's segment scoring is tested against: rag.store.view scores the same way). Postings are
built from the stored tokens on the first search after a change, so a batch of adds and removes costs one
build."""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np


class _Postings:
    """The scoring tables of one fixed set of token lists (rows in the order given)."""

    def __init__(self, documents: list[list[str]], k1: float, b: float) -> None:
        self.k1 = k1
        self.size = len(documents)
        lengths = np.array([len(tokens) for tokens in documents], dtype=np.float32)
        average = float(lengths.mean()) if self.size else 0.0
        # Per-document length normalisation, computed once.
        self.norm = k1 * (1 - b + b * lengths / max(average, 1e-9))
        postings: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for row, tokens in enumerate(documents):
            for term, tf in Counter(tokens).items():
                rows, tfs = postings[term]
                rows.append(row)
                tfs.append(tf)
        self.postings = {
            term: (np.array(rows, dtype=np.int64), np.array(tfs, dtype=np.float32))
            for term, (rows, tfs) in postings.items()
        }

    def idf(self, term: str) -> float:
        df = len(self.postings[term][0]) if term in self.postings else 0
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def scores(self, query: list[str]) -> np.ndarray:
        scores = np.zeros(self.size, dtype=np.float32)
        for term, count in Counter(query).items():
            posting = self.postings.get(term)
            if posting is None:
                continue
            rows, tf = posting
            scores[rows] += count * self.idf(term) * tf * (self.k1 + 1) / (tf + self.norm[rows])
        return scores


class BM25:
    """BM25 with ``add``/``remove`` by key; ``top`` returns keys. ``BM25(token_lists)`` keys them 0, 1, …"""

    def __init__(
        self, documents: Sequence[list[str]] = (), keys: Sequence[int] | None = None, k1: float = 1.2, b: float = 0.75
    ) -> None:
        self.k1, self.b = k1, b
        self._tokens: dict[int, list[str]] = {}
        self._tables: _Postings | None = None
        self._order = np.zeros(0, dtype=np.int64)  # key of each row of the tables
        self._lock = threading.Lock()  # one build when several searches find the tables stale
        self.add(range(len(documents)) if keys is None else keys, documents)

    def __len__(self) -> int:
        return len(self._tokens)

    def add(self, keys: Sequence[int], tokens: Sequence[list[str]]) -> None:
        keys = [int(key) for key in keys]
        if len(keys) != len(tokens):
            raise ValueError(f"{len(keys)} keys for {len(tokens)} token lists")
        for key, terms in zip(keys, tokens):
            self._tokens.pop(key, None)  # an upsert moves the key to the end, as a new row
            self._tokens[key] = list(terms)
        self._tables = None

    def remove(self, keys: Sequence[int]) -> int:
        removed = sum(self._tokens.pop(int(key), None) is not None for key in keys)
        if removed:
            self._tables = None
        return removed

    def _built(self) -> tuple[_Postings, np.ndarray]:
        with self._lock:
            if self._tables is None:
                self._order = np.fromiter(self._tokens, dtype=np.int64, count=len(self._tokens))
                self._tables = _Postings(list(self._tokens.values()), self.k1, self.b)
            return self._tables, self._order

    def idf(self, term: str) -> float:
        return self._built()[0].idf(term)

    def top(self, query: list[str], n: int) -> list[tuple[int, float]]:
        """Keys and scores of the ``n`` best chunks with a positive score, best first."""
        tables, order = self._built()
        scores = tables.scores(query)
        n = min(n, int((scores > 0).sum()))
        if n <= 0:
            return []
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(order[row]), float(scores[row])) for row in best]
