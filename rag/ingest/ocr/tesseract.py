"""Tesseract backend: Debian's ``tesseract-ocr`` with ``chi_sim``/``chi_tra``, through its command line (TSV output).

Also RapidOCR's second reader on traditional pages (:meth:`TesseractEngine.read_lines`): the line images RapidOCR
cut, stacked on sheets that Tesseract processes read at once.
"""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from PIL import Image as PILImage
from PIL.Image import Image

from .engine import Budget, OcrTimeout, OcrUnavailable, TextBox

#: Line height on the sheet :meth:`TesseractEngine.read_lines` reads (Tesseract reads CJK best at 30–50 px).
SHEET_LINE_HEIGHT = 48
#: Lines per sheet: 300 make a sheet 21,600 px high (Tesseract refuses images over 32,767 px).
SHEET_LINES = 300
#: Sheets of a page read at once: Tesseract runs on one core, and RapidOCR's recognition finishes first.
SHEET_PROCESSES = 2
_LATIN_END = re.compile(r"[A-Za-z0-9.,%]$")
_LATIN_START = re.compile(r"^[A-Za-z0-9]")


class TesseractEngine:
    name = "tesseract"

    def __init__(self, languages: str = "chi_sim+chi_tra", timeout: float = 600.0) -> None:
        self.executable = shutil.which("tesseract")
        if self.executable is None:
            raise OcrUnavailable("tesseract", "the tesseract command is not installed (apt install tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra)")
        self.languages = languages
        self.timeout = timeout

    def recognize(self, image: Image, budget: Budget | None = None) -> list[TextBox]:
        dpi = int(image.info.get("dpi", (200, 200))[0] or 200)
        return _lines(self._tsv(image, ["--psm", "3", "--dpi", str(dpi)], budget or Budget()))

    def read_lines(self, lines: list[Image], budget: Budget | None = None) -> list[str]:
        """The text of each line image (one line of horizontal text each), read in sheets: the lines are scaled
        to one height and stacked with gaps, and each word goes to the line whose band holds it. A page's lines
        make ``SHEET_PROCESSES`` sheets read at once (Tesseract uses one core; a sheet has 20 lines or more),
        more if they exceed ``SHEET_LINES``."""
        if not lines:
            return []
        budget = budget or Budget()
        sheets = max(math.ceil(len(lines) / SHEET_LINES), min(SHEET_PROCESSES, math.ceil(len(lines) / 20)), 1)
        size = math.ceil(len(lines) / sheets)
        parts = [lines[start : start + size] for start in range(0, len(lines), size)]
        with ThreadPoolExecutor(len(parts), thread_name_prefix="rag-ocr-sheet") as pool:  # threads inherit the nice
            return [text for texts in pool.map(lambda part: self._read_sheet(part, budget), parts) for text in texts]

    def _read_sheet(self, lines: list[Image], budget: Budget) -> list[str]:
        gap = SHEET_LINE_HEIGHT // 2
        scaled = [
            line.convert("L").resize((max(1, round(line.width * SHEET_LINE_HEIGHT / line.height)), SHEET_LINE_HEIGHT))
            for line in lines
        ]
        sheet = PILImage.new("L", (max(s.width for s in scaled) + 2 * gap, gap + len(scaled) * (SHEET_LINE_HEIGHT + gap)), 255)
        for number, line in enumerate(scaled):
            sheet.paste(line, (gap, gap + number * (SHEET_LINE_HEIGHT + gap)))
        texts = [""] * len(lines)
        for word in _words(self._tsv(sheet, ["--psm", "6"], budget)):
            middle = int(word["top"]) + int(word["height"]) / 2
            number = int((middle - gap / 2) // (SHEET_LINE_HEIGHT + gap))
            if 0 <= number < len(texts):
                texts[number] += word["text"].strip()
        return texts

    def _tsv(self, image: Image, options: list[str], budget: Budget) -> str:
        # From a file, not stdin: a pipe would have to be fed while waiting in short steps.
        with tempfile.NamedTemporaryFile(suffix=".png") as png:
            image.convert("L").save(png, "PNG")
            png.flush()
            process = subprocess.Popen(
                [self.executable, png.name, "stdout", "-l", self.languages, *options, "tsv"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"},  # one page per process; threads only contend
            )
            started = time.monotonic()
            try:
                while True:  # short waits, so that the page's time limit and a cancel are seen
                    try:
                        out, err = process.communicate(timeout=0.25)
                        break
                    except subprocess.TimeoutExpired:
                        if time.monotonic() - started > self.timeout or budget.stopped():
                            budget.check()
                            raise OcrTimeout(self.timeout) from None
            except BaseException:  # over time, cancelled, Ctrl-C: the process goes too
                process.kill()
                process.communicate()
                raise
        if process.returncode:
            raise RuntimeError(f"tesseract failed: {err.decode(errors='replace')[-300:]}")
        return out.decode("utf-8", errors="replace")


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    """Tesseract's installed language models (none without the program)."""
    executable = shutil.which("tesseract")
    if executable is None:
        return frozenset()
    try:
        listed = subprocess.run([executable, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(Path(line.strip()).name for line in listed.stdout.splitlines()[1:] if line.strip())


def _words(tsv: str) -> list[dict[str, str]]:
    return [
        row
        for row in csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
        if row.get("level") == "5" and (row.get("text") or "").strip()
    ]


def _lines(tsv: str) -> list[TextBox]:
    """Words (level 5) grouped back into their lines; CJK words are joined without the spaces tesseract puts in."""
    lines: dict[tuple[str, str, str, str], list[dict[str, str]]] = {}
    for row in _words(tsv):
        lines.setdefault((row["page_num"], row["block_num"], row["par_num"], row["line_num"]), []).append(row)
    boxes: list[TextBox] = []
    for words in lines.values():
        text = ""
        for word in words:
            piece = word["text"].strip()
            text += (" " if text and _LATIN_END.search(text) and _LATIN_START.match(piece) else "") + piece
        x0 = min(int(w["left"]) for w in words)
        y0 = min(int(w["top"]) for w in words)
        x1 = max(int(w["left"]) + int(w["width"]) for w in words)
        y1 = max(int(w["top"]) + int(w["height"]) for w in words)
        score = sum(float(w["conf"]) for w in words) / len(words) / 100
        boxes.append(TextBox(text, (x0, y0, x1, y1), score))
    return boxes


__all__ = ["TesseractEngine", "installed_languages"]
