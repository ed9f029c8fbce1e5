"""LangChain integration: the hybrid retriever as a ``BaseRetriever`` (usable in any LCEL chain)."""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from .knowledge import KnowledgeBase
from .settings import RetrievalMode
from .types import Hit


def hit_to_document(hit: Hit) -> LCDocument:
    """A LangChain document whose metadata carries everything needed to cite the passage."""
    metadata = hit.to_dict()
    metadata.pop("clean")
    return LCDocument(page_content=hit.chunk.clean, metadata=metadata, id=hit.chunk.id)


class HybridRetriever(BaseRetriever):
    """``KnowledgeBase.search`` behind LangChain's retriever interface.

    ``k`` and ``mode`` set on the retriever can be overridden per call: ``retriever.invoke(q, k=1)``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge: KnowledgeBase
    k: int | None = None
    mode: RetrievalMode | None = None

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        mode: RetrievalMode | None = None,
    ) -> list[LCDocument]:
        hits = self.knowledge.search(query, k=k if k is not None else self.k, mode=mode or self.mode)
        return [hit_to_document(hit) for hit in hits]
