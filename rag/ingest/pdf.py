"""PDF, page by page: a page's text layer when it has one; otherwise the page is rendered and OCR'd.

Mixed PDFs (some pages typeset, some scanned) therefore work, and every character keeps its page number.
The page limit counts only the pages that need OCR, and is checked before any is rendered.
"""

from __future__ import annotations

import io

from .errors import IngestError
from .ocr import OcrOptions, PagedText, ocr_pages

MIN_LAYER_CHARS = 8  # fewer characters than this in a page's text layer: a scan (page numbers, stray marks)


def read_pdf(data: bytes, source: str, options: OcrOptions) -> PagedText:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # an owner password alone does not stop reading
            raise IngestError(source, "pdf_encrypted", "the PDF is password-protected")
        layers = [(page.extract_text() or "").strip() for page in reader.pages]
    except IngestError:
        raise
    except Exception as error:  # malformed PDFs raise many types (PdfReadError, KeyError, zlib.error …)
        if "decrypt" in str(error).lower() or "password" in str(error).lower():
            raise IngestError(source, "pdf_encrypted", f"the PDF is password-protected ({error})") from error
        raise IngestError(source, "bad_pdf", f"not a readable PDF ({error})") from error
    scanned = [number for number, text in enumerate(layers) if len(text) < MIN_LAYER_CHARS]
    if len(scanned) > options.max_pages:
        raise IngestError(
            source,
            "too_many_pages",
            f"{len(scanned)} scanned pages, over the {options.max_pages} page OCR limit (RAG_OCR_MAX_PAGES)",
            pages=len(scanned),
            limit=options.max_pages,
        )
    rendered = _render(data, source, scanned, options) if scanned else iter(())
    pages = ((number + 1, next(rendered)[1] if number in scanned else text) for number, text in enumerate(layers))
    result = ocr_pages(pages, len(scanned), options, source)
    if not result.text.strip():
        raise IngestError(source, "ocr_no_text" if scanned else "no_text", "no text layer, and OCR found no text on any page")
    return result


def _render(data: bytes, source: str, numbers: list[int], options: OcrOptions):
    """Render the scanned pages at ``options.pdf_dpi``, lazily, checking each page's pixel count first."""
    try:
        import pypdfium2 as pdfium
    except ImportError as error:
        raise IngestError(source, "ocr_missing", "pypdfium2 is not installed (pip install 'rag-news-zh[ocr]')") from error
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        raise IngestError(source, "bad_pdf", f"not a readable PDF ({error})") from error
    scale = options.pdf_dpi / 72
    try:
        for number in numbers:
            page = document[number]
            width, height = page.get_size()
            if width * scale * height * scale > options.max_pixels:
                raise IngestError(source, "too_many_pixels", f"page {number + 1} renders over the pixel limit",
                                  pixels=f"{width * scale:.0f}×{height * scale:.0f}", limit=options.max_pixels / 1e6)
            image = page.render(scale=scale, grayscale=True).to_pil()
            image.info["dpi"] = (options.pdf_dpi, options.pdf_dpi)
            yield number + 1, image
            page.close()
    finally:
        document.close()


__all__ = ["read_pdf"]
