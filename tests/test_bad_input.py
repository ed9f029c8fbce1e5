"""Bad-input campaign: broken and hostile files, file names and questions.

Every bad file ends in a specific error (a stable code, an English reason naming the file for logs
and the CLI, a Chinese message for the page) and leaves the index byte-for-byte unchanged and still
answering. Awkward but valid files (legacy encodings, BOMs, mixed line endings, script-laden HTML,
odd file names) are indexed and answerable. Bad questions and parameters get a Chinese message.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import random
import re
import shutil
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from rag import Assistant, KnowledgeBase, Settings
from rag.cli import main
from rag.ingest import IngestError, load_bytes
from rag.knowledge import NothingToIndexError
from rag.validation import InputError
from rag.web.library import rebuild
from rag.web.uploads import UPLOADS_DIR, add_upload

CONTROL_QUESTION = ("黑龍江的邊境線有多長？", "2981公里")  # answered from the seeds before and after each case


# ---------------------------------------------------------------------------- bad files
def _docx(*paragraphs: str) -> bytes:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _blank_pdf() -> bytes:
    """What a scanned page looks like to a text extractor: a page with no text layer."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _png(width: int, height: int, noise: bool = False) -> bytes:
    from PIL import Image

    # Noise compresses badly, so a cut leaves most of the image out (and needs no system font).
    image = Image.effect_noise((width, height), 64) if noise else Image.new("L", (width, height), 255)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that says it is ``width`` × ``height`` (decoding it would take gigabytes); only the header is real."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def _scanned_pdf(pages: int) -> bytes:
    """An image-only PDF of ``pages`` (tiny) scanned pages."""
    from PIL import Image

    first, *rest = [Image.new("L", (40, 56), 255) for _ in range(pages)]
    buffer = io.BytesIO()
    first.save(buffer, "PDF", resolution=10.0, save_all=True, append_images=rest)
    return buffer.getvalue()


def _encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_blank_pdf())))
    writer.encrypt(user_password="secret", owner_password="owner")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _noise(size: int, *, nul: bool) -> bytes:
    rng = random.Random(size)
    data = bytes(rng.randrange(1 if not nul else 0, 256) for _ in range(size))
    return data if not nul else b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + data


FIFTY_MB = 50 * 1024 * 1024
SCRIPT_ONLY_HTML = (
    "<html><head><title></title><style>body{color:red}</style><script>alert('新闻')</script></head>"
    "<body><script>document.write('黑龙江')</script><noscript>请启用脚本</noscript>"
    "<template><p>模板文字</p></template><iframe src='x'></iframe></body></html>"
).encode()

