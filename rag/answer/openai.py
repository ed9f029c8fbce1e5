"""Answers from any OpenAI-compatible chat endpoint (DeepSeek, DashScope, vLLM, Ollama, llama.cpp …).

The caller falls back to the extractive answer when this raises :class:`LLMError`; the message says why
in Chinese so it can be shown to the user.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI

from ..settings import Settings
from ..types import Hit
from .prompts import answer_prompt, numbered_context, rewrite_prompt

log = logging.getLogger(__name__)


class LLMError(RuntimeError):
    """The model could not be reached or answered with something unusable."""


def chat_model(settings: Settings, *, streaming: bool = False) -> ChatOpenAI:
    if not settings.openai_base_url and not settings.openai_api_key:
        raise LLMError("未配置大模型接口（请设置 OPENAI_BASE_URL 和 OPENAI_API_KEY）")
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
    return ChatOpenAI(
        model=settings.openai_model,
        base_url=settings.openai_base_url,
        api_key=key,
        temperature=settings.llm_temperature,
        timeout=settings.llm_timeout,
        max_retries=0,  # a local server that fails once usually fails again; fall back instead of waiting
        streaming=streaming,
    )


def _describe(error: Exception) -> str:
    name = type(error).__name__
    if "Timeout" in name:
        return "大模型接口超时"
    if "Connection" in name:
        return "无法连接大模型接口"
    status = getattr(error, "status_code", None)
    if status:
        return f"大模型接口返回错误（HTTP {status}）"
    return f"大模型接口返回了无法解析的结果（{name}）"


def answer_messages(question: str, hits: list[Hit]) -> list[BaseMessage]:
    return answer_prompt().format_messages(context=numbered_context(hits), question=question)


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    raise LLMError("大模型接口返回了无法解析的结果")


def stream_answer(question: str, hits: list[Hit], settings: Settings) -> Iterator[str]:
    """Text deltas of the model's answer (markers included, unchecked). Raises :class:`LLMError`."""
    model = chat_model(settings, streaming=True)
    produced = False
    try:
        for chunk in model.stream(answer_messages(question, hits)):
            delta = _text(chunk.content)
            if delta:
                produced = True
                yield delta
    except LLMError:
        raise
    except Exception as error:  # any transport or protocol failure: the caller falls back
        log.warning("LLM call failed: %r", error)
        raise LLMError(_describe(error)) from error
    if not produced:
        raise LLMError("大模型接口返回了空回答")


def complete(prompt: list[BaseMessage] | str, settings: Settings) -> str:
    """One non-streaming completion. Raises :class:`LLMError`."""
    model = chat_model(settings)
    try:
        text = _text(model.invoke(prompt).content).strip()
    except LLMError:
        raise
    except Exception as error:
        log.warning("LLM call failed: %r", error)
        raise LLMError(_describe(error)) from error
    if not text:
        raise LLMError("大模型接口返回了空回答")
    return text


def rewrite_question(question: str, history: str, settings: Settings) -> str:
    """The follow-up as a standalone question, by the rewrite prompt. Raises :class:`LLMError`."""
    text = complete(rewrite_prompt().format(history=history, question=question), settings)
    return text.splitlines()[0].strip().strip('“”"')
