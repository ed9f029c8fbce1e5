"""Loading files: every text encoding, HTML, PDF, DOCX, and clear errors for what cannot be read."""

from __future__ import annotations

import codecs
import io
import zipfile
from pathlib import Path

import pytest

from rag.chunking import ChunkingConfig, chunk_document
from rag.ingest import IngestError, load_bytes, load_file, load_paths
from rag.text import clean
from test_chunking import check_chunks

# Traditional text (encodable in Big5 as well as in GBK/GB18030), with a headline, a byline,
# a word split across a blank line and a line wrapped by the page layout.
TRADITIONAL = (
    "李強在京調研新質生產力發展情況\n\n"
    "大公報記者 王欣欣\n\n"
    "中共中央政治局常委、國務院總理李強3月13日在北京調研。他強調，要深入學習貫徹重要講話精神，"
    "認真落實兩會明確的各項任務，加快塑造高質量發展新動能新優勢。\n\n"
    "李強首先來到北京市高級別自動駕駛示範區創新運營中心，察看雲控基礎平台系統。李強對企業取得的創新成果表示讚許，勉勵他們進一\n\n"
    "步加大科技投入，加快先進製程裝備研發，更好牽引全產業鏈協同創新。\n"
)
SIMPLIFIED = (
    "全力确保人民群众安全温暖过冬\n\n"
    "各地各部门以切实行动落实重要指示。近日，我国中东部地区出现大范围低温雨雪冰冻灾害天气，交通保障至关\n\n"
    "重要。交通运输部门加强路网运行监测，全力保障道路安全畅通。\n"
)

ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-bom": lambda text: text.encode("utf-8-sig"),
    "gb18030": lambda text: text.encode("gb18030"),
    "gbk": lambda text: text.encode("gbk"),
    "big5": lambda text: text.encode("big5"),
    "utf-16-le-bom": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be-bom": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "crlf": lambda text: text.replace("\n", "\r\n").encode("utf-8"),
    "crlf-gb18030": lambda text: text.replace("\n", "\r\n").encode("gb18030"),
}


def cases() -> list[tuple[str, str]]:
    found = [(name, "traditional") for name in ENCODINGS]
    found += [(name, "simplified") for name in ENCODINGS if name != "big5"]  # Big5 has no simplified characters
    return found


@pytest.mark.parametrize("encoding, script", cases())
def test_each_encoding_loads_to_the_same_text(tmp_path: Path, encoding: str, script: str) -> None:
    text = TRADITIONAL if script == "traditional" else SIMPLIFIED
    path = tmp_path / f"news-{encoding}.txt"
    path.write_bytes(ENCODINGS[encoding](text))
    document = load_file(path)
    assert document.text.replace("\r\n", "\n") == text
    assert clean(document.text).text == clean(text).text
    assert document.headlines[0] == text.split("\n", 1)[0]
    assert document.source == str(path)
    config = ChunkingConfig(80, 20)
    check_chunks(document, chunk_document(document, clean(document.text), config), config)


def test_crlf_offsets_and_line_numbers_index_the_decoded_file(tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes(TRADITIONAL.replace("\n", "\r\n").encode("utf-8"))
    document = load_file(path)
    with open(path, encoding="utf-8", newline="") as handle:
        assert handle.read() == document.text  # the document text is the file, CRs included
    chunks = chunk_document(document, clean(document.text), ChunkingConfig(80, 20))
    joined = next(c for c in chunks if "進一步加大" in c.clean)
    assert "進一\r\n\r\n步加大" in joined.text
    line_of = {word: document.text[: document.text.index(word)].count("\r\n") + 1 for word in ("進一", "步加大")}
    assert joined.line_start <= line_of["進一"] < line_of["步加大"] <= joined.line_end


# ---------------------------------------------------------------------------- what cannot be read
def test_binary_data_renamed_txt_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    with pytest.raises(IngestError) as caught:
        load_file(path)
    assert caught.value.source == str(path)
    assert str(path) in str(caught.value) and "binary" in str(caught.value)


def test_undecodable_bytes_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes((i * 37 + 11) % 255 + 1 for i in range(3000)))  # no NUL, valid in no encoding
    with pytest.raises(IngestError, match="noise.txt"):
        load_file(path)


@pytest.mark.parametrize("content", [b"", b"  \n\r\n\t ", codecs.BOM_UTF8 + "\n\n".encode()])
def test_an_empty_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(IngestError, match="empty.txt"):
        load_file(path)


def test_unsupported_type_and_missing_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="unsupported file type .xlsx"):
        load_bytes(b"PK\x03\x04", "table.xlsx")
    with pytest.raises(IngestError, match="cannot read"):
        load_file(tmp_path / "missing.txt")


