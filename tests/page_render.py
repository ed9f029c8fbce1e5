"""Newspaper page images rendered from the seed texts, with ground truth, for the OCR tests and bench/bench_ocr.py.

No scans can be downloaded here, so we make them: each seed's articles (headlines found by ``rag.text.clean``) are
set in multi-column bands — the headline across the article's columns in larger bold type, the body flowing down
its columns — on A3-like pages at a chosen dpi, in Debian's CJK fonts (fonts-noto-cjk, fonts-wqy-microhei).
Damage variants add what real scans have: slight rotation, blur, JPEG artefacts, uneven contrast, a fold shadow.

The renderer records what OCR is scored against: every character's box, every line, the blocks (a headline, or
one column's share of an article's body) in reading order, and the headlines. Everything is driven by a seeded
``random.Random``: the same arguments give the same pixels.

Importable as ``page_render`` from tests (tests/ is on ``sys.path``) and from bench/ after
``sys.path.insert(0, "<repo>/tests")``. Test tooling only: nothing in ``rag`` imports it.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from rag.text import clean

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
TRADITIONAL_SEED = "000_7eb0358025d090fe.txt"  # the one seed page in traditional script

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the page image

# (file, face index) per script; faces 2/3 of the Noto CJK collections are SC/TC.
_FONTS = {
    "body": {
        "simplified": [("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
                       ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0)],
        "traditional": [("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 3),
                        ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 3)],
    },
    "headline": {
        "simplified": [("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),
                       ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc", 2)],
        "traditional": [("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 3),
                        ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc", 3)],
    },
}
#: Font files this machine lacks (Debian: fonts-noto-cjk, fonts-wqy-microhei); pages cannot be rendered without them.
MISSING_FONTS = sorted({path for faces in _FONTS.values() for fonts in faces.values() for path, _ in fonts if not Path(path).exists()})
_PAPER = (246, 243, 236)
_INK = (24, 22, 20)


@dataclass
class Line:
    text: str
    box: Box
    chars: list[Box]  # one box per character of ``text``


@dataclass
class Block:
    article: int  # index of the article on the seed; a continued article keeps its number
    kind: str  # "headline" or "body"
    lines: list[Line] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(line.text for line in self.lines)

    @property
    def box(self) -> Box:
        boxes = [line.box for line in self.lines]
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


@dataclass
class Page:
    image: Image.Image
    dpi: int
    script: str  # "simplified" or "traditional"
    seed: str  # the seed file's name
    blocks: list[Block]  # in reading order
    damage: tuple[str, ...] = ()

    @property
    def headlines(self) -> list[str]:
        return [b.text for b in self.blocks if b.kind == "headline"]

    @property
    def text(self) -> str:
        """The page's characters in reading order, without spaces or line breaks."""
        return "".join(b.text for b in self.blocks)


@dataclass
class _Article:
    number: int
    headline: str
    paragraphs: list[str]


def seed_articles(text: str) -> list[_Article]:
    """A seed page split into articles at its headlines (as the project's cleaning recognises them)."""
    cleaned = clean(text)
    articles: list[_Article] = []
    for block in cleaned.blocks:
        body = cleaned.text[block.start : block.end].replace(" ", "").replace("\u3000", "")
        if not body:
            continue
        if block.kind == "headline" and (not articles or articles[-1].paragraphs):
            articles.append(_Article(len(articles), body, []))
        elif not articles:
            articles.append(_Article(0, "", [body]))
        else:
            articles[-1].paragraphs.append(body)
    # A headline whose "article" is a line or two is a headline deck (a headline over a subhead over the
    # real headline, as the seeds print them): the whole deck goes over the next article, under the first headline.
    merged: list[_Article] = []
    for article in (a for a in articles if a.paragraphs):
        previous = merged[-1] if merged else None
        if previous and sum(map(len, previous.paragraphs)) < 80:
            previous.paragraphs += ([article.headline] if article.headline else []) + article.paragraphs
        else:
            merged.append(_Article(len(merged), article.headline, list(article.paragraphs)))
    return merged


@lru_cache(maxsize=64)
def _font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: float, indent: float = 0.0) -> list[tuple[str, float]]:
    """Greedy line breaks by measured width; (line, x offset) pairs — the first line is indented."""
    lines: list[tuple[str, float]] = []
    current, used, offset = "", 0.0, indent
    for ch in text:
        w = font.getlength(ch)
        if current and offset + used + w > width:
            lines.append((current, offset))
            current, used, offset = "", 0.0, 0.0
        current += ch
        used += w
    if current:
        lines.append((current, offset))
    return lines


