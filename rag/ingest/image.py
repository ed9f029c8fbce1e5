"""Page images (PNG, JPEG, TIFF incl. multi-page, WebP, BMP): checked, decoded and OCR'd page by page.

Only the header is read before the limits are checked, so a 30 000 × 30 000 image is refused without
decoding it; Pillow's decompression-bomb guard stays on as the second line.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator

from .errors import IngestError
from .ocr import OcrOptions, PagedText, ocr_pages

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
_FORMATS = {"PNG", "JPEG", "MPO", "TIFF", "WEBP", "BMP", "DIB"}


def _looks_like_markup(data: bytes) -> bool:
    return data[:512].lstrip().startswith(b"<")  # HTML, XML, SVG: a web page saved under an image's name


def _bad_image(source: str, data: bytes, error: Exception | None = None) -> IngestError:
    if _looks_like_markup(data):
        return IngestError(source, "not_an_image", "named as an image but holds HTML/XML text")
    reason = f"not a readable image ({type(error).__name__}: {error})" if error else "not a readable image"
    return IngestError(source, "bad_image", reason)


def open_image(data: bytes, source: str, options: OcrOptions):
    """The image, opened lazily (header only), after the frame and pixel limits; ``IngestError`` if refused."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:  # Pillow's own guard
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        raise IngestError(
            source,
            "too_many_pixels",
            f"image too large ({error})",
            pixels=f"{int(pixels[1]):,}" if pixels else "?",
            limit=options.max_pixels / 1e6,
        ) from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise _bad_image(source, data, error) from error
    if image.format not in _FORMATS:
        raise IngestError(source, "bad_image", f"unsupported image format {image.format}")
    width, height = image.size
    if width * height > options.max_pixels:
        raise IngestError(
            source,
            "too_many_pixels",
            f"{width}×{height} pixels is over the {options.max_pixels / 1e6:g} Mpx limit (RAG_OCR_MAX_MEGAPIXELS)",
            pixels=f"{width} × {height}",
            limit=options.max_pixels / 1e6,
        )
    frames = getattr(image, "n_frames", 1)
    if frames > options.max_pages:
        raise IngestError(
            source,
            "too_many_pages",
            f"{frames} pages, over the {options.max_pages} page OCR limit (RAG_OCR_MAX_PAGES)",
            pages=frames,
            limit=options.max_pages,
        )
    return image


def _frames(image, data: bytes, source: str, options: OcrOptions) -> Iterator[tuple[int, object]]:
    from PIL import ImageOps

    for number in range(getattr(image, "n_frames", 1)):
        try:
            image.seek(number)
            if image.size[0] * image.size[1] > options.max_pixels:
                raise IngestError(source, "too_many_pixels", f"page {number + 1} is over the pixel limit",
                                  pixels=f"{image.size[0]}×{image.size[1]}", limit=options.max_pixels / 1e6)
            frame = ImageOps.exif_transpose(image.convert("RGB") if image.mode not in ("RGB", "L") else image.copy())
            frame.load()
        except IngestError:
            raise
        except Exception as error:  # truncated data surfaces here, at decoding (OSError, SyntaxError, zlib.error …)
            raise _bad_image(source, data, error) from error
        frame.info["dpi"] = image.info.get("dpi", (200, 200))
        yield number + 1, frame


def read_image(data: bytes, source: str, options: OcrOptions) -> PagedText:
    image = open_image(data, source, options)
    result = ocr_pages(_frames(image, data, source, options), getattr(image, "n_frames", 1), options, source)
    if not result.text.strip():
        raise IngestError(source, "ocr_no_text", "OCR found no text in the image")
    return result


__all__ = ["IMAGE_SUFFIXES", "open_image", "read_image"]
