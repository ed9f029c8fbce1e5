"""Word .docx: paragraph text, with a guard against zip bombs."""

from __future__ import annotations

import io
import zipfile

from .errors import IngestError

MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200


def read_docx(data: bytes, source: str) -> str:
    import docx

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
            packed = sum(info.compress_size for info in archive.infolist()) or 1
    except zipfile.BadZipFile as error:
        raise IngestError(source, "bad_docx", "not a valid .docx (corrupt zip)") from error
    if total > MAX_UNCOMPRESSED_BYTES or total / packed > MAX_COMPRESSION_RATIO:
        raise IngestError(
            source, "zip_bomb", f"refused: unpacks to {total} bytes (zip bomb?)", size_mb=total / 1024 / 1024
        )
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:  # python-docx raises many types for malformed packages
        raise IngestError(source, "bad_docx", f"not a valid .docx ({type(error).__name__}: {error})") from error
    paragraphs = [p.text.strip() for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            paragraphs.append(" ".join(cell.text.strip() for cell in row.cells))
    text = "\n\n".join(p for p in paragraphs if p)
    if not text:
        raise IngestError(source, "no_text", "the document contains no text")
    return text
