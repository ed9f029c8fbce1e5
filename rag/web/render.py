"""HTML of the conversation: answers whose ``[n]`` markers link to a sources panel under the answer.

Every piece of text that comes from a document, a question or a model is passed through
:func:`html.escape` before it becomes markup, so a document containing ``<script>`` or
``<img onerror=…>`` shows as text. Element ids carry the turn number (``src-<turn>-<n>``) so
that the markers of an earlier answer still open that answer's own sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from ..types import Answer, Chunk, Hit
from .scan import crop_html

_MARKER = re.compile(r"\[(\d+)\]")


@dataclass
class Turn:
    """One question of the conversation and what the page shows for it."""

    question: str
    answer: Answer | None = None  # None while the answer is still streaming
    partial: str = ""  # text streamed so far
    error: str | None = None  # a friendly message when no answer could be made at all
    names: dict[str, str] = field(default_factory=dict)  # doc id -> the name its file is shown under


def source_id(turn: int, n: int) -> str:
    return f"src-{turn}-{n}"


def location(chunk: Chunk, name: str | None = None) -> str:
    """File name (``name``, else the source's) and line numbers, e.g. ``002_dd50.txt · 第 3–9 行``."""
    if chunk.page:  # a paged source: its page counts for more than lines of recognised text
        return f"{name or Path(chunk.source).name} · 第 {chunk.page} 页"
    lines = (
        f"第 {chunk.line_start} 行"
        if chunk.line_start == chunk.line_end
        else f"第 {chunk.line_start}–{chunk.line_end} 行"
    )
    return f"{name or Path(chunk.source).name} · {lines}"


def passage_html(chunk: Chunk, quote: str = "") -> str:
    """The passage text, escaped, with the supporting sentence wrapped in ``<mark>``."""
    text = chunk.clean
    at = text.find(quote) if quote else -1
    if at < 0:
        return escape(text)
    end = at + len(quote)
    return f"{escape(text[:at])}<mark>{escape(text[at:end])}</mark>{escape(text[end:])}"


def answer_text_html(answer: Answer, turn: int) -> str:
    """The answer text, escaped, with each ``[n]`` of a known citation turned into a link."""
    cited = {citation.n for citation in answer.citations}

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in cited:
            return match.group(0)
        return f'<a class="rag-cite" href="#{source_id(turn, n)}" data-n="{n}">[{n}]</a>'

    return _MARKER.sub(link, escape(answer.text))


def _source_html(
    element_id: str, label: str, chunk: Chunk, quote: str, names: dict[str, str], span: tuple[int, int] | None = None
) -> str:
    headline = escape(chunk.title) if chunk.title else "（无标题）"
    quote_line = f'<div class="rag-quote">“{escape(quote)}”</div>' if quote else ""
    scan = crop_html(chunk, *span) if span is not None and chunk.boxes else ""  # a scanned page: where it is printed
    return (
        f'<details class="rag-source" id="{element_id}">'
        f'<summary><span class="rag-n">{label}</span> <span class="rag-headline">{headline}</span>'
        f' <span class="rag-loc">{escape(location(chunk, names.get(chunk.doc_id)))}</span>{quote_line}</summary>'
        f'{scan}<div class="rag-passage">{passage_html(chunk, quote)}</div></details>'
    )


def sources_html(answer: Answer, turn: int, names: dict[str, str] | None = None) -> str:
    """The cited passages, then (collapsed) the other retrieved passages."""
    parts = []
    if answer.citations:
        items = "".join(
            _source_html(source_id(turn, c.n), f"[{c.n}]", c.chunk, c.quote, names or {}, (c.quote_start, c.quote_end))
            for c in answer.citations
        )
        parts.append(f'<div class="rag-sources"><div class="rag-sources-title">来源</div>{items}</div>')
    cited_chunks = {c.chunk.id for c in answer.citations}
    others: list[Hit] = [hit for hit in answer.passages if hit.chunk.id not in cited_chunks]
    if others:
        title = "检索到的段落" if not answer.citations else "其他检索到的段落"
        items = "".join(
            _source_html(f"psg-{turn}-{hit.rank}", f"#{hit.rank}", hit.chunk, "", names or {}) for hit in others
        )
        parts.append(f'<details class="rag-others"><summary>{title}（{len(others)}）</summary>{items}</details>')
    return "".join(parts)


def generator_label(name: str) -> str:
    """``extractive``, ``rules``, ``openai`` and their fallbacks as the page says them."""
    if name.startswith("openai"):
        return "大模型"
    label = {"extractive": "抽取式", "rules": "规则抽取式", "selector": "句子选择式"}.get(name.split(" ")[0], name)
    return f"{label}（备用）" if "(" in name else label


def _footer_html(answer: Answer) -> str:
    seconds = answer.timings.get("total", sum(answer.timings.values()))
    return f'<div class="rag-meta">{escape(generator_label(answer.generator))} · 用时 {seconds:.2f} 秒</div>'


def answer_html(answer: Answer, turn: int, names: dict[str, str] | None = None) -> str:
    """A finished answer: text (or refusal), notes, the rewritten question on demand, sources."""
    parts = []
    if answer.note:
        parts.append(f'<div class="rag-note">⚠ {escape(answer.note)}</div>')
    if answer.refused:
        parts.append(
            '<div class="rag-answer rag-refusal"><span class="rag-badge">未找到依据</span>'
            f'<span class="rag-answer-text">{escape(answer.text)}</span></div>'
        )
    else:
        parts.append(
            f'<div class="rag-answer"><span class="rag-answer-text">{answer_text_html(answer, turn)}</span></div>'
        )
    if answer.rewritten_question and answer.rewritten_question.strip() != answer.question.strip():
        parts.append(
            '<details class="rag-rewrite"><summary>查看改写后的问题</summary>'
            f"<div>{escape(answer.rewritten_question)}</div></details>"
        )
    parts.append(sources_html(answer, turn, names))
    parts.append(_footer_html(answer))
    return "".join(parts)


def turn_html(turn: Turn, number: int) -> str:
    if turn.answer is not None:
        reply = answer_html(turn.answer, number, turn.names)
    elif turn.error is not None:
        reply = f'<div class="rag-error">{escape(turn.error)}</div>'
    elif turn.partial:
        reply = f'<div class="rag-answer rag-streaming"><span class="rag-answer-text">{escape(turn.partial)}</span><span class="rag-cursor">▍</span></div>'
    else:
        reply = '<div class="rag-answer rag-streaming rag-waiting">正在检索资料…</div>'
    return (
        f'<div class="rag-turn" id="turn-{number}"><div class="rag-user">{escape(turn.question)}</div>'
        f'<div class="rag-bot">{reply}</div></div>'
    )


def conversation_html(turns: list[Turn]) -> str:
    if not turns:
        return '<div class="rag-empty">请在下方输入问题，或点击一个示例问题。回答中的 [1]、[2] 可点击查看出处。</div>'
    return '<div class="rag-chat">' + "".join(turn_html(turn, i) for i, turn in enumerate(turns)) + "</div>"


#: Runs once when the conversation component loads: a click on ``[n]`` opens and shows its source.
CLICK_JS = """
element.addEventListener('click', (event) => {
  const link = event.target.closest('a.rag-cite');
  if (!link) return;
  event.preventDefault();
  const target = element.querySelector(link.getAttribute('href'));
  if (!target) return;
  target.open = true;
  target.scrollIntoView({behavior: 'smooth', block: 'center'});
  target.classList.remove('rag-flash');
  void target.offsetWidth;
  target.classList.add('rag-flash');
});
"""

#: Scoped to the conversation component (gr.HTML ``css_template``).
CSS = """
.rag-empty { color: var(--body-text-color-subdued); padding: 2em 1em; text-align: center; }
.rag-turn { margin: 0 0 1.2em 0; }
.rag-user { margin-left: auto; max-width: 85%; width: fit-content; padding: .6em .9em; border-radius: 12px;
  background: var(--color-accent-soft); white-space: pre-wrap; }
.rag-bot { margin-top: .5em; max-width: 95%; padding: .7em .9em; border-radius: 12px;
  background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); }
.rag-answer-text { white-space: pre-wrap; }
.rag-answer { line-height: 1.7; }
.rag-cite { font-weight: 600; text-decoration: none; color: var(--color-accent); padding: 0 1px; }
.rag-cite:hover { text-decoration: underline; }
.rag-refusal { color: var(--body-text-color-subdued); }
.rag-badge { display: inline-block; font-size: .8em; padding: 0 .5em; margin-right: .5em; border-radius: 6px;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary); }
.rag-waiting { color: var(--body-text-color-subdued); }
.rag-cursor { animation: rag-blink 1s steps(2) infinite; }
@keyframes rag-blink { 50% { opacity: 0; } }
.rag-note { font-size: .9em; margin-bottom: .4em; padding: .3em .6em; border-radius: 6px;
  background: rgba(255, 180, 0, .15); }
.rag-error { padding: .3em .6em; border-radius: 6px; background: rgba(255, 180, 0, .15); }
.rag-rewrite, .rag-others { font-size: .9em; margin-top: .5em; color: var(--body-text-color-subdued); }
.rag-rewrite summary, .rag-others summary { cursor: pointer; }
.rag-sources { margin-top: .7em; border-top: 1px dashed var(--border-color-primary); padding-top: .4em; }
.rag-sources-title { font-size: .85em; color: var(--body-text-color-subdued); margin-bottom: .2em; }
.rag-source { margin: .3em 0; padding: .3em .5em; border-radius: 8px; border: 1px solid transparent; }
.rag-source[open] { border-color: var(--border-color-primary); background: var(--background-fill-primary); }
.rag-source summary { cursor: pointer; }
.rag-n { font-weight: 600; color: var(--color-accent); }
.rag-headline { font-weight: 600; }
.rag-loc { font-size: .85em; color: var(--body-text-color-subdued); }
.rag-quote { font-size: .9em; margin: .2em 0 0 1.2em; color: var(--body-text-color-subdued); }
.rag-passage { white-space: pre-wrap; margin-top: .4em; line-height: 1.7; font-size: .95em; }
.rag-passage mark { background: rgba(255, 213, 0, .45); color: inherit; padding: 0 1px; }
.rag-meta { margin-top: .5em; font-size: .8em; color: var(--body-text-color-subdued); }
.rag-flash { animation: rag-flash 1.5s ease-out; }
@keyframes rag-flash { from { background: rgba(255, 213, 0, .5); } }
"""
