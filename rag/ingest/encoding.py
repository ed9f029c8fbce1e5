"""Decoding of text files: UTF-8/UTF-16 (BOM), GB18030/GBK and Big5 detected automatically."""

from __future__ import annotations

import codecs

from charset_normalizer import from_bytes

from .errors import IngestError

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHINESE_CANDIDATES = ("gb18030", "big5")


def _cjk_share(text: str) -> float:
    return sum("\u4e00" <= ch <= "\u9fff" for ch in text) / max(1, len(text))


def decode(data: bytes, source: str) -> tuple[str, str]:
    """Return ``(text, encoding)``; raise :class:`IngestError` for binary or undecodable data."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as error:
                raise IngestError(
                    source, "broken_text", f"invalid {encoding} text ({error.reason})", encoding=encoding.upper()
                ) from error
    if b"\x00" in data[:8192]:
        raise IngestError(source, "binary", "looks like a binary file, not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Strict decodes of the two Chinese legacy encodings; when both succeed, the one giving
    # more common CJK characters wins (Big5 bytes decoded as GB18030 give rare characters).
    decoded = []
    for encoding in _CHINESE_CANDIDATES:
        try:
            decoded.append((data.decode(encoding), encoding))
        except UnicodeDecodeError:
            continue
    if decoded:
        return max(decoded, key=lambda pair: _cjk_share(pair[0]) - 0.5 * _rare_share(pair[0]))
    best = from_bytes(data).best()
    if best is None:
        raise IngestError(source, "bad_encoding", "unknown text encoding (tried UTF-8, GB18030, Big5)")
    return str(best), best.encoding


def _rare_share(text: str) -> float:
    # GB18030 maps Big5 byte pairs onto CJK Extension A and other rarely used blocks.
    return sum("\u3400" <= ch <= "\u4dbf" or "\ue000" <= ch <= "\uf8ff" for ch in text) / max(1, len(text))
