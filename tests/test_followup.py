"""Follow-up questions are rewritten into standalone ones before retrieval (heuristic and LLM)."""

from __future__ import annotations

import pytest

from rag import Assistant
from rag.answer.followup import needs_context, standalone
from rag.answer.history import Turn, turns


@pytest.mark.parametrize(
    ("previous", "answer", "followup", "expected"),
    [
        ("李强在北京调研时去了哪些企业？", "", "那他后来去了哪里？", "李强后来去了哪里？"),
        (
            "哈尔滨新区是什么时候获批设立的？",
            "2015年12月。[1]",
            "它有多少户高新技术企业？",
            "哈尔滨新区有多少户高新技术企业？",
        ),
        (
            "广东省工信厅厅长是谁？",
            "涂高坤：广东省工信厅厅长涂高坤表示……[1]",
            "他提到了哪些未来产业？",
            "涂高坤提到了哪些未来产业？",
        ),
        ("广东省工信厅厅长是谁？", "", "交通运输部应急办主任呢？", "交通运输部应急办主任是谁？"),
        ("東盟已連續多少年是廣西最大的貿易夥伴？", "", "那南寧呢？", "东盟已连续多少年是南宁最大的贸易伙伴？"),
        (
            "杭州亚运会的“复兴号”是哪家公司生产的？",
            "中车长春轨道客车股份有限公司：这组列车,就产自中车长春轨道客车股份有限公司。[1]",
            "这家公司的总部在哪里？",
            "中车长春轨道客车股份有限公司的总部在哪里？",
        ),
    ],
)
def test_heuristic_rewrite(previous: str, answer: str, followup: str, expected: str) -> None:
    assert standalone(followup, [Turn(previous, answer)]) == expected


def test_bare_followup_carries_the_previous_topic() -> None:
    rewritten = standalone("具体是多少？", [Turn("江西今年计划支持企业参加境内外重点展会吗？")])
    assert rewritten.startswith("江西今年计划支持企业参加境内外重点展会") and rewritten.endswith("具体是多少？")


def test_standalone_questions_are_left_alone() -> None:
    history = [Turn("广西食糖产量是多少？", "527万吨。[1]")]
    for question in ("黑龙江的边境线有多长？", "其他省份的外贸总值是多少？", "广东省工信厅厅长是谁？"):
        assert not needs_context(question)
        assert standalone(question, history) is None
    assert standalone("那他后来去了哪里？", []) is None  # nothing to carry over


def test_context_carries_across_several_turns() -> None:
    history = [Turn("广东省工信厅厅长是谁？", "涂高坤：……[1]"), Turn("他说了什么？", "……[1]")]
    assert standalone("他提到了哪些未来产业？", history) == "涂高坤提到了哪些未来产业？"


def test_history_shapes() -> None:
    messages = [
        {"role": "user", "content": "问题一"},
        {"role": "assistant", "content": "回答一"},
        {"role": "user", "content": [{"type": "text", "text": "问题二"}]},
        {"role": "assistant", "content": None},
    ]
    assert turns(messages) == [Turn("问题一", "回答一"), Turn("问题二", "")]
    assert turns([("问题一", "回答一"), ["问题二", None]]) == [Turn("问题一", "回答一"), Turn("问题二", "")]
    assert turns(None) == []


def test_followup_retrieves_the_right_article(seed_assistant: Assistant) -> None:
    first = seed_assistant.ask("哈尔滨新区改革办主任是谁？")
    assert "高嵩" in first.text
    assert seed_assistant.ask("它目前有多少户高新技术企业？").rewritten_question is None  # no history, no rewrite
    followup = seed_assistant.ask("它目前有多少户高新技术企业？", [(first.question, first.text)])
    assert followup.rewritten_question and "哈尔滨新区" in followup.rewritten_question
    assert "1097户" in followup.text
    assert all("哈尔滨新区" in c.chunk.clean or "哈爾濱新區" in c.chunk.clean for c in followup.citations)
    assert followup.question == "它目前有多少户高新技术企业？"  # the user's words are kept as asked


def test_ellipsis_followup_asks_the_same_about_something_else(seed_assistant: Assistant) -> None:
    first = seed_assistant.ask("哈尔滨新区是什么时候获批设立的？")
    assert "2015年12月" in first.text
    followup = seed_assistant.ask("那中国（黑龙江）自由贸易试验区呢？", [(first.question, first.text)])
    assert followup.rewritten_question == "中国（黑龙江）自由贸易试验区是什么时候获批设立的？"
    assert "2019年8月" in followup.text


def test_llm_rewrite_through_the_rewrite_prompt(seed_assistant: Assistant, chat_server) -> None:
    def reply(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        if "改写后的问题" in prompt:
            assert "哈尔滨新区改革办主任是谁？" in prompt and "那里有多少户高新技术企业？" in prompt
            return "哈尔滨新区有多少户高新技术企业？"
        return "哈尔滨新区目前有1097户高新技术企业。[1]"

    chat_server.reply = reply
    answer = seed_assistant.ask(
        "那里有多少户高新技术企业？",
        [("哈尔滨新区改革办主任是谁？", "高嵩。[1]")],
        generator="openai",
        openai_base_url=chat_server.base_url,
        openai_api_key="test",
    )
    assert answer.rewritten_question == "哈尔滨新区有多少户高新技术企业？"
    assert len(chat_server.requests) == 2 and not chat_server.requests[0].get("stream")
    assert answer.generator == "openai" and "1097" in answer.text


def test_llm_rewrite_failure_falls_back_to_the_heuristic(seed_assistant: Assistant, chat_server) -> None:
    chat_server.mode = "error"
    answer = seed_assistant.ask(
        "它有多少户高新技术企业？",
        [("哈尔滨新区是什么时候获批设立的？", "2015年12月。[1]")],
        generator="openai",
        openai_base_url=chat_server.base_url,
        openai_api_key="test",
    )
    assert answer.rewritten_question == "哈尔滨新区有多少户高新技术企业？"
    assert answer.generator == "extractive (fallback)" and "1097户" in answer.text and answer.note
