"""Scanned pages: the page renderer's ground truth, the OCR engines, layout, and OCR through ingest."""

from __future__ import annotations

import pytest

import page_render as pr


@pytest.fixture(scope="module")
def small():
    return pr.small_page()


def test_renderer_is_deterministic_and_records_every_character(small):
    again = pr.small_page()
    assert again.image.tobytes() == small.image.tobytes()
    width, height = small.image.size
    assert small.headlines and small.script == "simplified"
    for block in small.blocks:
        for line in block.lines:
            assert len(line.chars) == len(line.text) > 0
            x0, y0, x1, y1 = line.box
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    # Headline type is larger than body type; every seed character of the shown articles is on the page in order.
    head = min(l.box[3] - l.box[1] for b in small.blocks if b.kind == "headline" for l in b.lines)
    body = max(l.box[3] - l.box[1] for b in small.blocks if b.kind == "body" for l in b.lines)
    assert head > 1.5 * body
    articles = pr.seed_articles((pr.SEEDS / small.seed).read_text(encoding="utf-8"))
    assert small.text.startswith(articles[0].headline + articles[0].paragraphs[0][:20])


def test_traditional_seed_renders_in_traditional_script():
    page = pr.render_seed(pr.TRADITIONAL_SEED, dpi=100, max_pages=1, max_articles=2)[0]
    assert page.script == "traditional" and "強" in page.text


def test_damage_moves_the_ground_truth_with_the_rotation(small):
    damaged = pr.damage(small, kinds=("rotation",))
    assert damaged.damage == ("rotation",)
    before = small.blocks[0].lines[0].chars[0]
    after = damaged.blocks[0].lines[0].chars[0]
    assert before != after and damaged.image.size == small.image.size
    every = pr.damage(small)
    assert every.damage == pr.DAMAGES and every.image.format == "JPEG"


def test_image_only_pdf_and_multipage_tiff_hold_the_pages(small):
    from pypdf import PdfReader
    import io
    from PIL import Image

    pdf = pr.image_pdf([small, small])
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 2 and not (reader.pages[0].extract_text() or "").strip()
    tiff = Image.open(io.BytesIO(pr.multipage_tiff([small, small])))
    assert tiff.n_frames == 2
