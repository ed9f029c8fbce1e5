"""RapidOCR backend (the default): PP-OCRv4 Chinese detection and recognition on onnxruntime, CPU, offline.

``rapidocr-onnxruntime`` 1.4 ships the models inside its wheel (~15 MB), so nothing is downloaded at run time.
The angle classifier is off: page lines are upright (slight skew is handled by the detector and the layout).

RapidOCR's own call is used piecewise, for speed and for accuracy on large pages (measured in bench/bench_ocr.py):

- detection runs on the page scaled to at most ``DET_MAX_SIDE`` pixels (RapidOCR's default), but the lines are
  cut for recognition from the full-resolution page — RapidOCR cuts them from the scaled one, which leaves a
  10-point body line of an A3 page at 200 dpi 17 pixels high, too few for dense traditional glyphs;
- lines are recognised one per call (batches of 4–8, RapidOCR uses 6, cost 1.3–1.6× the CPU per line here),
  each session single-threaded, by ``threads`` worker threads at a lower scheduling priority (``nice``), so that an OCR
  upload uses the cores without keeping the chat's answers waiting;
- the page's :class:`~.engine.Budget` is checked between lines: a page over its time limit, or a cancelled
  upload, stops within one line's recognition (~50 ms);
- traditional pages get their script and centred punctuation put back (:mod:`.script`), and, where Debian's
  Tesseract with ``chi_tra`` is installed, the characters RapidOCR's alphabet lacks from Tesseract's reading of
  the same line images (two Tesseract processes per page, each reading a sheet of the lines; CER on the
  traditional seed's first page 5.72 → 2.88 %, measured in bench/bench_ocr.py).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numpy as np
from PIL.Image import Image

from .engine import Budget, OcrUnavailable, TextBox
from .script import fill_in, reads_traditional, repair

log = logging.getLogger(__name__)
DET_MAX_SIDE = 2000  # the detector's input; its boxes are scaled back to the page
POLL_SECONDS = 0.2  # how often a waiting page checks its budget
SCRIPT_PROBE_LINES = 24  # lines read before deciding whether the page is traditional


def _lower_priority(nice: int) -> None:
    """Run this worker thread ``nice`` steps below the process (Linux sets nice per thread): the server's other
    threads (answers) come first. At +5 an OCR thread gets a third of a core that a busy answer thread wants."""
    if nice and sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        except OSError:  # not permitted in some sandboxes: run at normal priority
            pass


class RapidEngine:
    name = "rapidocr"

    def __init__(self, threads: int = 2, nice: int = 5, second_reader: bool = True) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as error:
            raise OcrUnavailable("rapidocr", "the rapidocr-onnxruntime package is not installed") from error
        self.threads = max(1, threads)
        self._ocr = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
        self._alphabet = frozenset(self._ocr.text_rec.postprocess_op.character)
        self._second = _traditional_reader() if second_reader else None
        self._pool = ThreadPoolExecutor(
            self.threads, thread_name_prefix="rag-ocr", initializer=_lower_priority, initargs=(nice,)
        )
        # Waits for the second reader's process (which inherits this thread's lower priority) beside the pool.
        self._second_pool = (
            ThreadPoolExecutor(1, thread_name_prefix="rag-ocr-second", initializer=_lower_priority, initargs=(nice,))
            if self._second is not None
            else None
        )

    def _detect(self, page: np.ndarray) -> list[np.ndarray]:
        """Line quadrilaterals in page pixels, from the detector run on the page scaled down to DET_MAX_SIDE."""
        import cv2

        height, width = page.shape[:2]
        scale = min(1.0, DET_MAX_SIDE / max(height, width))
        small = cv2.resize(page, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else page
        # RapidOCR pads very flat or low images before detecting (a strip of one line); its own bookkeeping undoes it.
        padded, record = self._ocr.maybe_add_letterbox(small, {"preprocess": {"ratio_h": 1.0, "ratio_w": 1.0}})
        boxes, _ = self._ocr.auto_text_det(padded)
        if boxes is None:
            return []
        quads = self._ocr._get_origin_points(boxes, record, *small.shape[:2])
        return [np.asarray(quad / scale, dtype=np.float32) for quad in quads]

    def _read(self, crop: np.ndarray, budget: Budget) -> tuple[str, float]:
        if budget.stopped():  # the page is being abandoned: skip the remaining lines quickly
            return "", 0.0
        text, score = self._ocr.text_rec([crop])[0][0][:2]
        return text, float(score)

    def _run(self, budget: Budget, fn, *args):
        """``fn(*args)`` on the worker threads, waiting in short steps so that the budget is enforced."""
        return self._gather(budget, [self._pool.submit(fn, *args)])[0]

    def _gather(self, budget: Budget, futures: list) -> list:
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_EXCEPTION)
                if any(f.exception() for f in done):
                    break
                budget.check()
        except BaseException:  # over time, cancelled, or Ctrl-C: the queued lines are dropped
            budget.stop()
            for future in pending:
                future.cancel()
            raise
        return [future.result() for future in futures]

    def recognize(self, image: Image, budget: Budget | None = None) -> list[TextBox]:
        budget = budget or Budget()
        page = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])  # RapidOCR works on BGR arrays
        quads = self._run(budget, self._detect, page)
        if not quads:
            return []
        crops = self._ocr.get_crop_img_list(page, [quad.copy() for quad in quads])
        reads = [self._pool.submit(self._read, crop, budget) for crop in crops]
        second = None
        # The first lines tell the script; on a traditional page the second reader runs beside the rest.
        if self._second_pool is not None and reads_traditional(
            [text for text, _ in self._gather(budget, reads[:SCRIPT_PROBE_LINES])]
        ):
            from PIL import Image as PILImage

            lines = [PILImage.fromarray(crop[:, :, ::-1]) for crop in crops]
            second = self._second_pool.submit(self._second.read_lines, lines, budget)
        results = self._gather(budget, reads)
        texts = [text for text, _ in results]
        if second is not None and reads_traditional(texts):
            try:
                others = self._gather(budget, [second])[0]
            except (RuntimeError, OSError) as error:  # the second reader is a help: without it, RapidOCR's reading
                log.warning("the second reader (tesseract chi_tra) failed, RapidOCR's reading stands: %s", error)
                others = [""] * len(texts)
            texts = [fill_in(text, other, self._alphabet) for text, other in zip(texts, others)]
        results = [(text, score) for text, (_, score) in zip(repair(texts), results)]
        boxes: list[TextBox] = []
        for quad, (text, score) in zip(quads, results):
            if score < self._ocr.text_score or not text:
                continue
            xs, ys = quad[:, 0], quad[:, 1]
            (ax, ay), (bx, by) = quad[0], quad[1]  # top-left → top-right: the baseline's direction
            angle = math.degrees(math.atan2(by - ay, bx - ax)) if bx - ax > 2 * abs(by - ay) else 0.0
            boxes.append(TextBox(text, (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())), score, float(angle)))
        return boxes


def _traditional_reader():
    """Tesseract with ``chi_tra``, when installed (a Debian package, not a Python dependency), else None."""
    from .tesseract import TesseractEngine, installed_languages

    return TesseractEngine("chi_tra") if "chi_tra" in installed_languages() else None


__all__ = ["RapidEngine"]
