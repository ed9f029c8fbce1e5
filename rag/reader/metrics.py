"""Span scores in the CMRC 2018 / DRCD style: character F1 and exact match, punctuation ignored."""

from __future__ import annotations

import unicodedata
from collections import Counter

from ..text import normalize


def _chars(text: str) -> list[str]:
    return [c for c in normalize(text) if not c.isspace() and not unicodedata.category(c).startswith("P")]


def span_f1(prediction: str, answers: tuple[str, ...] | list[str]) -> float:
    best = 0.0
    predicted = _chars(prediction)
    for answer in answers:
        gold = _chars(answer)
        common = sum((Counter(predicted) & Counter(gold)).values())
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def exact_match(prediction: str, answers: tuple[str, ...] | list[str]) -> float:
    predicted = _chars(prediction)
    return float(any(predicted == _chars(answer) for answer in answers))
