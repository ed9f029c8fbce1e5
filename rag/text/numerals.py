"""Chinese numerals written as Arabic digits (四十二 → 42), with where each new character came from.

The reader learned numbers from CMRC 2018 and DRCD, which write them in digits; it did not recognise
"高四十二米" as a height at all. Only unambiguous numerals are converted: at least two characters with a
unit (二十, 一百零五, 三千万), or a digit-by-digit year (二〇二三年). Single characters (一座, 十分), runs
that are not numbers (千万不要, 万一, 七八个, 十一五) and everything else stay as they are.
"""

from __future__ import annotations

import re

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG = {"万": 10**4, "亿": 10**8}
_RUN = re.compile(r"[零〇一二两三四五六七八九十百千万亿]{2,}")
_YEAR = re.compile(r"[〇零一二三四五六七八九]{4}(?=年)")


def _value(run: str) -> int | None:
    """The number ``run`` writes, or None when it is not one well-formed numeral."""
    total = section = 0
    digit: int | None = None
    zero = False  # a 零 placeholder ("一百零五") may precede a digit
    last_unit = last_big = 10**9
    for i, char in enumerate(run):
        if char in _DIGITS:
            value = _DIGITS[char]
            if value == 0:
                if digit is not None or zero:
                    return None
                zero = True
                continue
            if digit is not None:
                return None  # two digits in a row: a range (七八个) or an abbreviation (十一五)
            digit, zero = value, False
        elif char in _UNITS:
            unit = _UNITS[char]
            if unit >= last_unit or zero:
                return None
            if digit is None:
                if char != "十" or i:  # only a leading 十 stands alone (十二)
                    return None
                digit = 1
            section += digit * unit
            digit, last_unit = None, unit
        else:
            big = _BIG[char]
            section += digit or 0
            if big >= last_big or not section:
                return None
            total += section * big
            section, digit, last_unit, last_big, zero = 0, None, 10**9, big, False
    if zero:
        return None
    return total + section + (digit or 0)


def arabic_numerals(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with its numerals in digits, and for each character of the result the ``[start, end)``
    in ``text`` it stands for (a whole numeral for each of its digits)."""
    pieces: list[tuple[int, int, str]] = []  # (start, end, replacement)
    for match in _YEAR.finditer(text):
        pieces.append((match.start(), match.end(), "".join(str(_DIGITS[c]) for c in match.group())))
    taken = {i for start, end, _ in pieces for i in range(start, end)}
    for match in _RUN.finditer(text):
        if match.start() in taken or not any(c in _UNITS or c in _BIG for c in match.group()):
            continue
        value = _value(match.group())
        if value is not None:
            pieces.append((match.start(), match.end(), str(value)))
    if not pieces:
        return text, [(i, i + 1) for i in range(len(text))]
    out: list[str] = []
    origin: list[tuple[int, int]] = []
    position = 0
    for start, end, replacement in sorted(pieces):
        out.append(text[position:start])
        origin.extend((i, i + 1) for i in range(position, start))
        out.append(replacement)
        origin.extend((start, end) for _ in replacement)
        position = end
    out.append(text[position:])
    origin.extend((i, i + 1) for i in range(position, len(text)))
    return "".join(out), origin
