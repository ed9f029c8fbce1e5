"""Turning start/end logits into a character span of the passage, with a no-answer margin."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .features import Window

#: Longest answer in tokens (about 40 characters); longer answers are sentences, which the answer shows anyway.
MAX_ANSWER_TOKENS = 30


@dataclass(frozen=True)
class SpanScore:
    start: int  # character offsets in the passage
    end: int
    score: float  # start + end logit of the span
    margin: float  # score minus the window's no-answer score (start + end logit at <s>); > 0 favours answering


def best_span(start_logits: torch.Tensor, end_logits: torch.Tensor, window: Window) -> SpanScore | None:
    """The highest-scoring span inside the window's passage tokens (end ≥ start, at most MAX_ANSWER_TOKENS)."""
    first, count = window.offset, len(window.spans)
    if count == 0:
        return None
    starts = start_logits[first : first + count]
    ends = end_logits[first : first + count]
    scores = starts[:, None] + ends[None, :]
    allowed = torch.triu(torch.ones(count, count, dtype=torch.bool)) & ~torch.triu(
        torch.ones(count, count, dtype=torch.bool), diagonal=MAX_ANSWER_TOKENS
    )
    # Tokens that cover no character (a bare metaspace) cannot start or end an answer.
    empty = torch.tensor([s == e for s, e in window.spans])
    allowed &= ~empty[:, None] & ~empty[None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    flat = int(torch.argmax(scores))
    i, j = divmod(flat, count)
    score = float(scores[i, j])
    if score == float("-inf"):
        return None
    null = float(start_logits[0] + end_logits[0])
    return SpanScore(window.spans[i][0], window.spans[j][1], score, score - null)
