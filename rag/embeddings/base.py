"""The embeddings interface: LangChain ``Embeddings`` plus what the index needs to know."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

import numpy as np
from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from ..settings import Settings


class EmbeddingError(RuntimeError):
    """The embedding model could not be loaded or run."""


class DenseEmbeddings(Embeddings):
    """Unit-length vectors for passages and queries, with query/passage conventions applied."""

    #: Stable identifier recorded in the index manifest.
    model_id: str
    dimension: int

    @abstractmethod
    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """``(len(texts), dimension)`` float32, L2-normalised."""

    @abstractmethod
    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dimension)`` float32, L2-normalised."""

    def for_queries_of(self, settings: Settings) -> DenseEmbeddings:
        """These embeddings with ``settings``' query-time options (the same passage vectors); self if none apply."""
        return self

    # LangChain's interface, in lists of floats.
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_passages(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0].tolist()


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
