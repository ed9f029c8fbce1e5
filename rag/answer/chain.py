"""The answering chain (LangChain LCEL): rewrite → retrieve → generate → check citations.

Each stage is a function over one :class:`Request`, so ``ask`` runs the composed runnable and
``stream`` runs the same stages while passing the generator's text deltas through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..retrieval import Retriever
from ..settings import Settings
from ..text import normalize
from ..types import Answer, Hit
from . import followup
from .citations import attach, repair
from .crosscheck import disagreement, reader_hint
from .draft import Draft
from .extractive import ExtractiveGenerator
from .history import Turn
from .reader import ReaderGenerator
from .selector import SelectorGenerator
from .script import REFUSAL, in_script, refusal

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

log = logging.getLogger(__name__)

#: A generated answer with its quotes must contain this (IDF-weighted) share of the question's terms.
MIN_RELEVANCE = 0.3


@dataclass
class Request:
    question: str
    history: list[Turn]
    settings: Settings
    script: str
    started: float = field(default_factory=time.perf_counter)
    rewritten: str | None = None
    retriever: Retriever | None = None  # the one the hits came from; a two-hop read searches it again
    hits: list[Hit] = field(default_factory=list)
    draft: Draft | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def query(self) -> str:
        return self.rewritten or self.question


class AnswerChain:
    def __init__(self, retriever: Callable[[Settings], Retriever], rules: ExtractiveGenerator) -> None:
        self._retriever = retriever
        self._rules = rules
        self._offline_generators = {"rules": rules, "selector": SelectorGenerator(rules)}
        self._reader = ReaderGenerator(rules)

    # ------------------------------------------------------------------ stages
    def rewrite(self, request: Request) -> Request:
        started = time.perf_counter()
        if request.history and followup.needs_context(request.question):
            rewritten = None
            if request.settings.generator == "openai":
                from .openai import LLMError, rewrite_question  # the client loads in ~1 s: only when chosen

                try:
                    rewritten = rewrite_question(request.question, _transcript(request.history), request.settings)
                except LLMError as error:
                    log.warning("follow-up rewrite by the LLM failed (%s); using the heuristic", error)
            request.rewritten = rewritten or followup.standalone(request.question, request.history)
            if request.rewritten and normalize(request.rewritten) == normalize(request.question):
                request.rewritten = None
        request.timings["rewrite"] = time.perf_counter() - started
        return request

    def retrieve(self, request: Request) -> Request:
        started = time.perf_counter()
        settings = request.settings
        request.retriever = self._retriever(settings)
        request.hits = request.retriever.search(request.query, k=settings.k, mode=settings.mode)
        request.timings["retrieve"] = time.perf_counter() - started
        return request

    def generate(self, request: Request) -> Request:
        for _ in self.generate_stream(request):
            pass
        return request

    def generate_stream(self, request: Request) -> Iterator[str]:
        """Run the generator, yielding text deltas; the draft is left on the request."""
        started = time.perf_counter()
        settings = request.settings
        if settings.generator == "openai" and request.hits:
            from .openai import LLMError, stream_answer

            # The reader's answer: a hint in the prompt, a check on the LLM's, and the fallback. When it
            # answered through a bridge, the LLM reads the same two hops' passages.
            reading = self._read(request)
            parts: list[str] = []
            try:
                # closing(): a reader who stops early closes the LLM's connection now, not whenever
                # the abandoned generator is collected.
                with closing(stream_answer(request.query, request.hits, settings, reader_hint(reading))) as deltas:
                    for delta in deltas:
                        delta = in_script(delta, request.script)
                        parts.append(delta)
                        yield delta
                text = "".join(parts)
                note = disagreement(reading, text, refused=_is_refusal(text))
                request.draft = Draft(text, generator="openai", note=note)
            except LLMError as error:
                draft = reading
                draft.note = f"{error}，已改用抽取式答案。" + (f"{draft.note}" if draft.note else "")
                draft.generator = f"{draft.generator} (fallback)"
                request.draft = draft
                yield ("\n\n" if parts else "") + draft.text
        else:
            request.draft = self._offline(request)
            yield request.draft.text
        request.timings["generate"] = time.perf_counter() - started

    def _offline(self, request: Request) -> Draft:
        settings = request.settings
        if settings.generator in self._offline_generators:
            return self._offline_generators[settings.generator].generate(
                request.query, request.hits, settings, request.script
            )
        return self._read(request)

    def _read(self, request: Request) -> Draft:
        """The reader's draft; a question answered through a bridge replaces the request's passages with
        the ones read (the draft's [n] count in them)."""
        settings, retriever = request.settings, request.retriever
        search = None if retriever is None else lambda query: retriever.search(query, k=settings.k)
        draft = self._reader.generate(request.query, request.hits, settings, request.script, search=search)
        if draft.hits is not None:
            request.hits = draft.hits
        return draft

    def finish(self, request: Request) -> Answer:
        """Check and repair the citations; build the :class:`Answer`."""
        draft = request.draft
        assert draft is not None
        text, refused = draft.text.strip(), draft.refused
        if not refused and _is_refusal(text):
            refused = True
        citations = []
        if not refused:
            text, used = repair(text, request.hits, check=not draft.checked)
            citations = attach(text, request.hits, draft.quotes)
            # Nothing cited means the passages do not say it; an answer whose words and quotes miss the
            # question's terms is off topic (e.g. it obeyed an instruction planted in a document).
            on_topic = self._rules.relevance(request.query, text + "".join(c.quote for c in citations))
            refused = not used or (not draft.checked and on_topic < MIN_RELEVANCE)
        if refused:
            text, citations = refusal(request.script), []
        request.timings["total"] = time.perf_counter() - request.started
        return Answer(
            question=request.question,
            text=text,
            refused=refused,
            citations=citations,
            passages=request.hits,
            rewritten_question=request.rewritten,
            generator=draft.generator,
            note=draft.note,
            span=None if refused else draft.span,
            timings=dict(request.timings),
        )

    # ------------------------------------------------------------------ composed
    def runnable(self) -> Runnable:
        from langchain_core.runnables import RunnableLambda  # pulls in langsmith (~0.5 s): not at import

        return (
            RunnableLambda(self.rewrite, name="rewrite")
            | RunnableLambda(self.retrieve, name="retrieve")
            | RunnableLambda(self.generate, name="generate")
            | RunnableLambda(self.finish, name="check_citations")
        )

    def stream(self, request: Request) -> Iterator[str | Answer]:
        self.retrieve(self.rewrite(request))
        yield from self.generate_stream(request)
        yield self.finish(request)


def _transcript(history: list[Turn]) -> str:
    lines = []
    for turn in history[-4:]:  # the last few turns carry the referents; older ones only add noise
        lines.append(f"用户：{turn.question}")
        if turn.answer:
            lines.append(f"助手：{turn.answer}")
    return "\n".join(lines)


def _is_refusal(text: str) -> bool:
    norm = normalize(text)
    return normalize(REFUSAL).rstrip("。") in norm or ("无法回答" in norm and len(norm) < 40)
