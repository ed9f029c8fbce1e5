"""Metric functions: pure, small, checked by hand in tests/test_eval_metrics.py.

Ranked relevance is a list of booleans, best first. Answers are compared after
:func:`normalize_answer` (traditional → simplified, NFKC, lower case, no punctuation or spaces).
"""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

from ..text import normalize
from ..types import Chunk
from .datasets import EvalItem

_SPACE = re.compile(r"\s+")


# ----------------------------------------------------------------------------- relevance
@lru_cache(maxsize=200_000)
def squash(text: str) -> str:
    """Matching form of a passage or quote: normalised (t2s, NFKC, lower) without whitespace."""
    return _SPACE.sub("", normalize(text))


def covered_evidence(chunk: Chunk, item: EvalItem) -> frozenset[int]:
    """Indexes of the item's evidence pieces that the chunk covers: it lies in the gold document,
    or contains the quote. Quotes match whitespace- and script-insensitively, so the simplified
    twin of a traditional article counts: it is the same evidence."""
    return frozenset(
        number
        for number, evidence in enumerate(item.evidence)
        if (chunk.doc_id == evidence.doc_id if evidence.doc_id else squash(evidence.quote) in squash(chunk.text))
    )


def is_relevant(chunk: Chunk, item: EvalItem) -> bool:
    return bool(covered_evidence(chunk, item))


# ----------------------------------------------------------------------------- ranking
def hit_at_k(relevance: Sequence[bool], k: int) -> float:
    return float(any(relevance[:k]))


def reciprocal_rank(relevance: Sequence[bool], k: int | None = None) -> float:
    for rank, relevant in enumerate(relevance[:k] if k else relevance, start=1):
        if relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(relevance: Sequence[bool], k: int, n_relevant: int) -> float:
    """Binary nDCG@k; the ideal ranking puts ``min(k, n_relevant)`` relevant passages first."""
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, n_relevant) + 1))
    if ideal == 0:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, relevant in enumerate(relevance[:k], start=1) if relevant)
    return dcg / ideal


# ----------------------------------------------------------------------------- answers
def normalize_answer(text: str) -> str:
    """Traditional → simplified, NFKC, lower case; punctuation, symbols and whitespace removed."""
    text = normalize(text)
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in "PSZ")


def char_f1(prediction: str, gold: str) -> float:
    """Character-bag F1 of two normalised strings (the SQuAD token F1 with characters as tokens)."""
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, golds: Sequence[str]) -> float:
    return max((char_f1(prediction, gold) for gold in golds), default=0.0)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(gold) for gold in golds))


def contains_gold(prediction: str, golds: Sequence[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(normalize_answer(gold) and normalize_answer(gold) in pred for gold in golds))


def refusal_scores(refused: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float | None]:
    """Precision and recall of refusing, with unanswerable questions as the positive class.

    ``None`` where undefined (no refusal at all; no unanswerable question)."""
    true_positive = sum(r and not a for r, a in zip(refused, answerable))
    refusals = sum(refused)
    unanswerable = sum(not a for a in answerable)
    return {
        "refusal_precision": true_positive / refusals if refusals else None,
        "refusal_recall": true_positive / unanswerable if unanswerable else None,
        "refusal_rate": refusals / len(refused) if refused else None,
    }


# ----------------------------------------------------------------------------- aggregation
def mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100), as numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