def _draw_line(draw: ImageDraw.ImageDraw, text: str, x: float, y: float, font: ImageFont.FreeTypeFont, size: int) -> Line:
    chars: list[Box] = []
    cursor = x
    for ch in text:
        draw.text((cursor, y), ch, font=font, fill=_INK)
        w = font.getlength(ch)
        # The character's cell (advance width × type size): punctuation's ink is tiny, its place is not.
        chars.append((cursor, y, cursor + w, y + size))
        cursor += w
    return Line(text, (x, y, cursor, y + size), chars)


def render_seed(
    seed: str | Path,
    *,
    dpi: int = 200,
    seed_value: int = 0,
    page_inches: tuple[float, float] = (11.7, 16.5),
    columns: int = 5,
    body_pt: float = 10.0,
    max_pages: int | None = None,
    max_articles: int | None = None,
) -> list[Page]:
    """Typeset one seed file into clean pages (see :func:`damage` for scanned-looking variants)."""
    path = Path(seed) if Path(seed).is_file() else SEEDS / str(seed)
    text = path.read_text(encoding="utf-8")
    rng = random.Random(f"{path.name}:{seed_value}")
    script = "traditional" if path.name == TRADITIONAL_SEED else "simplified"
    body_path, body_index = rng.choice(_FONTS["body"][script])
    head_path, head_index = rng.choice(_FONTS["headline"][script])
    size = round(body_pt / 72 * dpi)
    head_size = round(size * rng.uniform(1.7, 2.2))
    body_font, head_font = _font(body_path, body_index, size), _font(head_path, head_index, head_size)
    leading = round(size * 1.5)
    width, height = round(page_inches[0] * dpi), round(page_inches[1] * dpi)
    margin = round(0.5 * dpi)
    gutter = round(size * 1.6)
    col_width = (width - 2 * margin - (columns - 1) * gutter) / columns
    articles = seed_articles(text)[:max_articles]

    pages: list[Page] = []
    image = draw = None
    blocks: list[Block] = []
    y = 0.0

    def new_page() -> None:
        nonlocal image, draw, blocks, y
        if image is not None:
            pages.append(Page(image, dpi, script, path.name, blocks))
        image = Image.new("RGB", (width, height), _PAPER)
        draw = ImageDraw.Draw(image)
        blocks = []
        y = float(margin)

    new_page()
    queue = list(articles)
    while queue and (max_pages is None or len(pages) < max_pages):
        if height - margin - y < 10 * leading:
            new_page()
        # One band: articles side by side until the columns are used up, each headline across its own columns.
        free, band_bottom, carried = columns, y, []
        while queue and free:
            article = queue.pop(0)
            lines_needed = sum(len(p) for p in article.paragraphs) / max(1, col_width // size - 1)
            span = max(1, min(free, math.ceil(lines_needed / rng.randint(24, 44))))
            if len(queue) == 0 or free - span == 1 and span > 1:
                span = free  # no single column left over with nothing to put there
            x0 = margin + (columns - free) * (col_width + gutter)
            bottom, rest = _place(draw, blocks, article, x0, y, span, col_width, gutter, height - margin, body_font, head_font, size, head_size, leading)
            band_bottom = max(band_bottom, bottom)
            free -= span
            if rest:  # continued on the next page, without its headline
                carried.append(rest)
        y = band_bottom + round(leading * 1.2)
        # A rule between bands, as newspapers print one.
        draw.line((margin, y - leading * 0.6, width - margin, y - leading * 0.6), fill=(120, 118, 112), width=max(1, dpi // 100))
        if carried:
            queue[:0] = carried
            new_page()
    if blocks and (max_pages is None or len(pages) < max_pages):
        pages.append(Page(image, dpi, script, path.name, blocks))
    return pages


def _place(draw, blocks, article, x0, y, span, col_width, gutter, bottom_limit, body_font, head_font, size, head_size, leading):
    """Set one article in ``span`` columns from ``(x0, y)``; its bottom and what did not fit (or ``None``)."""
    head_lines = _wrap(article.headline, head_font, span * col_width + (span - 1) * gutter) if article.headline else []
    head_height = len(head_lines) * round(head_size * 1.3) + (round(size * 0.8) if head_lines else 0)
    body_lines = [line for paragraph in article.paragraphs for line in _wrap(paragraph, body_font, col_width, indent=2 * size)]
    fits = max(1, int((bottom_limit - y - head_height) // leading))
    per_column = min(math.ceil(len(body_lines) / span), fits)
    if head_lines:
        block = Block(article.number, "headline")
        for row, (line_text, _) in enumerate(head_lines):
            block.lines.append(_draw_line(draw, line_text, x0, y + row * round(head_size * 1.3), head_font, head_size))
        blocks.append(block)
    top = y + head_height
    for column in range(span):
        part = body_lines[column * per_column : (column + 1) * per_column]
        if not part:
            break
        block = Block(article.number, "body")
        cx = x0 + column * (col_width + gutter)
        for row, (line_text, indent) in enumerate(part):
            block.lines.append(_draw_line(draw, line_text, cx + indent, top + row * leading, body_font, size))
        blocks.append(block)
    rest = body_lines[per_column * span :]
    return top + per_column * leading, (_Article(article.number, "", ["".join(t for t, _ in rest)]) if rest else None)


DAMAGES = ("rotation", "blur", "jpeg", "contrast", "fold")


def _transform_box(box: Box, angle: float, centre: tuple[float, float]) -> Box:
    # Image.rotate turns counter-clockwise by ``angle`` degrees about ``centre``; map the corners the same way.
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    cx, cy = centre
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
        dx, dy = x - cx, y - cy
        xs.append(cx + dx * cos + dy * sin)
        ys.append(cy - dx * sin + dy * cos)
    return (min(xs), min(ys), max(xs), max(ys))


def damage(page: Page, seed_value: int = 0, kinds: tuple[str, ...] = DAMAGES) -> Page:
    """A scanned-looking copy of ``page`` (ground truth moved along with any rotation)."""
    rng = random.Random(f"{page.seed}:{seed_value}:damage")
    image = page.image
    blocks = page.blocks
    width, height = image.size
    if "rotation" in kinds:
        angle = rng.choice([-1, 1]) * rng.uniform(0.4, 1.2)
        centre = (width / 2, height / 2)
        image = image.rotate(angle, resample=Image.BICUBIC, center=centre, fillcolor=_PAPER)
        blocks = [
            replace(b, lines=[Line(l.text, _transform_box(l.box, angle, centre), [_transform_box(c, angle, centre) for c in l.chars]) for l in b.lines])
            for b in blocks
        ]
    if "contrast" in kinds or "fold" in kinds:
        import numpy as np

        pixels = np.asarray(image, dtype=np.float32)
        if "contrast" in kinds:  # faded ink and a light gradient across the page, as from a lamp or a phone
            ramp = np.linspace(rng.uniform(0.78, 0.9), 1.05, width, dtype=np.float32)[None, :, None]
            pixels = 255 - (255 - pixels) * rng.uniform(0.65, 0.8)
            pixels = pixels * ramp
        if "fold" in kinds:  # a soft shadow along the horizontal fold
            fold = height * rng.uniform(0.45, 0.55)
            rows = np.arange(height, dtype=np.float32)[:, None, None]
            pixels = pixels * (1 - 0.35 * np.exp(-(((rows - fold) / (0.012 * height)) ** 2)))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if "blur" in kinds:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 0.9) * page.dpi / 200))
    if "jpeg" in kinds:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(35, 55))
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()
    return Page(image, page.dpi, page.script, page.seed, blocks, tuple(k for k in DAMAGES if k in kinds))


def image_bytes(page: Page, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image = page.image.convert("RGB") if fmt.upper() in ("JPEG", "BMP") else page.image
    image.save(buffer, fmt, dpi=(page.dpi, page.dpi))
    return buffer.getvalue()


def image_pdf(pages: list[Page]) -> bytes:
    """An image-only PDF (no text layer), one page per image, at the pages' dpi."""
    buffer = io.BytesIO()
    first, *rest = [p.image.convert("RGB") for p in pages]
    first.save(buffer, "PDF", resolution=float(pages[0].dpi), save_all=True, append_images=rest)
    return buffer.getvalue()


def multipage_tiff(pages: list[Page]) -> bytes:
    buffer = io.BytesIO()
    first, *rest = [p.image for p in pages]
    first.save(buffer, "TIFF", save_all=True, append_images=rest, compression="tiff_deflate", dpi=(pages[0].dpi,) * 2)
    return buffer.getvalue()


def small_page(seed: str = "002_dd50b58d08d7afa0.txt", dpi: int = 150, articles: int = 2) -> Page:
    """A quick page for tests: a few articles in three columns on a half-height sheet."""
    return render_seed(seed, dpi=dpi, page_inches=(8.3, 6.0), columns=3, max_pages=1, max_articles=articles)[0]


__all__ = [
    "Block",
    "DAMAGES",
    "Line",
    "Page",
    "damage",
    "image_bytes",
    "image_pdf",
    "multipage_tiff",
    "render_seed",
    "seed_articles",
    "small_page",
]


# --- scoring: what tests and bench/bench_ocr.py measure against the ground truth ---------------------------------

def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def comparable(text: str) -> str:
    """Text as scored: no whitespace, no Markdown headline marks; full-width forms folded (OCR writes either)."""
    import unicodedata

    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if not ch.isspace() and ch != "#")


def cer(reference: str, hypothesis: str) -> float:
    reference, hypothesis = comparable(reference), comparable(hypothesis)
    return edit_distance(reference, hypothesis) / max(1, len(reference))
