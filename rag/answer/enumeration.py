"""The items of an enumeration around a span: "尹力、吴政隆参加调研" read as one list, not one name.

The reader marks one item of a list; the list's other items sit next to it, joined by 、 (and a last
和/及/与/以及). The items between two joiners are whole; the first and the last run into the clause
("听取了张三、李四的汇报"), so there only the nominal words next to the joiner count, as many as make
the item closest in length to the items already seen.
"""

from __future__ import annotations

import re
from statistics import mean

from ..text import pos_cut, to_simplified

__all__ = ["enumeration"]

_CLAUSE_END = set("，,。；;！？!?：:\n（）()“”「」《》")
_LAST_JOINER = re.compile(r"(?:以及|和|及|与|與)$")
_FIRST_JOINER = re.compile(r"(?:以及|和|及|与|與)")
_AFTER_LIST = re.compile(r"等")  # "A、B、C等5个": the list ends at 等
#: jieba part-of-speech flags of words that can make up a list item (nouns, names, numbers, adjectives).
_NOMINAL = re.compile(r"^(?:n\w*|vn|an|a|b|j|m|mq|q|eng|s|t|f|l|i)$")
#: An item between two joiners longer than this many times the others is not an item.
_MIDDLE_RATIO = 3


def _nominal_words(piece: str) -> list[tuple[str, bool]]:
    """jieba's words of ``piece`` (as written) with whether each is nominal."""
    simplified = to_simplified(piece)
    tagged = list(pos_cut(simplified if len(simplified) == len(piece) else piece))
    out, at = [], 0
    for word, flag in tagged:
        out.append((piece[at : at + len(word)], bool(_NOMINAL.match(flag))))
        at += len(word)
    return out


def _closest(lengths: list[int], options: list[int]) -> int:
    target = mean(lengths)
    return min(options, key=lambda n: (abs(n - target), n))


def _edge_item(piece: str, lengths: list[int], *, from_end: bool) -> int:
    """How many characters of ``piece`` next to the joiner make the item (0: none)."""
    pieces = _nominal_words(piece)
    if from_end:
        pieces.reverse()
    options, total = [], 0
    for word, nominal in pieces:
        if not nominal and options:
            break
        total += len(word)
        if nominal:
            options.append(total)
    return _closest(lengths, options) if options else 0


def _clause_left(text: str, end: int) -> int:
    start = end
    while start > 0 and text[start - 1] not in _CLAUSE_END and text[start - 1] != "、":
        start -= 1
    return start


def _clause_right(text: str, start: int) -> tuple[int, bool]:
    """Where the item starting at ``start`` can end at most, and whether a joiner follows there."""
    end = start
    while end < len(text) and text[end] not in _CLAUSE_END:
        if text[end] == "、" or (end > start and _FIRST_JOINER.match(text, end)):
            return end, True
        if _AFTER_LIST.match(text, end):
            return end, False
        end += 1
    return end, False


def enumeration(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` widened to the whole enumeration that the span ``text[start:end]`` is an item of."""
    lengths = [end - start]
    # Leftwards over "X、" (and one "X和" when the span is the last item).
    while start > 0:
        joiner = 1 if text[start - 1] == "、" else 0
        if not joiner:
            match = _LAST_JOINER.search(text, 0, start)
            if not (match and match.end() == start):
                break
            joiner = len(match.group(0))
        left = _clause_left(text, start - joiner)
        piece = text[left : start - joiner]
        if not piece:
            break
        if left > 0 and text[left - 1] == "、" and len(piece) <= _MIDDLE_RATIO * max(lengths):
            size = len(piece)  # a middle item: between two joiners
        else:
            size = _edge_item(piece, lengths, from_end=True)
        if not size:
            break
        lengths.append(size)
        start = start - joiner - size
        if joiner > 1 or text[start + size] != "、":
            break  # 和/及 only joins the last item
    # Rightwards over "、X" (and a closing "和X").
    while end < len(text):
        if text[end] == "、":
            joiner = 1
        else:
            match = _FIRST_JOINER.match(text, end)
            if not (match and len(lengths) > 1):
                break
            joiner = len(match.group(0))
        limit, more = _clause_right(text, end + joiner)
        piece = text[end + joiner : limit]
        if not piece:
            break
        if more and text[limit] == "、" and len(piece) <= _MIDDLE_RATIO * max(lengths):
            size = len(piece)
        else:
            size = _edge_item(piece, lengths, from_end=False)
        if not size:
            break
        lengths.append(size)
        end = end + joiner + size
        if text[end - size - joiner] != "、":
            break
    return start, end
