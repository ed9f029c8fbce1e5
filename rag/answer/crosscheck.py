"""The reader as a second opinion on an LLM's answer.

Before the LLM answers, the reader reads the same passages. A span it is sure enough to answer with
(its answerability reaches the threshold) goes into the prompt as a hint, and an LLM answer that does
not contain it — or refuses while the reader answers — gets a note saying so, with the passage, so a
reader of the answer checks the source instead of trusting the fluent text.
"""

from __future__ import annotations

from ..resources import prompt_text
from ..text import normalize
from .draft import Draft


def _confident(reading: Draft) -> tuple[int, str] | None:
    """(passage number, span) of a reader answer that has a short span; None otherwise."""
    if reading.refused or not reading.span or not reading.quotes or not reading.generator.startswith("extractive"):
        return None
    return next(iter(reading.quotes)), reading.span


def reader_hint(reading: Draft) -> str:
    """The prompt's line about the reader's span ('' when it has none)."""
    found = _confident(reading)
    return prompt_text("reader_hint").format(n=found[0], span=found[1]) if found else ""


def disagreement(reading: Draft, answer: str, refused: bool) -> str | None:
    """A note when the LLM's ``answer`` contradicts a confident reader span."""
    found = _confident(reading)
    if found is None:
        return None
    n, span = found
    if refused:
        return f"提示：大模型未作答，但阅读模型在资料[{n}]中找到的答案是“{span}”，请核对原文。"
    if normalize(span) not in normalize(answer):
        return f"提示：阅读模型在资料[{n}]中找到的答案是“{span}”，与上面的回答不一致，请核对原文。"
    return None
