"""The offline default generator: a learned reader picks the answer span; the answer cites its sentence.

The reader (``rag.reader``) scores an answer span in each of the top passages against a no-answer
score. The best span leads the answer, followed by the sentence that contains it and its [n]; the
citation quote is that sentence. When no passage's span beats the no-answer score by
``reader_threshold``, the answer is the refusal. When the reader's weights are unusable, the
hand-written rules answer instead, with a note saying so.
"""

from __future__ import annotations

import logging

from ..settings import Settings
from ..text import is_traditional, normalize, split_sentences
from ..types import Hit
from .draft import Draft
from .evidence import clause_window
from .extractive import SENTENCE_LIMIT, ExtractiveGenerator, ended
from .script import in_script, refusal

log = logging.getLogger(__name__)

#: A lead this long is the sentence itself (why/how answers): the answer is the sentence alone.
LEAD_IS_SENTENCE = 0.6
_TRIM = "，,、；;：:。！？!?…“”‘’\"'（）()《》「」『』【】 \u3000\n"


class ReaderGenerator:
    def __init__(self, rules: ExtractiveGenerator) -> None:
        self._rules = rules

    def generate(self, question: str, hits: list[Hit], settings: Settings, script: str) -> Draft:
        from ..reader import WEIGHTS_PATH, ReaderWeightsError, load_reader

        if not hits:
            return Draft(refusal(script), refused=True, checked=True)
        try:
            reader = load_reader(settings.reader_weights or WEIGHTS_PATH)
        except ReaderWeightsError as error:
            log.error("%s — answering with the rules instead", error)
            draft = self._rules.generate(question, hits, settings, script)
            draft.generator = "rules (reader unavailable)"
            draft.note = "阅读模型文件缺失或损坏，本次由规则抽取作答；请重新安装本软件以恢复。"
            return draft
        shown = hits[: settings.reader_passages]
        spans = reader.read(question, [hit.chunk.clean for hit in shown])
        scored = [(span.margin, n, span) for n, span in enumerate(spans, start=1) if span is not None]
        if not scored or max(scored)[0] < settings.reader_threshold:
            return Draft(refusal(script), refused=True, checked=True, generator="extractive")
        _, n, span = max(scored, key=lambda item: item[0])
        clean = shown[n - 1].chunk.clean
        start, end = _sentence_around(clean, span.start, span.end)
        sentence = clean[start:end].strip()
        offset = start + (len(clean[start:end]) - len(clean[start:end].lstrip()))
        lead = clean[span.start : span.end].strip(_TRIM)
        shown_sentence = clause_window(sentence, (span.start - offset, span.end - offset), SENTENCE_LIMIT)
        if is_traditional(shown_sentence) != (script == "traditional"):
            shown_sentence = in_script(shown_sentence, script)
        text = ended(shown_sentence, n)
        span_text = in_script(lead, script) if lead else None
        if lead and len(lead) < LEAD_IS_SENTENCE * len(sentence) and normalize(lead) not in normalize(question):
            text = f"{span_text}：{text}"
        quotes = {n: (offset, offset + len(sentence))}
        return Draft(text, quotes=quotes, checked=True, generator="extractive", span=span_text)


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence(s) of ``text`` covering ``[start, end)``."""
    spans = split_sentences(text)
    covering = [(s, e) for s, e in spans if s < end and e > start] or [(start, end)]
    return covering[0][0], covering[-1][1]
