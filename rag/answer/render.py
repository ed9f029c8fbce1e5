"""Readable forms of an :class:`~rag.types.Answer`: Markdown, HTML (Jupyter) and plain terminal text.

Citations become a numbered source list: title, file and lines, and the supporting quote as the
source has it.
"""

from __future__ import annotations

from html import escape

from ..types import Answer, Citation


def _where(citation: Citation) -> str:
    c = citation.chunk
    if c.page:  # a paged source (PDF, page image)
        return f"{c.source}，第{c.page}页"
    lines = f"第{c.line_start}行" if c.line_start == c.line_end else f"第{c.line_start}–{c.line_end}行"
    return f"{c.source}，{lines}"


def _notes(answer: Answer) -> list[str]:
    notes = []
    if answer.rewritten_question:
        notes.append(f"理解为：{answer.rewritten_question}")
    if answer.note:
        notes.append(answer.note)
    return notes


def to_markdown(answer: Answer) -> str:
    parts = [answer.text]
    parts += [f"*{note}*" for note in _notes(answer)]
    if answer.citations:
        parts.append("**来源**")
        for citation in answer.citations:
            title = citation.chunk.title or "（无标题）"
            quote = citation.quote.replace("\n", " ")
            parts.append(f"{citation.n}. **{title}** — {_where(citation)}\n   > {quote}")
    return "\n\n".join(parts)


def to_html(answer: Answer) -> str:
    parts = [f"<p>{escape(answer.text)}</p>"]
    parts += [f"<p><em>{escape(note)}</em></p>" for note in _notes(answer)]
    if answer.citations:
        items = []
        for citation in answer.citations:
            title = escape(citation.chunk.title or "（无标题）")
            scan = ""
            if citation.chunk.boxes:  # a scanned page: the cited lines on the page image
                from ..web.scan import crop_html

                scan = crop_html(citation.chunk, citation.quote_start, citation.quote_end)
            items.append(
                f'<li value="{citation.n}"><strong>{title}</strong> — {escape(_where(citation))}'
                f'<blockquote style="margin:0.2em 0 0.5em 1em;color:#555">{escape(citation.quote)}</blockquote>{scan}</li>'
            )
        parts.append("<p><strong>来源</strong></p><ol>" + "".join(items) + "</ol>")
    return '<div class="rag-answer">' + "".join(parts) + "</div>"


def to_text(answer: Answer) -> str:
    """For the terminal: the answer, notes, then ``[n] title (file, lines)`` and the quote."""
    lines = [answer.text]
    lines += [f"（{note}）" for note in _notes(answer)]
    for citation in answer.citations:
        lines.append(f"[{citation.n}] {citation.chunk.title or '（无标题）'}（{_where(citation)}）")
        lines.append(f"    {citation.quote}")
    return "\n".join(lines)
