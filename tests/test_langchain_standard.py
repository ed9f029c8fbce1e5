"""LangChain's standard retriever suite (``langchain-tests``) against HybridRetriever over the seeds index."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from rag import KnowledgeBase
from rag.langchain import HybridRetriever


class TestHybridRetriever(RetrieversIntegrationTests):
    knowledge: KnowledgeBase

    @pytest.fixture(autouse=True)
    def _seed_knowledge(self, seed_knowledge: KnowledgeBase) -> None:
        type(self).knowledge = seed_knowledge  # the suite builds the retriever from class properties

    @property
    def retriever_constructor(self) -> type[HybridRetriever]:
        return HybridRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"knowledge": self.knowledge, "k": 5}

    @property
    def retriever_query_example(self) -> str:
        return "黑龙江的边境线有多长？"


def test_k_and_mode_per_call_override_the_retriever(seed_knowledge: KnowledgeBase) -> None:
    retriever = HybridRetriever(knowledge=seed_knowledge, k=4, mode="bm25")
    assert len(retriever.invoke("黑龙江的边境线有多长？")) == 4
    documents = retriever.invoke("黑龙江的边境线有多长？", k=1, mode="dense")
    assert len(documents) == 1 and set(documents[0].metadata["scores"]) == {"dense"}
    assert "2981公里" in retriever.invoke("黑龙江的边境线有多长？", k=2)[0].page_content
