"""Scanned pages: the page renderer's ground truth, the OCR engines, layout, and OCR through ingest."""

from __future__ import annotations

import shutil

import pytest

import page_render as pr

# As the browser tests need Chromium: Debian's packages, which .ci/run installs.
pytestmark = pytest.mark.skipif(
    bool(pr.MISSING_FONTS), reason="needs Debian's CJK fonts (apt-get install fonts-noto-cjk fonts-wqy-microhei)"
)


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


# ---------------------------------------------------------------------------- engines and layout
@pytest.mark.parametrize(
    "name",
    [
        "rapidocr",
        pytest.param(
            "tesseract",
            marks=pytest.mark.skipif(
                shutil.which("tesseract") is None,
                reason="needs Debian's tesseract-ocr with tesseract-ocr-chi-sim",
            ),
        ),
    ],
)
def test_engine_reads_a_rendered_page_in_reading_order(small, name):
    from rag.ingest.ocr import get_engine, reading_order

    blocks = reading_order(get_engine(name, "chi_sim").recognize(small.image))
    text = "".join(line.text for block in blocks for line in block.lines)
    assert pr.cer(small.text, text) <= 0.03  # recognition and column order together
    headline = "".join(line.text for line in blocks[0].lines)
    assert blocks[0].kind == "headline" and pr.cer(small.headlines[0], headline) <= 0.1
    assert all(block.kind == "body" for block in blocks[1:])


def _line(text: str, x: float, y: float, size: float = 20.0, vertical: bool = False):
    from rag.ingest.ocr import TextBox

    if vertical:
        return TextBox(text, (x, y, x + size, y + size * len(text)))
    return TextBox(text, (x, y, x + size * len(text), y + size))


def test_layout_reads_side_by_side_articles_column_by_column():
    from rag.ingest.ocr import reading_order

    lines = [
        _line("左边文章的大标题", 0, 0, size=40), _line("右边的标题", 430, 0, size=40),
        *[_line(f"左一栏第{i}行文字内容", 0, 60 + 30 * i) for i in range(6)],
        *[_line(f"左二栏第{i}行文字内容", 215, 60 + 30 * i) for i in range(6)],
        *[_line(f"右栏第{i}行的文字内容", 430, 60 + 30 * i) for i in range(4)],
        _line("下一条新闻的标题", 0, 300, size=40),
        *[_line(f"下栏第{i}行的文字内容", 0, 360 + 30 * i) for i in range(3)],
    ]
    shuffled = lines[::-1]
    blocks = reading_order(shuffled)
    assert [(b.kind, b.lines[0].text) for b in blocks] == [
        ("headline", "左边文章的大标题"), ("body", "左一栏第0行文字内容"), ("body", "左二栏第0行文字内容"),
        ("headline", "右边的标题"), ("body", "右栏第0行的文字内容"),
        ("headline", "下一条新闻的标题"), ("body", "下栏第0行的文字内容"),
    ]
    assert [l.text for l in blocks[1].lines] == [f"左一栏第{i}行文字内容" for i in range(6)]


def test_layout_reads_vertical_columns_right_to_left():
    from rag.ingest.ocr import reading_order

    columns = ["第一行豎排文字", "第二行豎排文字", "第三行豎排文字"]
    lines = [_line(text, 300 - 40 * i, 0, vertical=True) for i, text in enumerate(columns)]
    blocks = reading_order(lines[::-1])
    assert [l.text for b in blocks for l in b.lines] == columns


# ---------------------------------------------------------------------------- OCR through ingest
@pytest.fixture(scope="module")
def strip_page(small):
    """The small page's headline and first body lines: quick to OCR."""
    from dataclasses import replace

    bottom = small.blocks[1].lines[3].box[3] + 4
    image = small.image.crop((0, 0, small.image.size[0], int(bottom)))
    return replace(small, image=image)


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("BMP", ".bmp")])
def test_page_image_formats_are_ocrd(strip_page, fmt, suffix):
    from rag.ingest import load_bytes

    document = load_bytes(pr.image_bytes(strip_page, fmt), f"scan{suffix}")
    assert document.headlines[0] == strip_page.headlines[0]
    assert document.text.startswith("# " + strip_page.headlines[0])
    assert {p.page for p in document.pages} == {1} and all(p.box is not None for p in document.pages)
    for piece in document.pages:  # every recognised piece of text has a box on the page, in page fractions
        x0, y0, x1, y1 = piece.box
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and document.text[piece.start : piece.end].strip()