#: (case, file name, bytes, expected problem code, words in the Chinese message)
BAD_FILES: list[tuple[str, str, Callable[[], bytes], str, str]] = [
    ("empty", "empty.txt", lambda: b"", "empty", "空"),
    ("whitespace-only", "blank.md", lambda: b"  \r\n\t\n \n", "empty", "空"),
    ("ideographic-spaces-only", "spaces.txt", lambda: "\u3000\u3000\n\u200b".encode(), "no_text", "没有可读的文字"),
    ("png-renamed-txt", "photo.txt", lambda: _noise(4096, nul=True), "binary", "二进制"),
    ("elf-renamed-md", "notes.md", lambda: b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8, "binary", "二进制"),
    ("invalid-utf16", "broken16.txt", lambda: codecs.BOM_UTF16_LE + b"\x00\xd8A", "broken_text", "损坏的字节"),
    ("50mb-text", "huge.txt", lambda: "黑龙江新闻报道。\n".encode() * (FIFTY_MB // 25), "too_large", "文件过大"),
    ("executable", "tool.exe", lambda: b"MZ\x90\x00\x03", "unsupported_type", "不支持的文件类型"),
    ("no-extension", "README", lambda: "说明文字".encode(), "unsupported_type", "不支持的文件类型"),
    ("script-only-html", "page.html", lambda: SCRIPT_ONLY_HTML, "no_text", "没有可读的文字"),
    ("pdf-without-any-text", "scan.pdf", _blank_pdf, "ocr_no_text", "没有在图片或扫描页中找到文字"),
    ("garbage-pdf", "broken.pdf", lambda: b"%PDF-1.4\n" + b"garbage " * 50, "bad_pdf", "PDF"),
    ("truncated-pdf", "cut.pdf", lambda: _blank_pdf()[:200], "bad_pdf", "PDF"),
    ("corrupt-docx", "broken.docx", lambda: b"PK\x03\x04 not really a zip", "bad_docx", ".docx"),
    ("truncated-docx", "cut.docx", lambda: _docx("一段文字。")[:3000], "bad_docx", ".docx"),
    ("zip-not-docx", "plain.docx", lambda: _zip("hello.txt", "不是Word文档".encode()), "bad_docx", ".docx"),
    ("zip-bomb-docx", "bomb.docx", lambda: _zip("word/document.xml", b"\x00" * (64 * 1024 * 1024)), "zip_bomb", "解压"),
    ("docx-without-text", "blank.docx", lambda: _docx("", "  "), "no_text", "没有可读的文字"),
    ("truncated-png", "cut.png", lambda: _png(300, 200, noise=True)[:400], "bad_image", "无法读取这张图片"),
    ("30000x30000-png", "huge.png", lambda: _png_header(30000, 30000), "too_many_pixels", "图片过大"),
    ("empty-png", "empty.png", lambda: b"", "empty", "空"),
    ("image-without-text", "blank.png", lambda: _png(320, 240), "ocr_no_text", "没有在图片或扫描页中找到文字"),
    ("300-page-scanned-pdf", "book.pdf", lambda: _scanned_pdf(300), "too_many_pages", "页数过多"),
    ("password-protected-pdf", "secret.pdf", _encrypted_pdf, "pdf_encrypted", "密码"),
    ("html-named-png", "page.png", lambda: b"<!DOCTYPE html><html><body>\xe6\x96\xb0\xe9\x97\xbb</body></html>", "not_an_image", "不是图片"),
]
BAD_IDS = [case[0] for case in BAD_FILES]


def index_files(path: Path) -> dict[str, str]:
    """Checksum of every file of the index (uploads and the lock file aside)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".lock" and UPLOADS_DIR not in p.relative_to(path).parts
    }


def assert_still_answers(assistant: Assistant) -> None:
    question, gold = CONTROL_QUESTION
    answer = assistant.ask(question)
    assert gold in answer.text and answer.citations


@pytest.fixture(scope="module")
def campaign(seed_index_dir: Path, seed_knowledge: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory):
    """One copy of the seeds index that every bad file is thrown at (each must leave it as it was)."""
    path = tmp_path_factory.mktemp("bad-input") / "index"
    shutil.copytree(seed_index_dir, path)
    knowledge = KnowledgeBase.open(
        Settings(index_dir=path), embeddings=seed_knowledge.index.embeddings, build_if_missing=False
    )
    return Assistant(knowledge), index_files(path)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-files")
    written = {}
    for case, name, make, _, _ in BAD_FILES:
        (folder / case).mkdir()
        written[case] = folder / case / name
        written[case].write_bytes(make())
    return written


@pytest.mark.parametrize(("case", "name", "make", "code", "words"), BAD_FILES, ids=BAD_IDS)
def test_bad_file_is_refused_through_every_entry_point(campaign, bad_files, case, name, make, code, words) -> None:
    assistant, before = campaign
    knowledge = assistant.knowledge
    path = bad_files[case]

    report = knowledge.add_paths([path])  # what `rag add` and the default-corpus build use
    assert [error.code for error in report.errors] == [code]
    assert str(path) in str(report.errors[0])
    assert not report.update.added

    upload = add_upload(knowledge, path, name)  # the chat page's knowledge-base tab
    assert not upload.ok and words in upload.message, upload.message
    assert not any((knowledge.index.path / UPLOADS_DIR).glob("*")), "a refused upload left a copy behind"

    if path.stat().st_size <= knowledge.settings.max_file_bytes:
        with pytest.raises(IngestError) as caught:  # the library call, bytes already in memory
            load_bytes(path.read_bytes(), name)
        assert caught.value.code == code and words in caught.value.message_zh

    assert index_files(knowledge.index.path) == before
    assert_still_answers(assistant)


def test_cli_add_of_only_bad_files_fails_and_names_each(campaign, bad_files, capsys: pytest.CaptureFixture) -> None:
    assistant, before = campaign
    status = main(["add", *map(str, bad_files.values()), "--index-dir", str(assistant.knowledge.index.path)])
    err = capsys.readouterr().err
    assert status == 1
    for path in bad_files.values():
        assert str(path) in err
    assert "over the 20 MB limit" in err and "zip bomb" in err and "OCR found no text" in err
    assert "password-protected" in err and "page OCR limit" in err and "image too large" in err
    assert index_files(assistant.knowledge.index.path) == before
    assert_still_answers(assistant)


# ---------------------------------------------------------------------------- awkward but valid files
# Each carries one fact found nowhere else, so the answer shows the file was read correctly.
TRADITIONAL_FACT = ("松花江大橋今年通車，全長3.6公里，由哈爾濱市交通局建設。", "松花江大橋全長多少公里？", "3.6公里")
SIMPLIFIED_FACT = ("青山镇今年新建一座图书馆，馆藏图书三万册。", "青山镇图书馆馆藏图书多少册？", "三万册")
AWKWARD_FILES: list[tuple[str, str, bytes, tuple[str, str, str]]] = [
    ("gb18030", "gb.txt", ("青山镇新闻\n\n" + SIMPLIFIED_FACT[0]).encode("gb18030"), SIMPLIFIED_FACT),
    ("big5", "big5.txt", ("松花江新聞\n\n" + TRADITIONAL_FACT[0]).encode("big5"), TRADITIONAL_FACT),
    ("utf-16-le-bom", "le.txt", codecs.BOM_UTF16_LE + ("標題\n\n" + TRADITIONAL_FACT[0]).encode("utf-16-le"), TRADITIONAL_FACT),  # noqa: E501
    ("utf-16-be-bom", "be.md", codecs.BOM_UTF16_BE + ("标题\n\n" + SIMPLIFIED_FACT[0]).encode("utf-16-be"), SIMPLIFIED_FACT),  # noqa: E501
    ("utf-8-bom", "bom.txt", ("标题\n\n" + SIMPLIFIED_FACT[0]).encode("utf-8-sig"), SIMPLIFIED_FACT),
    (
        "mixed-line-endings",
        "mixed.txt",
        # CRLF, CR alone and LF, with a word split across the break
        f"青山镇新闻\r\n\r\n记者 王明\r\r{SIMPLIFIED_FACT[0][:8]}\n\n{SIMPLIFIED_FACT[0][8:]}\r\n".encode(),
        SIMPLIFIED_FACT,
    ),
    (
        "html-full-of-scripts",
        "news.html",
        (
            "<html><head><title>青山镇新闻</title><script>var fact='馆藏图书九万册';</script>"
            "<style>.x{}</style></head><body><script>document.write('九万册')</script>"
            f"<p>{SIMPLIFIED_FACT[0]}</p><noscript>九万册</noscript><script src='evil.js'></script></body></html>"
        ).encode("gb18030").replace(b"<head>", b'<head><meta charset="gb18030">'),
        SIMPLIFIED_FACT,
    ),
]


@pytest.mark.parametrize(("case", "name", "data", "fact"), AWKWARD_FILES, ids=[c[0] for c in AWKWARD_FILES])
def test_awkward_valid_file_is_indexed_exactly_and_answerable(
    writable_index_dir: Path, seed_knowledge: KnowledgeBase, tmp_path: Path, case, name, data, fact
) -> None:
    knowledge = KnowledgeBase.open(
        Settings(index_dir=writable_index_dir), embeddings=seed_knowledge.index.embeddings, build_if_missing=False
    )
    path = tmp_path / name
    path.write_bytes(data)
    report = knowledge.add_paths([path])
    assert not report.errors and len(report.update.added) == 1
    doc_id = report.update.added[0]
    sentence, question, gold = fact
    answer = Assistant(knowledge).ask(question)
    assert gold in answer.text, answer.text
    assert answer.citations[0].chunk.doc_id == doc_id
    stored = knowledge.index.snapshot.documents[doc_id].document.text
    for chunk in (c for c in knowledge.index.snapshot.chunks if c.doc_id == doc_id):
        assert stored[chunk.start : chunk.end] == chunk.text  # offsets index the decoded file
    assert "九万册" not in stored and "evil.js" not in stored  # script, style and noscript text is not indexed
    assert_still_answers(Assistant(knowledge))


# ---------------------------------------------------------------------------- file names
HOSTILE_NAMES = [
    "../../etc/passwd.txt",
    "/etc/cron.d/evil.txt",
    "..\\..\\Windows\\System32\\evil.txt",
    "C:\\Users\\me\\新闻.txt",
    "新闻\u202etxt.exe.md",  # right-to-left override hides the real extension
    "📰 今日头条.txt",
    "ｎｅｗｓ\u3000报道.txt",  # full-width letters and space
    "..txt",
    ".hidden.txt",
    "CON.txt",
    "a\x00b.txt",
    "line\nbreak\r.txt",
    "x" * 300 + ".txt",
    "曲\u0301折\u200d名字.txt",  # combining mark and zero-width joiner
]
_SAFE_STORED = re.compile(r"^[\w\-]{1,60}_[0-9a-f]{8}\.(txt|md)$")


def test_hostile_file_names_are_stored_safely_under_the_index(writable_index_dir: Path, tmp_path: Path) -> None:
    knowledge = KnowledgeBase.open(Settings(index_dir=writable_index_dir), build_if_missing=False)
    uploads = (writable_index_dir / UPLOADS_DIR).resolve()
    for n, name in enumerate(HOSTILE_NAMES):
        incoming = tmp_path / f"incoming-{n}.txt"
        incoming.write_text(f"第{n}号快讯\n\n宁远县第{n}号水库今年蓄水{n + 100}万立方米。", encoding="utf-8")
        result = add_upload(knowledge, incoming, name)
        assert result.ok, (name, result.message)
        stored = Path(knowledge.index.snapshot.documents[result.doc_id].document.source).name
        assert _SAFE_STORED.match(stored), (name, stored)
        assert not any(unicodedata.category(ch).startswith("C") for ch in stored), (name, stored)
        assert (uploads / stored).resolve().parent == uploads
        hits = knowledge.search(f"宁远县第{n}号水库蓄水多少？", k=1)
        assert hits[0].chunk.doc_id == result.doc_id
    assert sorted(p.parent for p in uploads.iterdir()) == [uploads] * len(HOSTILE_NAMES)
    assert not list(tmp_path.parent.glob("etc")) and not (writable_index_dir.parent / "etc").exists()


# ---------------------------------------------------------------------------- questions and parameters
BAD_QUESTIONS = [
    ("empty", "", "不能为空"),
    ("whitespace", " \t\n\u3000 ", "不能为空"),
    ("10000-chars", "黑龙江" * 3334, "问题太长"),
    ("emoji-only", "😀🎉🔥👍", "没有可检索的文字"),
    ("invisible-only", "\u200b\u200d\ufeff", "没有可检索的文字"),
    ("punctuation-only", "？？？！", "没有可检索的文字"),
]
BAD_PARAMETERS = [
    ("k-zero", {"k": 0}, "1 到 100"),
    ("k-negative", {"k": -3}, "1 到 100"),
    ("k-huge", {"k": 10**9}, "1 到 100"),
    ("k-fraction", {"k": 2.5}, "1 到 100"),
    ("k-text", {"k": "五"}, "1 到 100"),
    ("mode-unknown", {"mode": "telepathy"}, "mode"),
]


@pytest.mark.parametrize(("case", "question", "words"), BAD_QUESTIONS, ids=[c[0] for c in BAD_QUESTIONS])
def test_bad_question_is_a_clear_error_everywhere(seed_assistant: Assistant, case, question, words) -> None:
    for call in (
        lambda: seed_assistant.ask(question),
        lambda: list(seed_assistant.stream(question)),
        lambda: seed_assistant.knowledge.search(question),
    ):
        with pytest.raises(InputError, match=words):
            call()


@pytest.mark.parametrize(("case", "overrides", "words"), BAD_PARAMETERS, ids=[c[0] for c in BAD_PARAMETERS])
def test_bad_parameter_is_a_clear_error(seed_assistant: Assistant, case, overrides, words) -> None:
    with pytest.raises(InputError, match=words):
        seed_assistant.ask(CONTROL_QUESTION[0], **overrides)
    if "k" in overrides:
        with pytest.raises(InputError, match=words):
            seed_assistant.knowledge.search(CONTROL_QUESTION[0], k=overrides["k"])


def test_questions_at_the_edges_are_answered(seed_assistant: Assistant) -> None:
    question, gold = CONTROL_QUESTION
    assert gold in seed_assistant.ask(f"😀{question}🎉").text
    padded = question + "请详细说明。" * ((1000 - len(question)) // 6)
    assert len(padded) <= 1000 and seed_assistant.ask(padded).text  # long but within the limit
    assert len(seed_assistant.ask(question, k=100).passages) <= 100


def test_cli_reports_bad_questions_and_k(seed_index_dir: Path, capsys: pytest.CaptureFixture) -> None:
    for argv, words in (
        (["ask", "😀🎉"], "没有可检索的文字"),
        (["search", " "], "不能为空"),
        (["search", "黑龙江" * 3334], "问题太长"),
        (["search", "黑龙江", "-k", "0"], "1 到 100"),
        (["ask", "黑龙江", "-k", "1000"], "1 到 100"),
    ):
        try:
            status = main([*argv, "--index-dir", str(seed_index_dir)])
        except SystemExit as exit:  # a bad setting is a usage error, like any bad flag
            status = exit.code
        err = capsys.readouterr().err
        assert status != 0 and words in err and "Traceback" not in err, (argv, err)


# ---------------------------------------------------------------------------- whole-index updates
def test_rebuilding_from_unreadable_files_keeps_the_index(
    campaign, bad_files, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assistant, before = campaign
    path = assistant.knowledge.index.path
    empty = tmp_path / "empty-corpus"
    empty.mkdir()
    for corpus in ([empty], [bad_files["png-renamed-txt"], bad_files["zip-bomb-docx"]], [tmp_path / "missing"]):
        assert main(["index", *map(str, corpus), "--index-dir", str(path)]) == 1
        assert "is unchanged" in capsys.readouterr().err
    knowledge = assistant.knowledge.with_settings(assistant.knowledge.settings.with_overrides(corpus=[empty]))
    with pytest.raises(NothingToIndexError):
        rebuild(knowledge)  # the page's "rebuild" button with an emptied corpus folder
    assert index_files(path) == before
    assert_still_answers(assistant)
