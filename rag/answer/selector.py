"""The learned sentence selector: the cheaper alternative to the reader (``generator=selector``).

Each sentence of the retrieved passages keeps the rules' evidence features (the question's weighted
terms in the sentence, its neighbourhood and its passage; the question's numbers nearby; whether a span
of the asked kind is there; passage rank, position, length). Instead of the rules' hand-set weighting, a
logistic model trained on one QA set (does the sentence hold the gold answer?) scores them; the answer is
the best sentence led by the rules' span in it. No neural network runs at answer time. Trained and scored
across sets by ``bench/train_selector.py``; the shipped model is the one trained on DRCD.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..logistic import LogisticModel
from ..settings import Settings
from ..types import Hit
from .draft import Draft
from .extractive import ExtractiveGenerator
from .question import analyze
from .script import refusal

SELECTOR_PATH = Path(__file__).resolve().with_name("selector.json")
FEATURES = (
    "coverage",
    "context",
    "passage",
    "numbers",
    "asks_span",
    "has_span",
    "missing_span",
    "rank",
    "position",
    "length",
)


class SelectorError(RuntimeError):
    """The selector's model file is missing or unreadable."""


@lru_cache(maxsize=4)
def load_selector(path: Path = SELECTOR_PATH) -> LogisticModel:
    try:
        model = LogisticModel.from_dict(json.loads(path.read_text(encoding="utf-8"))["model"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SelectorError(
            f"sentence selector model unusable: {path} ({error}); retrain: python bench/train_selector.py"
        ) from error
    if model.features != FEATURES:
        raise SelectorError(f"sentence selector model {path} has other inputs than this version; retrain it")
    return model


class SelectorGenerator:
    def __init__(self, rules: ExtractiveGenerator) -> None:
        self._rules = rules

    def generate(self, question: str, hits: list[Hit], settings: Settings, script: str) -> Draft:
        model = load_selector(settings.selector_weights or SELECTOR_PATH)
        q = analyze(question)
        ranked = self._rules.evidence(q, hits)
        for evidence in ranked:
            evidence.score = model.score(evidence.features)
        ranked.sort(key=lambda e: -e.score)
        if not ranked or ranked[0].score < model.threshold:
            return Draft(refusal(script), refused=True, checked=True, generator="selector")
        return self._rules.draft(q, ranked, script, second=False, generator="selector")
