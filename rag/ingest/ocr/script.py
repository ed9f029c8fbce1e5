"""Traditional pages through a recogniser trained on simplified Chinese: script and punctuation put back.

PP-OCRv4's Chinese recogniser (RapidOCR's bundled model) was trained mostly on simplified text. On a page
set in traditional type (measured on the traditional seed page, bench/bench_ocr.py) its errors are:

- characters outside its 6,623-character alphabet (鏈 項 況 從 認 邊 … — 4.2 % of the page): it reads the
  simplified form (強→强), or nothing;
- characters it has but reads in simplified form anyway (內→内, 裝→装, 東→东);
- punctuation that traditional type centres in the cell: 、 read as the radical 丶, 。 as · or °, ， as ’.

:func:`repair` undoes what can be undone without a second model: on a page that reads as traditional the
text is converted to traditional (OpenCC s2t, phrase-aware, character for character), and the centred marks
are read as what they are. What it dropped or misread it could not have read: :func:`fill_in` takes those
characters from a second reader (Tesseract's ``chi_tra``, which reads the characters better but loses the
layout) of the same line images, so the layout, headlines and boxes stay RapidOCR's.
"""

from __future__ import annotations

import re
from collections.abc import Container

from ...text.convert import is_traditional, to_simplified, to_traditional

_HAN = r"[\u3400-\u9fff]"
_FULL_STOP = re.compile(rf"(?<={_HAN})[·°]")  # after a character: the centred 。 (° after a digit is degrees)


def reads_traditional(texts: list[str]) -> bool:
    """Whether the page's recognised lines read as traditional script."""
    return is_traditional("".join(texts).replace("丶", "、"))


def fill_in(line: str, other: str, alphabet: Container[str]) -> str:
    """RapidOCR's ``line`` with the characters of ``other`` (a second reader's text of the same line image)
    that it could not have read: characters outside its ``alphabet`` (where it read something else, or
    nothing), and traditional forms where it read nothing (it drops some it has, 羅 among them).

    The two are aligned by edit distance, a character matching its simplified form (RapidOCR often reads
    that); elsewhere RapidOCR's reading stands, so a second reader's misreadings of common characters and its
    punctuation do not come in."""
    line, other = line.strip(), other.strip()
    rows, columns = len(line), len(other)
    simple = [to_simplified(character) for character in other]  # once per character, not per cell

    def cost(i: int, j: int) -> int:
        return 0 if line[i] in (other[j], simple[j]) else 1

    table = [[i + j if not i or not j else 0 for j in range(columns + 1)] for i in range(rows + 1)]
    for i in range(1, rows + 1):
        for j in range(1, columns + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost(i - 1, j - 1))
    kept: list[str] = []
    i, j = rows, columns
    while i or j:
        if i and j and table[i][j] == table[i - 1][j - 1] + cost(i - 1, j - 1):
            kept.append(other[j - 1] if other[j - 1] not in alphabet else line[i - 1])
            i, j = i - 1, j - 1
        elif i and table[i][j] == table[i - 1][j] + 1:
            kept.append(line[i - 1])
            i -= 1
        else:
            if other[j - 1] not in alphabet or simple[j - 1] != other[j - 1]:
                kept.append(other[j - 1])
            j -= 1
    return "".join(reversed(kept))


def repair(texts: list[str]) -> list[str]:
    """The page's recognised lines (any order), repaired; a page that does not read as traditional only
    gets 丶 → 、 (the radical never stands in running text)."""
    texts = [text.replace("丶", "、") for text in texts]
    if not is_traditional("".join(texts)):
        return texts
    # Traditional pages quote with 「」; a ’ with no ‘ anywhere on the page is a centred comma.
    comma = not any("‘" in text for text in texts)
    repaired = []
    for text in texts:
        converted = to_traditional(text)
        if len(converted) == len(text):  # s2t maps character for character (phrases included), but check
            text = converted
        text = _FULL_STOP.sub("。", text)
        repaired.append(text.replace("’", "，") if comma else text)
    return repaired


__all__ = ["fill_in", "reads_traditional", "repair"]
