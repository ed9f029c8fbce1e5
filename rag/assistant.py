"""The assistant: questions in, cited answers (or an honest refusal) out.

```python
from rag import Assistant
assistant = Assistant.load()
answer = assistant.ask("黑龙江的边境线有多长？")
answer.text, answer.citations
```
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .answer.chain import AnswerChain, Request
from .answer.extractive import ExtractiveGenerator
from .answer.history import turns
from .answer.script import target_script
from .knowledge import KnowledgeBase
from .retrieval import Retriever
from .settings import Settings
from .types import Answer
from .validation import apply_overrides, check_question

#: Settings that change how passages are retrieved (a per-call override of these needs its own Retriever).
_RETRIEVAL_FIELDS = (
    "candidates", "fusion", "rrf_k", "weight_bm25", "weight_dense", "dedupe_threshold", "reranker", "query_encoder"
)


class Assistant:
    def __init__(self, knowledge: KnowledgeBase, settings: Settings | None = None) -> None:
        self.knowledge = knowledge
        self.settings = settings or knowledge.settings
        self._chain = AnswerChain(self._retriever, ExtractiveGenerator(self._idf))
        self._runnable = None  # LangChain's runnable is built on the first ask (it imports langsmith, ~0.5 s)

    @classmethod
    def load(cls, settings: Settings | None = None, *, kb: str | None = None, progress: bool = False) -> Assistant:
        """Open the knowledge base ``kb`` (default: ``settings.kb``); the default one is built from the bundled
        pages (``settings.corpus``) if missing. See :mod:`rag.registry` for creating and listing them."""
        settings = (settings or Settings()).with_overrides(kb=kb)
        return cls(KnowledgeBase.open(settings, progress=progress), settings)

    def ask(self, question: str, history: list | None = None, **overrides: Any) -> Answer:
        """Answer ``question`` (a follow-up when ``history`` is given); ``overrides`` are Settings fields.

        Raises :class:`~rag.validation.InputError` (a ``ValueError`` with a message for the user) for an
        empty, overlong or symbol-only question and for invalid overrides such as ``k=0``."""
        request = self._request(question, history, overrides)
        if self._runnable is None:
            self._runnable = self._chain.runnable()
        return self._runnable.invoke(request)

    def stream(self, question: str, history: list | None = None, **overrides: Any) -> Iterator[str | Answer]:
        """Yield the answer text as it is produced (str deltas), then the full :class:`Answer`.

        The deltas are the raw generator output; the final ``Answer.text`` (after citation checks) is
        what to keep.
        """
        return self._chain.stream(self._request(question, history, overrides))

    # ------------------------------------------------------------------ internals
    def _request(self, question: str, history: list | None, overrides: dict[str, Any]) -> Request:
        settings = apply_overrides(self.settings, overrides)
        question = check_question(question, settings.max_question_chars)
        self.knowledge.check_not_empty()  # say so plainly rather than refuse every question
        return Request(question, turns(history), settings, target_script(question, settings.answer_script))

    def _retriever(self, settings: Settings) -> Retriever:
        self.knowledge.refresh()  # another process may have added or removed documents
        base = self.knowledge.retriever
        if all(getattr(settings, f) == getattr(base.settings, f) for f in _RETRIEVAL_FIELDS):
            return base  # k and mode are passed per search
        reranker = base.reranker if settings.reranker == base.settings.reranker else None
        return self.knowledge.retriever_for(settings, reranker=reranker)

    def _idf(self, term: str) -> float:
        return self.knowledge.idf(term)
