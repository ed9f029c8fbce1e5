"""Checks of what users type, with messages in Chinese (they are shown on the page as they are)."""

from __future__ import annotations

import operator
import unicodedata
from typing import Any

from pydantic import ValidationError

from .settings import MAX_K, Settings


class InputError(ValueError):
    """A question or parameter the assistant cannot work with; ``str(error)`` is for the user."""


def check_question(question: object, max_chars: int) -> str:
    """The question stripped of surrounding whitespace, or :class:`InputError` saying what is wrong."""
    if not isinstance(question, str) or not question.strip():
        raise InputError("问题不能为空，请输入一个问题。")
    question = question.strip()
    if len(question) > max_chars:
        raise InputError(f"问题太长（{len(question)} 字），请精简到 {max_chars} 字以内。")
    # Emoji, symbols or invisible characters alone give retrieval nothing to match.
    if not any(unicodedata.category(ch)[0] in "LN" for ch in question):
        raise InputError("问题中没有可检索的文字（只有符号或表情），请用文字提问。")
    return question


def check_k(k: object) -> int:
    """A valid number of passages to retrieve, or :class:`InputError`."""
    problem = InputError(f"检索段落数 k 必须是 1 到 {MAX_K} 之间的整数（收到 {k!r}）。")
    if isinstance(k, float) and k.is_integer():  # a web slider sends 5.0
        k = int(k)
    if isinstance(k, bool):
        raise problem
    try:
        k = operator.index(k)  # int, numpy integers; not 2.5 or "5"
    except TypeError:
        raise problem from None
    if not 1 <= k <= MAX_K:
        raise problem
    return k


def apply_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """``settings`` with per-call ``overrides``; a bad value is an :class:`InputError` naming the field."""
    if overrides.get("k") is not None:
        overrides = {**overrides, "k": check_k(overrides["k"])}
    try:
        return settings.with_overrides(**overrides) if overrides else settings
    except ValidationError as error:
        problems = "；".join(f"{'.'.join(map(str, e['loc'])) or '设置'}（{e['msg']}）" for e in error.errors())
        raise InputError(f"参数无效：{problems}") from error