def test_multipage_tiff_keeps_page_numbers(strip_page):
    from rag.ingest import load_bytes

    document = load_bytes(pr.multipage_tiff([strip_page, strip_page]), "two.tiff")
    assert {p.page for p in document.pages} == {1, 2}
    assert document.text.count("# " + strip_page.headlines[0]) == 2


def test_mixed_pdf_keeps_its_text_layer_and_ocrs_the_scanned_page(strip_page):
    from pypdf import PdfReader, PdfWriter
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    from rag.ingest import load_bytes

    import io

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    typed = io.BytesIO()
    page = canvas.Canvas(typed)
    page.setFont("STSong-Light", 14)
    page.drawString(72, 720, "松花江大桥今年通车，全长3.6公里。")
    page.save()
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(typed.getvalue())))
    writer.append(PdfReader(io.BytesIO(pr.image_pdf([strip_page]))))
    mixed = io.BytesIO()
    writer.write(mixed)

    document = load_bytes(mixed.getvalue(), "mixed.pdf")
    first, *rest = document.pages
    assert (first.page, first.box) == (1, None) and "3.6公里" in document.text[first.start : first.end]
    assert rest and {p.page for p in rest} == {2} and all(p.box for p in rest)
    assert strip_page.headlines[0] in document.headlines


# ---------------------------------------------------------------------------- page and boxes through the index
NEWS = (
    "青山镇新建图书馆开放\n\n"
    "青山镇今年新建的图书馆本月正式开放，馆藏图书三万册，设有少儿阅览室和电子阅览室。"
    "图书馆每天开放十二小时，周末举办读书会。镇文化站站长说，图书馆由县财政和社会捐款共同建设。\n"
)


def test_chunks_carry_page_and_boxes_through_rag_add_search_and_rebuild(writable_index_dir, tmp_path, capsys):
    import json

    from rag.cli import main
    from rag.store.index import read_documents
    from rag.types import boxes_between

    (tmp_path / "news.txt").write_text(NEWS, encoding="utf-8")  # not in the seeds: no near-duplicate to fold into
    page = pr.render_seed(tmp_path / "news.txt", dpi=150, page_inches=(8.3, 3.2), columns=2, max_pages=1)[0]
    scan = tmp_path / "scan.png"
    scan.write_bytes(pr.image_bytes(page))
    assert main(["add", str(scan), "--index-dir", str(writable_index_dir)]) == 0
    capsys.readouterr()
    question = "青山镇图书馆馆藏图书多少册？"
    assert main(["search", question, "--index-dir", str(writable_index_dir), "--json"]) == 0
    hits = [h for h in json.loads(capsys.readouterr().out) if h["source"] == str(scan)]
    assert hits, "the scanned page is found by its own words"
    hit = hits[0]
    assert hit["page"] == 1 and hit["boxes"]
    for box in hit["boxes"]:  # each box holds its piece of the chunk's text
        assert hit["start"] <= box["start"] < box["end"] <= hit["end"] and len(box["box"]) == 4
    (document,) = [d for d in read_documents(writable_index_dir) if d.source == str(scan)]
    assert document.pages and all(p.box for p in document.pages)  # stored, so a rebuild keeps them
    # A span's boxes are its lines' boxes clipped to its characters.
    line = next(p for p in document.pages if p.end - p.start >= 8)
    (part,) = boxes_between(document.pages, line.start + 2, line.start + 6)
    assert line.box[0] < part.box[0] < part.box[2] < line.box[2] and (part.box[1], part.box[3]) == (line.box[1], line.box[3])


