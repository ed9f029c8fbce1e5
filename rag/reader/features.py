"""From (question, passage) to model inputs: windows over the passage with character spans.

The reader sees both texts in simplified script, converted character by character so that every
offset stays valid (phrase-level conversion could change lengths), with Chinese numerals in digits (the
token spans are mapped back to the original characters), and the passage in windows of at most
``content_tokens`` tokens that overlap by half, so an answer near a window's edge is still whole in the
next one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from ..text import to_simplified
from ..text.numerals import arabic_numerals
from .tokenizer import Encoding, Tokenizer

#: Question tokens kept (questions are short; a longer one is cut at the end).
QUESTION_TOKENS = 32
#: Passage tokens per window; ~1.3 characters per token, so a 300-character chunk takes two windows.
CONTENT_TOKENS = 160
STRIDE = 80


@lru_cache(maxsize=65536)
def _simplified_char(char: str) -> str:
    converted = to_simplified(char)
    return converted if len(converted) == 1 else char


def simplify(text: str) -> str:
    """Traditional → simplified one character at a time: the same length, so offsets carry over."""
    return "".join(_simplified_char(char) for char in text)


@dataclass(frozen=True)
class Window:
    ids: list[int]  # <s> question </s></s> content </s>
    offset: int  # position of the first content token in ids
    spans: list[tuple[int, int]]  # character span in the passage of each content token
    start: int = 0  # answer token positions in ids; 0 (the <s> token) when the window holds no answer
    end: int = 0


def encode_question(tokenizer: Tokenizer, question: str) -> list[int]:
    """The question's tokens; emoji and other symbols are left out (they carry no question, and the reader
    never saw them in training)."""
    words = "".join(c for c in question if unicodedata.category(c)[0] not in "SC")
    return tokenizer.encode(arabic_numerals(simplify(words))[0]).ids[:QUESTION_TOKENS]


def encode_passage(tokenizer: Tokenizer, passage: str) -> Encoding:
    """The passage's tokens with their character spans in ``passage``."""
    simplified = simplify(passage)
    text, origin = arabic_numerals(simplified)
    encoding = tokenizer.encode(text)
    if text == simplified:  # no numeral converted: the spans already point into ``passage``
        return encoding
    end = len(passage)
    spans = [
        (origin[s][0], origin[e - 1][1]) if e > s else ((origin[s][0],) * 2 if s < len(origin) else (end, end))
        for s, e in encoding.spans
    ]
    return Encoding(encoding.ids, spans)


def windows(
    tokenizer: Tokenizer,
    question_ids: list[int],
    passage: Encoding,
    answer: tuple[int, int] | None = None,
    content_tokens: int = CONTENT_TOKENS,
    stride: int = STRIDE,
) -> list[Window]:
    """Every window over ``passage``; with ``answer`` (character span), windows holding it are labelled."""
    ids, spans = passage.ids, passage.spans
    head = [tokenizer.bos, *question_ids, tokenizer.eos, tokenizer.eos]
    offset = len(head)
    first = last = -1
    if answer is not None:
        first = next((i for i, (s, e) in enumerate(spans) if e > answer[0] and e > s), -1)
        last = next((i for i in range(len(spans) - 1, -1, -1) if spans[i][0] < answer[1] and spans[i][1] > spans[i][0]), -1)
    result = []
    start = 0
    while True:
        stop = min(len(ids), start + content_tokens)
        label = (0, 0)
        if 0 <= first <= last and start <= first and last < stop:
            label = (offset + first - start, offset + last - start)
        result.append(Window([*head, *ids[start:stop], tokenizer.eos], offset, spans[start:stop], *label))
        if stop >= len(ids):
            return result
        start += stride
