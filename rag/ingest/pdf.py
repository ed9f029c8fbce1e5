"""PDF: the text layer, page by page. Scanned PDFs without one are reported, not indexed empty."""

from __future__ import annotations

import io

from .errors import IngestError


def read_pdf(data: bytes, source: str) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except Exception as error:  # malformed PDFs raise many types (PdfReadError, KeyError, zlib.error …)
        raise IngestError(source, "bad_pdf", f"not a readable PDF ({error})") from error
    text = "\n\n".join(page for page in pages if page)
    if not text.strip():
        raise IngestError(source, "pdf_no_text", "the PDF has no text layer (scanned image?); run OCR first")
    return text