# ---------------------------------------------------------------------------- the page behind a citation
def test_citation_of_a_scanned_page_shows_a_crop_with_the_sentence_highlighted(strip_page, tmp_path):
    import base64
    import io
    import re

    from PIL import Image

    from rag.chunking import ChunkingConfig, chunk_document
    from rag.ingest import load_file
    from rag.text import clean
    from rag.types import Answer, Citation
    from rag.web.render import sources_html

    scan = tmp_path / "scan.png"
    scan.write_bytes(pr.image_bytes(strip_page))
    document = load_file(scan)
    chunk = next(c for c in chunk_document(document, clean(document.text), ChunkingConfig()) if c.boxes and "。" in c.clean)
    quote_end = document.text.index("。", chunk.start) + 1
    citation = Citation(1, chunk, document.text[chunk.start : quote_end], chunk.start, quote_end)
    html = sources_html(Answer("问题", "回答[1]", False, [citation]), turn=1)
    assert "第 1 页" in html and html.count("data:image/jpeg;base64,") == 2  # the crop and the whole page
    crop = Image.open(io.BytesIO(base64.b64decode(re.search(r'src="data:image/jpeg;base64,([^"]+)"', html)[1])))
    assert crop.width <= 640 and crop.height < strip_page.image.height
    import numpy as np

    rgb = np.asarray(crop.convert("RGB")).astype(int)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 150) & (rgb[..., 2] < 150)
    assert yellow.sum() > 200  # the highlight is drawn
    notebook = Answer("问题", "回答[1]", False, [citation])._repr_html_()  # Jupyter shows the same crop
    assert "第1页" in notebook and "data:image/jpeg;base64," in notebook

    scan.unlink()  # the file moved away: the text is still shown, without the image
    from rag.web import scan as scan_module

    scan_module._page_image.cache_clear()
    assert "data:image" not in sources_html(Answer("问题", "回答[1]", False, [citation]), turn=1)


# ---------------------------------------------------------------------------- time limit, progress and cancel
def test_a_page_over_its_time_limit_stops_the_engine_with_a_clear_message(strip_page):
    import time

    from rag.ingest import IngestError, load_bytes
    from rag.ingest.ocr import Budget, OcrOptions, OcrTimeout, get_engine

    with pytest.raises(OcrTimeout):  # the engine itself, mid-page: the budget is checked as it works
        get_engine("rapidocr").recognize(strip_page.image, Budget(time.monotonic(), 5.0))
    with pytest.raises(IngestError) as caught:
        load_bytes(pr.image_bytes(strip_page), "slow.png", ocr=OcrOptions(page_seconds=1e-9))
    assert caught.value.code == "ocr_timeout" and "第 1 页" in caught.value.message_zh
    assert "RAG_OCR_PAGE_SECONDS" in caught.value.message_zh


def test_ocr_reports_pages_done_and_stops_when_cancelled(strip_page):
    import threading

    from rag.ingest import load_bytes
    from rag.ingest.ocr import OcrCancelled, OcrOptions
    from rag.progress import cancellable, observe

    three = pr.multipage_tiff([strip_page] * 3)
    steps = []
    quick = OcrOptions(nice=0, page_seconds=3600)  # on a busy test machine a lower-priority OCR may wait long
    with observe(steps.append):
        load_bytes(three, "three.tiff", ocr=quick)
    assert [(s.stage, s.done, s.total) for s in steps] == [("ocr", 0, 3), ("ocr", 1, 3), ("ocr", 2, 3), ("ocr", 3, 3)]

    cancel = threading.Event()
    seen = []

    def after_first_page(step):
        seen.append(step.done)
        if step.done == 1:
            cancel.set()  # as the page's cancel button does, from another thread

    with observe(after_first_page), cancellable(cancel), pytest.raises(OcrCancelled):
        load_bytes(three, "three.tiff", ocr=quick)
    assert seen == [0, 1]


def test_cancelled_upload_leaves_the_index_and_uploads_folder_unchanged(strip_page, writable_index_dir, tmp_path):
    import threading

    from rag.knowledge import UPLOADS_DIR, KnowledgeBase
    from rag.settings import Settings
    from rag.web.uploads import CANCELLED, UploadResult, add_upload_steps

    settings = Settings(index_dir=writable_index_dir, ocr_nice=0, ocr_page_seconds=3600)
    knowledge = KnowledgeBase.open(settings, build_if_missing=False)
    before = [r.document.id for r in knowledge.documents]
    scan = tmp_path / "scan.tiff"
    scan.write_bytes(pr.multipage_tiff([strip_page] * 2))
    cancel = threading.Event()
    cancel.set()
    *steps, result = add_upload_steps(knowledge, scan, "扫描.tiff", cancel)
    assert isinstance(result, UploadResult) and not result.ok and result.message == CANCELLED
    assert [r.document.id for r in KnowledgeBase.open(settings, build_if_missing=False).documents] == before
    assert not list((knowledge.path / UPLOADS_DIR).glob("*.tiff"))

    *steps, result = add_upload_steps(knowledge, scan, "扫描.tiff", threading.Event(), interval=0.05)
    assert result.ok and result.doc_id and all(s.stage == "ocr" and s.total == 2 for s in steps)


