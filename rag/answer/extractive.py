"""The rules generator: query-focused sentence selection, leading with the asked-for span.

The answer is one or two sentences from the passages, each ending with its [n]. When the question asks
for a number, person, place, organisation or time, the answer starts with that span. Weak evidence
gives the refusal instead of a guess.
"""

from __future__ import annotations

from collections.abc import Callable

from ..settings import Settings
from ..text import is_traditional, normalize
from ..types import Hit
from .draft import Draft
from .evidence import Evidence, clause_window, collect, idf_weight, relevance
from .question import Question, analyze
from .script import in_script, refusal
from .spans import Span, candidate_spans

#: Characters of a quoted sentence shown in the answer; longer sentences are cut to the clauses that matter.
SENTENCE_LIMIT = 70
#: A second sentence is added only when it is nearly as good as the first.
SECOND_SENTENCE_RATIO = 0.8


def _shown(evidence: Evidence, script: str) -> str:
    """The sentence as the answer shows it: trimmed around the span and in the answer's script."""
    sentence = evidence.sentence
    offset = evidence.hit.chunk.clean.find(sentence, evidence.start)
    focus = (evidence.span.start, evidence.span.end) if evidence.span else (0, 0)
    focus = (max(0, focus[0] - (offset - evidence.start)), focus[1])
    text = clause_window(sentence, focus, SENTENCE_LIMIT)
    return text if is_traditional(text) == (script == "traditional") else in_script(text, script)


def ended(text: str, n: int) -> str:
    """``text`` closed with sentence punctuation and the marker ``[n]``."""
    text = text.rstrip().rstrip("，,；;、：:")  # a clause cut short ends like a sentence, not ";。"
    if text and text[-1] not in "。！？!?…”」":
        text += "。"
    return f"{text}[{n}]"


class ExtractiveGenerator:
    def __init__(self, idf: Callable[[str], float]) -> None:
        self.idf = idf

    def evidence(self, question: str | Question, hits: list[Hit]) -> list[Evidence]:
        q = analyze(question) if isinstance(question, str) else question
        return collect(q, hits, lambda term: idf_weight(self.idf(term)))

    def relevance(self, question: str, text: str) -> float:
        return relevance(analyze(question), text, self.idf)

    def generate(self, question: str, hits: list[Hit], settings: Settings, script: str) -> Draft:
        q = analyze(question)
        ranked = self.evidence(q, hits)
        if not ranked or ranked[0].score < settings.refusal_threshold:
            return Draft(refusal(script), refused=True, checked=True, generator="rules")
        second = settings.max_answer_sentences > 1 and q.kind == "other"
        return self.draft(q, ranked, script, second=second, generator="rules")

    def draft(self, q: Question, ranked: list[Evidence], script: str, *, second: bool, generator: str) -> Draft:
        """The answer from the best evidence (and, with ``second``, a nearly as good other sentence)."""
        best = ranked[0]
        chosen = [best]
        if second:
            for other in ranked[1:]:
                if other.score < SECOND_SENTENCE_RATIO * best.score:
                    break
                if normalize(other.sentence) != normalize(best.sentence):  # not the same sentence in the other script
                    chosen.append(other)
                    break
        chosen.sort(key=lambda e: (e.n, e.start))
        span = None
        parts = [ended(_shown(e, script), e.n) for e in chosen]
        if best.span is not None:
            lead = best.span.text
            if q.many:
                lead = "、".join(dict.fromkeys(s.text for s in _all_spans(q, best)))
            lead = in_script(lead, script)
            parts[0] = f"{lead}：{parts[0]}"
            span = lead
        quotes: dict[int, tuple[int, int]] = {}
        for e in chosen:  # one quote per passage: two sentences of the same passage make one span
            start, end = quotes.get(e.n, (e.start, e.end))
            quotes[e.n] = (min(start, e.start), max(end, e.end))
        return Draft("".join(parts), quotes=quotes, checked=True, generator=generator, span=span)


def _all_spans(q: Question, evidence: Evidence) -> list[Span]:
    """Every span of the asked kind in the sentence that the question does not already name."""
    return [s for s in candidate_spans(evidence.sentence, q.kind) if normalize(s.text) not in q.normalized]
