"""Optional second stage: a sentence-transformers ``CrossEncoder`` re-scores the fused candidates."""

from __future__ import annotations

from .embeddings.sentence_transformers import load_model
from .types import Hit


class CrossEncoderReranker:
    def __init__(self, name_or_path: str, device: str = "cpu") -> None:
        self._model = load_model(name_or_path, device, cross_encoder=True)
        self.name = name_or_path

    def rerank(self, question: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        scores = self._model.predict([(question, hit.chunk.clean) for hit in hits], show_progress_bar=False)
        for hit, score in zip(hits, scores):
            hit.scores["rerank"] = float(score)
            hit.score = float(score)
        return sorted(hits, key=lambda hit: -hit.score)