def test_traditional_pages_get_their_script_and_centred_punctuation_back():
    from rag.ingest.ocr.script import repair

    # What PP-OCRv4 reads on a traditional page: simplified forms, 丶 for 、, · and ° for 。, ’ for ，.
    read = ["國務院總理李强3月13日在北京調研丶考察·", "黑龍江擁有2981公里的邊境线’對外開放°", "氣溫30°"]
    assert repair(read) == ["國務院總理李強3月13日在北京調研、考察。", "黑龍江擁有2981公里的邊境線，對外開放。", "氣溫30°"]
    # A simplified page keeps its script, its quotes and its interpuncts; only the radical 丶 is never text.
    simplified = ["国务院总理李强在北京调研丶考察", "他说‘很好’，约翰·史密斯"]
    assert repair(simplified) == ["国务院总理李强在北京调研、考察", "他说‘很好’，约翰·史密斯"]


def _has_chi_tra() -> bool:
    from rag.ingest.ocr.tesseract import installed_languages

    return "chi_tra" in installed_languages()


needs_chi_tra = pytest.mark.skipif(not _has_chi_tra(), reason="needs Debian's tesseract-ocr-chi-tra")


def test_a_second_reader_fills_in_what_rapidocr_cannot_read():
    from rag.ingest.ocr.script import fill_in

    # Outside RapidOCR's alphabet: its misreading (食 for 倉) or its gap gives way to the second reader's character.
    assert fill_in("海外食", "海外倉", alphabet=set("海外食")) == "海外倉"
    assert fill_in("俄斯", "俄羅斯", alphabet=set("俄斯")) == "俄羅斯"
    # A traditional form it dropped comes in; a character the second reader made up (有) does not.
    assert fill_in("與俄斯", "與俄有羅斯", alphabet=set("與俄有羅斯")) == "與俄羅斯"
    # Elsewhere RapidOCR's reading stands: punctuation, and characters both could read.
    assert fill_in("調研中，李強召開座會", "調研中,李強召閉座談會", alphabet=set("調研中，,李強召開閉座談會")) == "調研中，李強召開座談會"
    assert fill_in("新聞 ", "", alphabet=set("新聞")) == "新聞"


@needs_chi_tra
def test_traditional_pages_read_better_with_the_second_reader():
    from collections import Counter

    from rag.ingest.ocr.rapid import RapidEngine

    page = pr.render_seed(pr.TRADITIONAL_SEED, dpi=200, max_pages=1, max_articles=2)[0]
    printed = Counter(pr.comparable(page.text))
    missed = {}  # the page's characters not read (whatever the order of the lines)
    for second in (False, True):
        read = Counter(pr.comparable("".join(line.text for line in RapidEngine(2, 0, second_reader=second).recognize(page.image))))
        missed[second] = sum((printed - read).values()) / sum(printed.values())
    assert missed[True] < 0.7 * missed[False], missed  # 8.1 % → 5.1 % here


@needs_chi_tra
def test_the_second_reader_reads_each_line_image_across_sheets(monkeypatch):
    from PIL import Image, ImageDraw

    from rag.ingest.ocr import tesseract

    font = pr._font(*pr._FONTS["body"]["traditional"][0], 40)
    sentences = ["黑龍江擁有漫長邊境線", "國家一類口岸眾多", "跨境通道建設不斷完善", "俄羅斯遠東地區", "海外倉實現本地配送"]
    images = []
    for sentence in sentences:
        image = Image.new("RGB", (44 * len(sentence) + 20, 60), (246, 243, 236))
        ImageDraw.Draw(image).text((10, 8), sentence, font=font, fill=(24, 22, 20))
        images.append(image)
    monkeypatch.setattr(tesseract, "SHEET_LINES", 2)  # three sheets: 2 + 2 + 1 lines
    read = tesseract.TesseractEngine("chi_tra").read_lines(images)
    assert len(read) == len(sentences)
    assert all(pr.cer(sentence, text) <= 0.2 for sentence, text in zip(sentences, read)), read
