"""A small logistic model over named features, with a decision threshold: the learned parts that sit on
top of hand-built signals (the reader's answerability, the sentence selector).

Fitted by plain gradient descent on standardised inputs (a handful of features, a few thousand rows:
no dependency needed) and stored as JSON next to what it belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LogisticModel:
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float = -math.inf  # a row is accepted when its score reaches it

    def score(self, values: Mapping[str, float]) -> float:
        """The log-odds of the positive class."""
        z = sum(w * (values[name] - m) / s for name, m, s, w in zip(self.features, self.mean, self.scale, self.weights))
        return float(z + self.bias)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticModel:
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def fit(
    rows: Sequence[Mapping[str, float]], labels: Sequence[bool], features: Sequence[str], *, l2: float = 0.01
) -> LogisticModel:
    """Logistic regression with an L2 penalty; the threshold is set by :func:`calibrate`."""
    x = np.array([[row[name] for name in features] for row in rows], dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    weights, bias = np.zeros(z.shape[1]), 0.0
    for _ in range(4000):
        error = 1 / (1 + np.exp(-(z @ weights + bias))) - y
        weights -= 0.2 * (z.T @ error / len(y) + l2 * weights)
        bias -= 0.2 * float(error.mean())
    return LogisticModel(
        tuple(features), tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, weights)), bias
    )


def threshold_for(positive_scores: Sequence[float], max_rejected: float) -> float:
    """The highest threshold that rejects at most ``max_rejected`` of these positives' scores."""
    scores = sorted(positive_scores)
    rejectable = math.floor(max_rejected * len(scores))  # how many may fall below the threshold
    return float(scores[min(rejectable, len(scores) - 1)])


def calibrate(model: LogisticModel, positive_scores: Sequence[float], max_rejected: float) -> LogisticModel:
    return replace(model, threshold=threshold_for(positive_scores, max_rejected))
