"""Script conversion and normalisation for matching (never for display)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import opencc


@lru_cache(maxsize=None)
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    return _converter("t2s").convert(text)


def to_traditional(text: str) -> str:
    return _converter("s2t").convert(text)


def normalize(text: str) -> str:
    """Matching form: traditional → simplified, full-width → half-width (NFKC), lower case."""
    return unicodedata.normalize("NFKC", to_simplified(text)).lower()


def is_traditional(text: str) -> bool:
    """True when the text contains more characters that t2s changes than s2t changes."""
    simplified = to_simplified(text)
    traditional = to_traditional(text)
    changed_by_t2s = sum(a != b for a, b in zip(text, simplified))
    changed_by_s2t = sum(a != b for a, b in zip(text, traditional))
    return changed_by_t2s > changed_by_s2t
