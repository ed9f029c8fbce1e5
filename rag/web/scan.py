"""The page image behind a citation of a scanned document: a crop around the cited lines, their boxes highlighted.

The crop is readable at the page's width (about as wide as a column or two); the whole page is one click away
(a ``<details>``). Images are inlined as JPEG data URIs, so nothing else needs serving. The source file is read
again for this (the index keeps no images): an image's frame, or a PDF page rendered at 150 dpi.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from html import escape
from pathlib import Path

from ..types import Chunk, PageBox, boxes_between

CROP_WIDTH = 640  # pixels the crop is shown at (at most)
PAGE_WIDTH = 900  # the whole page's preview
_HIGHLIGHT = (255, 214, 0, 90)
_OUTLINE = (230, 120, 0, 255)


@lru_cache(maxsize=8)
def _page_image(source: str, page: int, mtime: float):
    from PIL import Image

    if source.lower().endswith(".pdf"):
        import pypdfium2 as pdfium

        document = pdfium.PdfDocument(source)
        try:
            return document[page - 1].render(scale=150 / 72).to_pil().convert("RGB")
        finally:
            document.close()
    with Image.open(source) as image:
        image.seek(page - 1)
        return image.convert("RGB")


def _data_uri(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _highlighted(image, boxes: list[PageBox]):
    from PIL import Image, ImageDraw

    width, height = image.size
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for box in boxes:
        x0, y0, x1, y1 = box.box  # type: ignore[misc]
        draw.rectangle((x0 * width, y0 * height, x1 * width, y1 * height), fill=_HIGHLIGHT, outline=_OUTLINE, width=2)
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def crop_html(chunk: Chunk, start: int = -1, end: int = -1) -> str:
    """HTML showing where ``[start, end)`` (default: the whole chunk) is printed; empty when it has no boxes
    or the source file is gone."""
    boxes = boxes_between(chunk.boxes, start, end) if 0 <= start < end else list(chunk.boxes)
    boxes = [b for b in boxes if b.box]
    if not boxes:
        return ""
    page = boxes[0].page
    boxes = [b for b in boxes if b.page == page]
    path = Path(chunk.source)
    try:
        image = _page_image(str(path), page, path.stat().st_mtime)
    except Exception:  # moved, deleted or unreadable since it was indexed: the text still shows
        return ""
    marked = _highlighted(image, boxes)
    width, height = image.size
    x0 = min(b.box[0] for b in boxes) * width  # type: ignore[index]
    y0 = min(b.box[1] for b in boxes) * height  # type: ignore[index]
    x1 = max(b.box[2] for b in boxes) * width  # type: ignore[index]
    y1 = max(b.box[3] for b in boxes) * height  # type: ignore[index]
    line = max(8.0, (y1 - y0) / max(1, len(boxes)))
    # Some context: a few lines above and below, a character or two either side.
    crop = marked.crop((max(0, int(x0 - line)), max(0, int(y0 - 3 * line)), min(width, int(x1 + line)), min(height, int(y1 + 3 * line))))
    if crop.width > CROP_WIDTH:
        crop = crop.resize((CROP_WIDTH, round(crop.height * CROP_WIDTH / crop.width)))
    whole = marked.resize((PAGE_WIDTH, round(height * PAGE_WIDTH / width))) if width > PAGE_WIDTH else marked
    label = escape(f"第 {page} 页")
    return (
        f'<div class="rag-scan"><img class="rag-scan-crop" src="{_data_uri(crop)}" alt="{label}：引用句所在位置" '
        f'style="max-width:100%;border:1px solid #ccc">'
        f'<details class="rag-scan-page"><summary>查看整页（{label}）</summary>'
        f'<img src="{_data_uri(whole)}" alt="{label}" style="max-width:100%"></details></div>'
    )


__all__ = ["crop_html"]
