"""Prompt templates, read from the package data ``rag.prompts`` (``prompts/`` in the source tree)."""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

from ..resources import prompt_text as read
from ..types import Hit


def answer_prompt() -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages([("system", read("system")), ("human", read("answer"))])


def rewrite_prompt() -> PromptTemplate:
    return PromptTemplate.from_template(read("rewrite"))


def _data(text: str) -> str:
    # A passage cannot close its own data block and smuggle text outside it.
    return text.replace("<资料>", "＜资料＞").replace("</资料>", "＜/资料＞")


def numbered_context(hits: list[Hit]) -> str:
    """The passages as the model sees them: ``[n]`` with title and source, the text inside data tags."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        header = f"[{n}] 标题：{chunk.title or '（无）'}；来源：{chunk.source}"
        blocks.append(f"{header}\n<资料>\n{_data(chunk.clean)}\n</资料>")
    return "\n\n".join(blocks)
