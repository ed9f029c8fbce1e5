"""RapidOCR backend (the default): PP-OCRv4 Chinese detection and recognition on onnxruntime, CPU, offline.

``rapidocr-onnxruntime`` 1.4 ships the models inside its wheel (~15 MB), so nothing is downloaded at run time.
The angle classifier is off: page lines are upright (slight skew is handled by the detector and the layout).
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL.Image import Image

from .engine import OcrUnavailable, TextBox


class RapidEngine:
    name = "rapidocr"

    def __init__(self, threads: int | None = None) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as error:
            raise OcrUnavailable("rapidocr", "the rapidocr-onnxruntime package is not installed") from error
        threads = threads or min(4, os.cpu_count() or 1)
        self._ocr = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)

    def recognize(self, image: Image) -> list[TextBox]:
        pixels = np.asarray(image.convert("RGB"))[:, :, ::-1]  # RapidOCR works on BGR arrays, as OpenCV reads them
        result, _ = self._ocr(pixels, use_cls=False)
        boxes: list[TextBox] = []
        for quad, text, score in result or []:
            xs, ys = [p[0] for p in quad], [p[1] for p in quad]
            (ax, ay), (bx, by) = quad[0], quad[1]  # top-left → top-right: the baseline's direction
            angle = math.degrees(math.atan2(by - ay, bx - ax)) if bx - ax > 2 * abs(by - ay) else 0.0
            boxes.append(TextBox(text, (min(xs), min(ys), max(xs), max(ys)), float(score), angle))
        return boxes


__all__ = ["RapidEngine"]
