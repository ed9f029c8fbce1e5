"""Traditional pages through a recogniser trained on simplified Chinese: script and punctuation put back.

PP-OCRv4's Chinese recogniser (RapidOCR's bundled model) was trained mostly on simplified text. On a page
set in traditional type (measured on the traditional seed page, bench/bench_ocr.py) its errors are:

- characters outside its 6,623-character alphabet (鏈 項 況 從 認 邊 … — 4.2 % of the page): it reads the
  simplified form (強→强), or nothing;
- characters it has but reads in simplified form anyway (內→内, 裝→装, 東→东);
- punctuation that traditional type centres in the cell: 、 read as the radical 丶, 。 as · or °, ， as ’.

:func:`repair` undoes what can be undone without a second model: on a page that reads as traditional the
text is converted to traditional (OpenCC s2t, phrase-aware, character for character), and the centred marks
are read as what they are. Characters dropped altogether stay dropped (Tesseract's ``chi_tra`` is the
alternative engine for such pages; see the README's measurements).
"""

from __future__ import annotations

import re

from ...text.convert import is_traditional, to_traditional

_HAN = r"[\u3400-\u9fff]"
_FULL_STOP = re.compile(rf"(?<={_HAN})[·°]")  # after a character: the centred 。 (° after a digit is degrees)


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


__all__ = ["repair"]
