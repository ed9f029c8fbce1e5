"""Sentence-level evidence: how well each sentence of the retrieved passages answers the question.

A sentence scores by the IDF-weighted share of the question's terms it contains (with its passage's
title and neighbouring sentences as weaker context), by whether it holds a span of the kind asked for
(a number with the asked unit, a person, a place …), and by the passage's retrieval rank. Numbers in
the question ("2021/2022年") must appear near the sentence: a near miss on a year is a different fact.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

from ..text import normalize, split_sentences
from ..types import Hit
from .question import Question
from .spans import Span, candidate_spans

_CLAUSE = re.compile(r"[，,；;：:]")
# A sentence opening with a pronoun continues the previous sentence's subject.
_ANAPHOR = re.compile(r"^\W*.{0,6}?(?:该|这|此|其|他|她|它)")
_YEAR = re.compile(r"^(?:19|20)\d\d年")
#: A sentence without a span of the asked kind is weak evidence for a "多少/谁/哪里" question.
NO_SPAN_FACTOR = 0.3
VAGUE_TIME_NO_SPAN_FACTOR = 0.7


@dataclass
class Evidence:
    """One candidate sentence and why it was chosen."""

    hit: Hit
    n: int  # citation number of the passage (its position among the shown passages)
    start: int  # sentence span in ``hit.chunk.clean``
    end: int
    score: float
    coverage: float  # weighted share of question terms in the sentence
    context: float  # … in the sentence with its neighbours and the passage title
    span: Span | None = None  # the answer span inside the sentence, when the question asks for one
    features: dict[str, float] = field(default_factory=dict)  # the inputs of ``score``, for a learned selector

    @property
    def sentence(self) -> str:
        return self.hit.chunk.clean[self.start : self.end].strip()


def _coverage(terms: tuple[str, ...], weights: list[float], text: str) -> float:
    total = sum(weights)
    return sum(w for t, w in zip(terms, weights) if t in text) / total if total else 0.0


def _no_span_factor(question: Question) -> float:
    # "什么时候" is often answered by an era or a festival (康熙年间, 元宵节) that no pattern catches;
    # a question naming its unit or class (哪一年, 多少公里, 哪家银行) must find one.
    if question.kind == "time" and not question.category:
        return VAGUE_TIME_NO_SPAN_FACTOR
    return NO_SPAN_FACTOR


def _best_span(question: Question, sentence: str, norm: str, terms: tuple[str, ...]) -> Span | None:
    """The candidate span nearest the question's terms, skipping spans the question itself contains.

    A longer candidate that contains the chosen one wins ("招商银行南宁分行" over "南宁分行").
    """
    positions = [m.start() for t in terms for m in re.finditer(re.escape(t), norm)]
    fitting: list[tuple[tuple[int, int], Span]] = []
    for span in candidate_spans(sentence, question.kind):
        span_norm = normalize(span.text)
        if span_norm in question.normalized or any(span_norm == t for t in terms):
            continue
        if not question.fits(span_norm):
            continue
        if question.kind == "number" and question.unit != "年" and _YEAR.match(span_norm):
            continue  # "2023年" is when, not how much
        distance = min((abs(p - span.start) for p in positions), default=len(sentence)) - span.bonus
        fitting.append(((distance, -(span.end - span.start)), span))
    if not fitting:
        return None
    best = min(fitting, key=lambda item: item[0])[1]
    containing = [s for _, s in fitting if s.start <= best.start and best.end <= s.end]
    return max(containing, key=lambda s: s.end - s.start)


def collect(question: Question, hits: list[Hit], idf: Callable[[str], float]) -> list[Evidence]:
    """Every sentence of the passages, scored, best first."""
    weights = [idf(t) for t in question.terms]
    found: list[Evidence] = []
    for n, hit in enumerate(hits, start=1):
        clean = hit.chunk.clean
        spans = split_sentences(clean)
        norms = [normalize(clean[s:e]) for s, e in spans]
        title = normalize(hit.chunk.title)
        chunk_norm = hit.chunk.normalized
        prior = 1.0 / (1.0 + 0.15 * (n - 1))
        for i, (start, end) in enumerate(spans):
            norm = norms[i]
            if len(norm.strip()) < 4:
                continue
            neighbourhood = " ".join([title, *norms[max(0, i - 1) : i + 2]])
            coverage = _coverage(question.terms, weights, norm)
            if i and _ANAPHOR.match(norm):  # "该公司负责人张琪说": the subject is in the sentence before
                coverage = max(coverage, _coverage(question.terms, weights, "".join(norms[max(0, i - 2) : i + 1])))
            context = _coverage(question.terms, weights, neighbourhood)
            in_passage = _coverage(question.terms, weights, chunk_norm)
            score = 0.55 * coverage + 0.25 * context + 0.1 * in_passage
            present = 1.0
            if question.numbers:
                present = sum(num in neighbourhood for num in question.numbers) / len(question.numbers)
                score *= 0.4 + 0.6 * present
            span = None
            if question.kind != "other":
                span = _best_span(question, clean[start:end], norm, question.terms)
                score *= 1.0 if span else _no_span_factor(question)
            score = score * (0.85 + 0.15 * prior)
            features = {
                "coverage": coverage,
                "context": context,
                "passage": in_passage,
                "numbers": present,
                "asks_span": float(question.kind != "other"),
                "has_span": float(span is not None),
                "missing_span": float(question.kind != "other" and span is None),
                "rank": float(n),
                "position": i / len(spans),
                "length": min(len(norm), 200) / 200,
            }
            found.append(Evidence(hit, n, start, end, score, coverage, context, span, features))
    found.sort(key=lambda e: -e.score)
    return found


def relevance(question: Question, text: str, idf: Callable[[str], float]) -> float:
    """Weighted share of the question's terms in ``text`` (an answer with its quotes): is it on topic?"""
    weights = [idf_weight(idf(t)) for t in question.terms]
    return _coverage(question.terms, weights, normalize(text))


def clause_window(sentence: str, focus: tuple[int, int], limit: int) -> str:
    """The clauses of ``sentence`` around ``focus`` that fit in ``limit`` characters, '……' marking cuts."""
    if len(sentence) <= limit:
        return sentence
    cuts = [0] + [m.end() for m in _CLAUSE.finditer(sentence)] + [len(sentence)]
    cuts = sorted(set(cuts))
    pieces = list(pairwise(cuts))
    centre = next((i for i, (s, e) in enumerate(pieces) if s <= focus[0] < e), 0)
    lo = hi = centre
    while True:
        grown = False
        if hi + 1 < len(pieces) and pieces[hi + 1][1] - pieces[lo][0] <= limit:
            hi, grown = hi + 1, True
        if lo > 0 and pieces[hi][1] - pieces[lo - 1][0] <= limit:
            lo, grown = lo - 1, True
        if not grown:
            break
    text = sentence[pieces[lo][0] : pieces[hi][1]]
    if len(text) > limit:  # one overlong clause: cut around the focus
        left = max(0, min(focus[0] - pieces[lo][0] - limit // 3, len(text) - limit))
        text = text[left : left + limit]
        return ("……" if left else "") + text + "……"
    prefix = "……" if lo > 0 else ""
    suffix = "" if hi == len(pieces) - 1 else "……"
    return prefix + text.rstrip("，,；;：:") + suffix


def idf_weight(value: float) -> float:
    """Damped IDF so that one rare word does not outweigh the rest of the question."""
    return math.sqrt(max(value, 0.0)) + 0.2
