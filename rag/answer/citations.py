"""Citation markers: parse, validate against the shown passages, repair, and attach quotes.

Rules: a marker must point at a shown passage (others are removed); a cited sentence must be
supported by its passage — lexical overlap of character bigrams after t2s normalisation — or the
marker moves to the passage that does support it, or is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..text import normalize, split_sentences
from ..types import Chunk, Citation, Hit

# [1], [1,2], [1, 2], 【1】, ［1］ — full-width forms are common in Chinese model output.
MARKER = re.compile(r"[\[【［]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]】］]")
_NOT_CONTENT = re.compile(r"[\W_\d]+", re.UNICODE)
#: Share of a claim's character bigrams that its passage must contain to count as support.
SUPPORT_THRESHOLD = 0.5
#: A sentence the model left uncited gets a marker only when a passage says nearly the same.
UNCITED_SUPPORT_THRESHOLD = 0.7
UNCITED_MIN_BIGRAMS = 4  # shorter uncited pieces ("2981公里。") lead into a cited sentence


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer and the passages it cites."""

    start: int  # span in the answer text, markers included
    end: int
    text: str  # without markers
    cited: tuple[int, ...]


def _bigrams(text: str) -> set[str]:
    text = _NOT_CONTENT.sub("", normalize(text))
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def support(claim: str, passage: str) -> float:
    """Share of the claim's content bigrams (t2s, no punctuation or digits) found in the passage."""
    grams = _bigrams(claim)
    if not grams:
        return 0.0
    passage_grams = _bigrams(passage)
    digits = re.findall(r"\d+(?:\.\d+)?", normalize(claim))
    lexical = len(grams & passage_grams) / len(grams)
    if digits:  # numbers are the claim's facts: each one must be in the passage
        passage_norm = normalize(passage)
        lexical *= sum(d in passage_norm for d in digits) / len(digits)
    return lexical


def claims(text: str) -> list[Claim]:
    """The answer's sentences; a marker right after a sentence end belongs to that sentence."""
    out: list[Claim] = []
    for start, end in split_sentences(text):
        # Markers that follow the end punctuation ("……。[2]") are split off into the next span; pull them back.
        while True:
            m = MARKER.match(text, end)
            if not m:
                break
            end = m.end()
        if out and start < out[-1].end:
            start = out[-1].end
        if start >= end:
            continue
        piece = text[start:end]
        cited = tuple(int(n) for m in MARKER.finditer(piece) for n in re.split(r"\s*[,，、]\s*", m.group(1)))
        body = MARKER.sub("", piece).strip()
        if body or cited:
            out.append(Claim(start, end, body, cited))
    return out


def _with_markers(body: str, numbers: list[int]) -> str:
    body = body.rstrip()
    end = ""
    while body and body[-1] in "。！？!?；;":
        end = body[-1] + end
        body = body[:-1]
    return body + end + "".join(f"[{n}]" for n in numbers)


def best_sentence(claim: str, chunk: Chunk) -> tuple[int, int, float]:
    """The sentence of ``chunk.clean`` that best supports ``claim``: (start, end, support)."""
    best = (0, len(chunk.clean), 0.0)
    for start, end in split_sentences(chunk.clean):
        score = support(claim, chunk.clean[start:end])
        if score > best[2]:
            best = (start, end, score)
    return best


def repair(text: str, hits: list[Hit], *, check: bool = True) -> tuple[str, list[int]]:
    """Text whose markers all point at shown passages that support their sentence; and the numbers used.

    With ``check`` on, a marker moves to the passage that supports its sentence or is dropped, and an
    uncited sentence that a passage states almost word for word gets that passage's marker. With
    ``check`` off only markers pointing at no shown passage are removed.
    """
    shown = range(1, len(hits) + 1)
    pieces: list[str] = []
    used: list[int] = []
    position = 0
    for claim in claims(text):
        pieces.append(text[position : claim.start])
        position = claim.end
        numbers = [n for n in dict.fromkeys(claim.cited) if n in shown]
        if check and claim.text and hits and (numbers or len(_bigrams(claim.text)) >= UNCITED_MIN_BIGRAMS):
            scores = {n: support(claim.text, hits[n - 1].chunk.clean) for n in shown}
            kept = [n for n in numbers if scores[n] >= SUPPORT_THRESHOLD]
            if not kept:  # wrong or missing marker: the passage that does support the sentence, if any
                best = max(shown, key=lambda n: scores[n])
                needed = SUPPORT_THRESHOLD if numbers else UNCITED_SUPPORT_THRESHOLD
                kept = [best] if scores[best] >= needed else []
            numbers = kept
        used.extend(n for n in numbers if n not in used)
        pieces.append(_with_markers(claim.text, numbers) if claim.text else "")
    pieces.append(text[position:])
    return "".join(pieces).strip(), used


def attach(text: str, hits: list[Hit], quotes: dict[int, tuple[int, int]] | None = None) -> list[Citation]:
    """Citations for the markers in ``text``, with the supporting sentence as the quote."""
    quotes = dict(quotes or {})
    for claim in claims(text):
        for n in claim.cited:
            if n not in quotes and 1 <= n <= len(hits):
                start, end, _ = best_sentence(claim.text, hits[n - 1].chunk)
                quotes[n] = (start, end)
    cited = list(dict.fromkeys(n for claim in claims(text) for n in claim.cited if 1 <= n <= len(hits)))
    citations = []
    for n in sorted(cited):
        chunk = hits[n - 1].chunk
        start, end = quotes[n]
        quote = chunk.clean[start:end].strip()
        lead = len(chunk.clean[start:end]) - len(chunk.clean[start:end].lstrip())
        quote_start, quote_end = locate(chunk, start + lead, start + lead + len(quote))
        citations.append(Citation(n=n, chunk=chunk, quote=quote, quote_start=quote_start, quote_end=quote_end))
    return citations


def locate(chunk: Chunk, clean_start: int, clean_end: int) -> tuple[int, int]:
    """Offsets in the original document of a span of ``chunk.clean`` (-1, -1 when it cannot be aligned).

    ``chunk.clean`` is ``chunk.text`` with line breaks, broken characters and padding removed, so the
    clean characters occur in order in the original: a greedy alignment finds them.
    """
    clean, original = chunk.clean, chunk.text
    position = 0
    mapped: list[int] = []
    for i, ch in enumerate(clean[:clean_end]):
        found = original.find(ch, position) if not ch.isspace() else _next_space(original, position)
        if found < 0:
            return -1, -1
        if i >= clean_start:
            mapped.append(found)
        position = found + 1
    if not mapped:
        return -1, -1
    return chunk.start + mapped[0], chunk.start + mapped[-1] + 1


def _next_space(text: str, position: int) -> int:
    for i in range(position, len(text)):
        if text[i].isspace():
            return i
    return -1
