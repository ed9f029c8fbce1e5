"""The OpenAI-compatible generator against a local chat-completions server: streamed answers, their
citations and script. Failures of the endpoint (down, slow, errors, garbage, endless) are in test_faults.py."""

from __future__ import annotations

import pytest

from rag import Answer, Assistant
from rag.answer import REFUSAL

QUESTION = "黑龙江的边境线有多长？"


@pytest.fixture()
def llm(chat_server) -> dict:
    return {"generator": "openai", "openai_base_url": chat_server.base_url, "openai_api_key": "sk-test"}


def test_streamed_answer_with_checked_citations(seed_assistant: Assistant, chat_server, llm: dict) -> None:
    chat_server.reply = "黑龙江拥有2981公里的漫长边境线。[1]"
    items = list(seed_assistant.stream(QUESTION, **llm, openai_model="qwen-test"))
    *deltas, answer = items
    assert len(deltas) > 3 and "".join(deltas) == chat_server.reply  # arrived in pieces
    assert isinstance(answer, Answer) and answer.generator == "openai" and answer.note is None
    assert answer.text == "黑龙江拥有2981公里的漫长边境线。[1]" and not answer.refused
    assert [c.n for c in answer.citations] == [1] and "2981" in answer.citations[0].quote
    request = chat_server.requests[-1]
    assert request["stream"] is True and request["model"] == "qwen-test"
    system, user = request["messages"][0]["content"], request["messages"][1]["content"]
    assert "不得使用你自己的知识" in system and "[n]" in system
    assert QUESTION in user and "<资料>" in user and "黑龍江擁有2981公里" in user  # passages as in the source
    assert "阅读模型" in user and "“2981公里”" in user  # the reader's span is a hint


def test_answer_contradicting_the_reader_is_flagged(seed_assistant: Assistant, chat_server, llm: dict) -> None:
    chat_server.reply = "黑龙江国家一类口岸众多，口岸通关能力持续提升。[1]"  # cited, but not the asked length
    answer = seed_assistant.ask(QUESTION, **llm)
    assert answer.generator == "openai" and not answer.refused
    assert answer.note and "2981公里" in answer.note and "不一致" in answer.note and "[1]" in answer.note
    chat_server.reply = "根据现有资料无法回答该问题。"
    answer = seed_assistant.ask(QUESTION, **llm)
    assert answer.refused and "未作答" in answer.note and "2981公里" in answer.note


def test_non_streaming_ask(seed_assistant: Assistant, chat_server, llm: dict) -> None:
    chat_server.reply = "2981公里。黑龙江拥有2981公里的漫长边境线。[1]"
    answer = seed_assistant.ask(QUESTION, **llm)
    assert answer.generator == "openai" and "2981公里" in answer.text and answer.citations


def test_model_refusal_becomes_the_fixed_refusal(seed_assistant: Assistant, chat_server, llm: dict) -> None:
    chat_server.reply = "抱歉，根据现有资料无法回答该问题。"
    answer = seed_assistant.ask("哈伊高铁全长多少公里？", **llm)
    assert answer.refused and answer.text == REFUSAL and not answer.citations


def test_uncited_outside_knowledge_is_refused(seed_assistant: Assistant, chat_server, llm: dict) -> None:
    chat_server.reply = "哈伊高铁全长约300公里，设计时速350公里，预计2026年建成通车。"  # not in the passages
    answer = seed_assistant.ask("哈伊高铁全长多少公里？", **llm)
    assert answer.refused and answer.text == REFUSAL


def test_traditional_question_gets_traditional_llm_answer(seed_assistant: Assistant, chat_server, llm: dict) -> None:
    chat_server.reply = "黑龙江拥有2981公里的漫长边境线。[1]"  # the model answered in simplified
    answer = seed_assistant.ask("黑龍江的邊境線有多長？", **llm)
    assert answer.text == "黑龍江擁有2981公里的漫長邊境線。[1]"


def test_missing_endpoint_falls_back_with_a_clear_note(seed_assistant: Assistant) -> None:
    if seed_assistant.settings.openai_base_url or seed_assistant.settings.openai_api_key:
        pytest.skip("an endpoint is configured in this environment")
    answer = seed_assistant.ask(QUESTION, generator="openai")
    assert answer.generator == "extractive (fallback)" and "OPENAI_BASE_URL" in answer.note
    assert "2981公里" in answer.text



def test_two_hop_question_gives_the_llm_both_hops_passages(seed_assistant: Assistant, chat_server, llm: dict) -> None:
    chat_server.reply = "哈尔滨新区高新技术企业占全省的26.3%。[2]"
    answer = seed_assistant.ask("俄速通总部所在城市的那个国家级新区，高新技术企业数量占全省的比重是多少？", **llm)
    assert answer.generator == "openai" and not answer.refused
    user = chat_server.requests[-1]["messages"][1]["content"]
    assert "俄速通" in user and "26.3%" in user  # the bridge's passage and the answer's, in one prompt
    [found] = answer.citations
    assert found.n == 2 and "26.3%" in found.quote and "俄速通" in answer.passages[0].chunk.clean
