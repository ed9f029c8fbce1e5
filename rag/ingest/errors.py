"""Why a file could not be read: a stable code, an English reason for logs and a Chinese message for users."""

from __future__ import annotations

from typing import Literal

IngestProblem = Literal[
    "unsupported_type",
    "unreadable",
    "empty",
    "too_large",
    "binary",
    "bad_encoding",
    "broken_text",
    "no_text",
    "bad_docx",
    "zip_bomb",
    "bad_pdf",
    "pdf_encrypted",
    "bad_image",
    "not_an_image",
    "too_many_pixels",
    "too_many_pages",
    "ocr_no_text",
    "ocr_missing",
    "ocr_timeout",
]

#: What the page says for each problem; ``{…}`` fields come from the error's details.
MESSAGES_ZH: dict[str, str] = {
    "unsupported_type": "不支持的文件类型 {suffix}；支持：{supported}",
    "unreadable": "无法读取文件（{detail}）",
    "empty": "文件是空的",
    "too_large": "文件过大（{size_mb:.1f} MB），上限为 {limit_mb:g} MB",
    "binary": "这不是文本文件（看起来是二进制文件）",
    "bad_encoding": "无法识别文件的文字编码（已尝试 UTF-8、GB18030、Big5）",
    "broken_text": "文件的文字编码有误：按 {encoding} 读取时遇到损坏的字节",
    "no_text": "文件中没有可读的文字",
    "bad_docx": "不是有效的 .docx 文件（文件可能已损坏）",
    "zip_bomb": "文件解压后过大（{size_mb:.0f} MB），已拒绝",
    "bad_pdf": "无法读取这个 PDF 文件（文件可能已损坏）",
    "pdf_encrypted": "PDF 文件有密码保护，无法读取；请先去掉密码再上传",
    "bad_image": "无法读取这张图片（文件可能已损坏或不完整）",
    "not_an_image": "文件扩展名是图片，但内容不是图片（看起来是网页或文本文件）",
    "too_many_pixels": "图片过大（{pixels} 像素），上限为 {limit:g} 百万像素",
    "too_many_pages": "需要文字识别的页数过多（{pages} 页），每个文件上限为 {limit} 页",
    "ocr_no_text": "文字识别（OCR）没有在图片或扫描页中找到文字",
    "ocr_timeout": "第 {page} 页的文字识别超过了每页 {limit:g} 秒的上限，已停止（可调整 RAG_OCR_PAGE_SECONDS）",
    "ocr_missing": "无法识别图片和扫描件中的文字：没有安装文字识别（OCR）组件，请运行 pip install \"rag-news-zh[ocr]\"",
}


class IngestError(Exception):
    """A file that could not be turned into a document; names the file and why."""

    def __init__(self, source: str, code: IngestProblem, reason: str, **details: object) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.code = code
        self.reason = reason
        self.details = details

    @property
    def message_zh(self) -> str:
        return MESSAGES_ZH[self.code].format(**self.details)
