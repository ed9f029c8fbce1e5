"""The offline default generator: a learned reader picks the answer span; the answer cites its sentence.

The reader (``rag.reader``) finds the best answer span in each of the top passages; its answerability
model (span scores plus how much of the question the passage covers, calibrated with the weights) scores
each. The best-scoring span leads the answer, followed by the sentence that contains it and its [n]; the
citation quote is that sentence. When no passage reaches the answerability threshold, the answer is the
refusal. When the reader's weights are unusable, the hand-written rules answer instead, with a note.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..settings import Settings
from ..text import is_traditional, normalize, split_sentences, tokenize
from ..types import Hit
from .bridge import Hop, split
from .draft import Draft
from .enumeration import enumeration
from .evidence import clause_window
from .extractive import SENTENCE_LIMIT, ExtractiveGenerator, ended
from .question import analyze
from .script import in_script, refusal

if TYPE_CHECKING:
    from ..reader import Reader
    from ..reader.predict import SpanScore

log = logging.getLogger(__name__)

#: The answerability model's inputs: the reader's margin (span score minus no-answer score) and span score,
#: and the IDF-weighted share of the question's terms in the passage (with its title) and in the span's
#: sentence with the one before it. The margin alone refused 41 % of CMRC 2018 questions whose article
#: was missing at 3 % false refusals: a fluent passage about something else still yields a confident
#: span; coverage says "this is about something else".
ANSWERABILITY = ("margin", "span_score", "passage_coverage", "sentence_coverage")

#: A lead this long is the sentence itself (why/how answers): the answer is the sentence alone.
LEAD_IS_SENTENCE = 0.6
#: List questions (哪些, 哪几, 哪两位): each sentence of the answering article is read on its own, and its
#: span is another item when the reader prefers it to no answer by this margin. Measured with
#: ``bench/calibrate_items.py`` on CMRC 2018 (the shipped reader never saw it): sentences that do not hold
#: the answer pass 1.7 % of the time, sentences that do pass 51 % (the four-layer reader before 2026-12-08:
#: 2.7 % and 51 %).
ITEM_MARGIN = 3.0
#: Sentences an answer to a list question quotes at most.
LIST_SENTENCES = 5
_TRIM = "，,、；;：:。！？!?…“”‘’\"'（）()《》「」『』【】 \u3000\n"


@dataclass(frozen=True)
class Candidate:
    """The reader's best span in one passage, with what the answerability model weighs."""

    n: int  # the passage's citation number
    span: SpanScore
    features: dict[str, float]