def test_one_bad_file_does_not_stop_the_batch(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a_good.txt").write_text(SIMPLIFIED, encoding="utf-8")
    (folder / "b_binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (folder / "c_empty.md").write_bytes(b"")
    (folder / "d_good.txt").write_bytes(TRADITIONAL.encode("big5"))
    (folder / "ignored.xyz").write_text("不是支持的类型", encoding="utf-8")
    documents, errors = load_paths([folder, tmp_path / "missing.txt"])
    assert [Path(d.source).name for d in documents] == ["a_good.txt", "d_good.txt"]
    assert sorted(Path(e.source).name for e in errors) == ["b_binary.txt", "c_empty.md", "missing.txt"]


# ---------------------------------------------------------------------------- other formats
HTML = """<!doctype html>
<html><head><meta charset="{charset}"><title>黑龙江外贸动力澎湃</title>
<style>.secret {{ color: red; }} body {{ font-family: 宋体; }}</style>
<script>var hidden = "脚本里的秘密文字"; document.write("不可见");</script></head>
<body><h2>规模再创新高</h2>
<p>2023年黑龙江省货物贸易进出口总值2978.3亿元人民币，同比增长12.3%。</p>
<noscript>请启用浏览器脚本功能</noscript>
<div><p>从哈尔滨经黑河到莫斯科的陆运特快，只需7-8天。</p><template><p>模板内容</p></template></div>
</body></html>"""


@pytest.mark.parametrize("charset", ["utf-8", "gb18030"])
def test_html_keeps_visible_text_only(charset: str) -> None:
    data = HTML.format(charset=charset).encode(charset)
    document = load_bytes(data, "page.html")
    for invisible in ("脚本里的秘密文字", "不可见", "color", "宋体", "请启用浏览器脚本功能", "模板内容", "<p>"):
        assert invisible not in document.text
    assert document.headlines[:2] == ("黑龙江外贸动力澎湃", "规模再创新高")
    assert "同比增长12.3%。" in document.text and "只需7-8天。" in document.text
    config = ChunkingConfig(60, 10)
    check_chunks(document, chunk_document(document, clean(document.text), config), config)


def make_pdf(pages: list[list[str]]) -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for lines in pages:
        pdf.setFont("STSong-Light", 11)
        for n, line in enumerate(lines):
            pdf.drawString(40, 800 - 18 * n, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def test_pdf_text_layer_is_read_page_by_page() -> None:
    pytest.importorskip("reportlab")
    data = make_pdf(
        [
            ["黑龙江外贸动力澎湃", "2023年黑龙江省货物贸易进出口总值2978.3亿元人民币。", "黑龙江企业已在7个国家设立39个海外仓。"],
            ["哈伊高铁永兴呼兰河特大桥全长16709米。"],
        ]
    )
    document = load_bytes(data, "report.pdf")
    assert document.headlines[0] == "黑龙江外贸动力澎湃"
    for sentence in ("2978.3亿元人民币。", "设立39个海外仓。", "全长16709米。"):
        assert sentence in document.text
    assert document.text.index("海外仓") < document.text.index("16709米")
    config = ChunkingConfig(50, 10)
    check_chunks(document, chunk_document(document, clean(document.text), config), config)


def test_pdf_without_a_text_layer_is_a_clear_error() -> None:
    pytest.importorskip("reportlab")
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    scan = canvas.Canvas(buffer)
    scan.rect(50, 50, 400, 600, fill=1)  # what a scanned page looks like to a text extractor: no text
    scan.save()
    with pytest.raises(IngestError, match="no text layer") as caught:
        load_bytes(buffer.getvalue(), "scan.pdf")
    assert caught.value.source == "scan.pdf"
    with pytest.raises(IngestError, match="not a readable PDF"):
        load_bytes(b"%PDF-1.4\n" + b"garbage " * 50, "broken.pdf")


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("东北大项目建设热火朝天", level=1)
    document.add_paragraph("总投资4.5亿元、特种铝合金锻造生产线项目正抓紧建设。")
    document.add_paragraph("")
    document.add_paragraph("一汽弗迪新能源动力电池项目正式投产。")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "项目", "投资"
    table.cell(1, 0).text, table.cell(1, 1).text = "锻造生产线", "4.5亿元"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_paragraphs_and_tables() -> None:
    document = load_bytes(make_docx(), "news.docx")
    assert document.text.startswith("东北大项目建设热火朝天\n\n总投资4.5亿元")
    assert "一汽弗迪新能源动力电池项目正式投产。" in document.text
    assert "锻造生产线 4.5亿元" in document.text
    assert document.headlines[0] == "东北大项目建设热火朝天"
    config = ChunkingConfig(50, 10)
    check_chunks(document, chunk_document(document, clean(document.text), config), config)


def test_broken_docx_and_zip_bombs_are_refused() -> None:
    with pytest.raises(IngestError, match="corrupt zip"):
        load_bytes(b"PK\x03\x04 not really a zip", "broken.docx")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\x00" * (8 * 1024 * 1024))
    with pytest.raises(IngestError, match="zip bomb"):
        load_bytes(buffer.getvalue(), "bomb.docx")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "不是Word文档")
    with pytest.raises(IngestError, match="not a valid .docx"):
        load_bytes(buffer.getvalue(), "plain.docx")