class ReaderGenerator:
    def __init__(self, rules: ExtractiveGenerator) -> None:
        self._rules = rules

    def candidates(self, reader: Reader, question: str, hits: list[Hit]) -> list[Candidate]:
        """The best span of each passage in ``hits`` with its answerability features."""
        terms = list(dict.fromkeys(tokenize(question)))
        weights = [self._rules.idf(term) for term in terms]
        spans = reader.read(question, [hit.chunk.clean for hit in hits])
        found = []
        for n, (hit, span) in enumerate(zip(hits, spans), start=1):
            if span is None:
                continue
            clean = hit.chunk.clean
            start, end = _sentence_around(clean, span.start, span.end, before=1)
            features = {
                "margin": span.margin,
                "span_score": span.score,
                "passage_coverage": _coverage(terms, weights, f"{hit.chunk.title} {clean}"),
                "sentence_coverage": _coverage(terms, weights, clean[start:end]),
            }
            found.append(Candidate(n, span, features))
        return found

    def generate(
        self,
        question: str,
        hits: list[Hit],
        settings: Settings,
        script: str,
        search: Callable[[str], list[Hit]] | None = None,
    ) -> Draft:
        """The answer from ``hits``; with ``search``, a question naming its subject through another fact is
        also read through a bridge (:mod:`.bridge`), and the better-rated of the two answers stands."""
        from ..reader import WEIGHTS_PATH, ReaderWeightsError, load_reader

        if not hits:
            return Draft(refusal(script), refused=True, checked=True)
        try:
            reader = load_reader(settings.reader_weights or WEIGHTS_PATH, settings.reader_precision)
        except ReaderWeightsError as error:
            log.error("%s — answering with the rules instead", error)
            draft = self._rules.generate(question, hits, settings, script)
            draft.generator = "rules (reader unavailable)"
            draft.note = "阅读模型文件缺失或损坏，本次由规则抽取作答；请重新安装本软件以恢复。"
            return draft
        threshold = settings.reader_threshold
        if threshold is None:
            threshold = reader.answerability.threshold if reader.answerability else 0.0
        shown = hits[: settings.reader_passages]
        best_score, best = self._best(reader, question, shown)
        hop = split(question) if search is not None else None
        if hop is not None:
            bridged = self._bridged(reader, question, hop, search, settings, script, threshold)
            if bridged is not None and bridged[0] > best_score and bridged[0] >= threshold:
                return bridged[1]
        if best is None or best_score < threshold:
            return Draft(refusal(script), refused=True, checked=True, generator="extractive")
        if analyze(question).many:
            listed = self._list(reader, question, hits, best, script)
            if listed is not None:
                return listed
        return self._span_draft(question, shown, best, script)

    def _best(self, reader: Reader, question: str, shown: list[Hit]) -> tuple[float, Candidate | None]:
        """The passage span the answerability model rates highest, with its score. When other passages give
        the same span, the one whose sentence holds most of the question is cited: the same answer, with the
        quote that shows it answers this question (黑龙江拥有2981公里的漫长边境线 rather than a list that
        starts "2981公里边境线、27个…")."""
        model = reader.answerability
        scored = [
            (model.score(c.features) if model else c.span.margin, c) for c in self.candidates(reader, question, shown)
        ]
        score, best = max(scored, key=lambda item: item[0], default=(float("-inf"), None))
        if best is None:
            return score, None
        span = _span_text(shown, best)
        same = [c for _, c in scored if _span_text(shown, c) == span]
        return score, max(same, key=lambda c: (c.features["sentence_coverage"], -c.n))

    def _bridged(
        self,
        reader: Reader,
        question: str,
        hop: Hop,
        search: Callable[[str], list[Hit]],
        settings: Settings,
        script: str,
        threshold: float,
    ) -> tuple[float, Draft] | None:
        """The answer through a bridge: read the inner description's passages for the entity it names, put
        that entity in its place, retrieve and read again. Cites the answer's sentence, and the bridge's
        when the reader is as sure of the bridge as of an answer (a doubtful bridge still often finds the
        passage, through the rest of the question, but is not shown as the reason)."""
        inner_hits = search(hop.inner)[: settings.reader_passages]
        inner_score, inner = self._best(reader, hop.inner, inner_hits)
        if inner is None:
            return None
        bridge_hit = inner_hits[inner.n - 1]
        bridge = bridge_hit.chunk.clean[inner.span.start : inner.span.end].strip(_TRIM)
        if not bridge or normalize(bridge) in normalize(hop.inner):
            return None
        outer = bridge + hop.rest
        outer_hits = [h for h in search(outer) if h.chunk.id != bridge_hit.chunk.id][: settings.reader_passages]
        score, best = self._best(reader, outer, outer_hits)
        if best is None:
            return None
        if inner_score < threshold:
            draft = self._span_draft(question, outer_hits, best, script)
            draft.hits = outer_hits
            return score, draft
        # Passage 1 is the bridge's, the answer's passages follow: the draft's [n] count in this list.
        passages = [bridge_hit, *outer_hits]
        best = Candidate(best.n + 1, best.span, best.features)
        draft = self._span_draft(question, passages, best, script)
        clean, focus = bridge_hit.chunk.clean, (inner.span.start, inner.span.end)
        shown_sentence, draft.quotes[1] = _quoted(clean, _sentence_around(clean, *focus), focus, script)
        draft.text += ended(shown_sentence, 1)
        draft.hits = passages
        draft.note = in_script(f"分两步作答：先从[1]查到「{bridge}」，再据此查找答案。", script)
        return score, draft

    def _span_draft(self, question: str, shown: list[Hit], best: Candidate, script: str) -> Draft:
        """The best span leading, then the sentence that holds it with its [n]; the quote is that sentence."""
        n, focus = best.n, (best.span.start, best.span.end)
        clean = shown[n - 1].chunk.clean
        shown_sentence, quote = _quoted(clean, _sentence_around(clean, *focus), focus, script)
        text = ended(shown_sentence, n)
        lead = clean[focus[0] : focus[1]].strip(_TRIM)
        span_text = in_script(lead, script) if lead else None
        if lead and len(lead) < LEAD_IS_SENTENCE * (quote[1] - quote[0]) and normalize(lead) not in normalize(question):
            text = f"{span_text}：{text}"
        return Draft(text, quotes={n: quote}, checked=True, generator="extractive", span=span_text)

    def _list(self, reader: Reader, question: str, shown: list[Hit], best: Candidate, script: str) -> Draft | None:
        """Every item the answering article gives: the best span's enumeration, and the spans the reader
        finds reading each sentence of the article's retrieved passages alone; each item's sentence is cited.
        None when nothing but what the question names is found (the single-span answer then stands)."""
        article = shown[best.n - 1].chunk.doc_id
        units = [
            (n, start, end)
            for n, hit in enumerate(shown, start=1)
            if hit.chunk.doc_id == article
            for start, end in split_sentences(hit.chunk.clean)
        ]
        spans = reader.read(question, [shown[n - 1].chunk.clean[start:end] for n, start, end in units])
        found = [(best.n, best.span.start, best.span.end)]
        found += [
            (n, start + span.start, start + span.end)
            for (n, start, _), span in zip(units, spans)
            if span is not None and span.margin >= ITEM_MARGIN
        ]
        items: dict[str, tuple[int, int, int]] = {}  # normalised item -> (n, start, end)
        for n, start, end in found:
            clean = shown[n - 1].chunk.clean
            start, end = enumeration(clean, start, end)
            text = clean[start:end].strip(_TRIM)
            key = normalize(text)
            if not key or key in normalize(question):
                continue
            if any(key in other for other in items):  # a twin chunk's copy, or an item inside a longer list
                continue
            items = {other: at for other, at in items.items() if other not in key}
            items[key] = (n, start, end)
        if not items:
            return None
        # In the article's order: passages are windows of it, so the chunk's start orders them.
        ordered = sorted(items.values(), key=lambda at: (shown[at[0] - 1].chunk.start + at[1]))
        lead = "、".join(in_script(shown[n - 1].chunk.clean[s:e].strip(_TRIM), script) for n, s, e in ordered)
        sentences: dict[tuple[int, int, int], tuple[int, int]] = {}  # (n, sentence) -> the items' extent in it
        for n, start, end in ordered:
            around = (n, *_sentence_around(shown[n - 1].chunk.clean, start, end))
            first, last = sentences.get(around, (start, end))
            sentences[around] = (min(first, start), max(last, end))
        parts, quotes = [], {}
        for (n, *sentence), focus in list(sentences.items())[:LIST_SENTENCES]:
            shown_sentence, (start, end) = _quoted(shown[n - 1].chunk.clean, sentence, focus, script)
            parts.append(ended(shown_sentence, n))
            first, last = quotes.get(n, (start, end))  # one quote per passage spans its cited sentences
            quotes[n] = (min(first, start), max(last, end))
        return Draft(f"{lead}：{''.join(parts)}", quotes=quotes, checked=True, generator="extractive", span=lead)


def _quoted(clean: str, sentence: tuple[int, int], focus: tuple[int, int], script: str) -> tuple[str, tuple[int, int]]:
    """``clean[sentence]`` as the answer shows it (cut to the clauses around ``focus``, in the answer's
    script), and its extent without the surrounding whitespace: the citation's quote."""
    raw = clean[sentence[0] : sentence[1]]
    offset = sentence[0] + len(raw) - len(raw.lstrip())
    text = raw.strip()
    shown = clause_window(text, (focus[0] - offset, focus[1] - offset), SENTENCE_LIMIT)
    if is_traditional(shown) != (script == "traditional"):
        shown = in_script(shown, script)
    return shown, (offset, offset + len(text))


def _sentence_around(text: str, start: int, end: int, before: int = 0) -> tuple[int, int]:
    """The sentence(s) of ``text`` covering ``[start, end)``, with ``before`` sentences before them."""
    spans = split_sentences(text)
    covering = [i for i, (s, e) in enumerate(spans) if s < end and e > start]
    if not covering:
        return start, end
    return spans[max(0, covering[0] - before)][0], spans[covering[-1]][1]


def _coverage(terms: list[str], weights: list[float], text: str) -> float:
    """IDF-weighted share of the question's terms among ``text``'s tokens (1.0 for a question without terms)."""
    total = sum(weights)
    if not total:
        return 1.0
    present = set(tokenize(text))
    return sum(w for term, w in zip(terms, weights) if term in present) / total


def _span_text(shown: list[Hit], candidate: Candidate) -> str:
    return normalize(shown[candidate.n - 1].chunk.clean[candidate.span.start : candidate.span.end])
