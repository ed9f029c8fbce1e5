"""The Assistant API: load/ask/stream, per-call overrides, history shapes, script, rendering, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rag import Answer, Assistant, Settings
from rag.answer import REFUSAL
from rag.answer.citations import MARKER
from rag.cli import main
from rag.text import is_traditional, to_traditional
from rag.validation import InputError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("RAG_", "OPENAI_")):
            monkeypatch.delenv(name)


def test_load_opens_the_index_and_answers_with_citations(seed_index_dir: Path) -> None:
    assistant = Assistant.load(Settings(index_dir=seed_index_dir))
    answer = assistant.ask("黑龙江的边境线有多长？")
    assert isinstance(answer, Answer)
    assert not answer.refused and "2981公里" in answer.text
    assert answer.text.startswith("2981公里")  # a number question leads with the number
    assert set(answer.timings) >= {"retrieve", "generate", "total"}
    assert answer.timings["total"] >= answer.timings["retrieve"]
    assert answer.generator == "extractive" and answer.rewritten_question is None
    [citation] = answer.citations
    assert f"[{citation.n}]" in answer.text
    assert citation.chunk is answer.passages[citation.n - 1].chunk
    assert "2981" in citation.quote and citation.quote in citation.chunk.clean


def test_quote_offsets_point_into_the_source_file(seed_assistant: Assistant) -> None:
    for question in (
        "广东省工信厅厅长是谁？",
        "哈尔滨新区是什么时候获批设立的？",
        "東盟已連續多少年是廣西最大的貿易夥伴？",
    ):
        answer = seed_assistant.ask(question)
        assert answer.citations, question
        for citation in answer.citations:
            original = Path(citation.chunk.source).read_text(encoding="utf-8")
            assert citation.chunk.start <= citation.quote_start < citation.quote_end <= citation.chunk.end
            span = original[citation.quote_start : citation.quote_end]
            assert span[0] == citation.quote[0] and span[-1] == citation.quote[-1]
            assert "".join(span.split()).replace("\ufffd", "") == "".join(citation.quote.split())


def test_empty_question_is_a_value_error(seed_assistant: Assistant) -> None:
    for question in ("", "   \n"):
        with pytest.raises(ValueError, match="问题不能为空"):
            seed_assistant.ask(question)


def test_refusal_is_exact_and_cites_nothing(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask("苹果公司的首席执行官是谁？")  # the pages are about other things
    assert answer.refused and answer.text == REFUSAL and answer.citations == []
    assert answer.passages  # what was looked at is still shown
    traditional = seed_assistant.ask("蘋果公司的首席執行官是誰？")
    assert traditional.refused and traditional.text == to_traditional(REFUSAL) == "根據現有資料無法回答該問題。"


def test_stream_yields_text_then_the_answer(seed_assistant: Assistant) -> None:
    items = list(seed_assistant.stream("广东省工信厅厅长是谁？"))
    *deltas, final = items
    assert deltas and all(isinstance(d, str) for d in deltas)
    assert isinstance(final, Answer) and "涂高坤" in final.text
    assert "".join(deltas).strip() == final.text
    assert final.text == seed_assistant.ask("广东省工信厅厅长是谁？").text


def test_overrides_apply_per_call_only(seed_assistant: Assistant) -> None:
    assert len(seed_assistant.ask("黑龙江的边境线有多长？", k=2).passages) == 2
    assert len(seed_assistant.ask("黑龙江的边境线有多长？").passages) == seed_assistant.settings.k
    assert seed_assistant.ask("黑龙江的边境线有多长？", reader_threshold=100.0).refused
    assert seed_assistant.ask("黑龙江的边境线有多长？", generator="rules", refusal_threshold=1.0).refused
    bm25 = seed_assistant.ask("黑龙江的边境线有多长？", mode="bm25")
    assert all(set(hit.scores) == {"bm25"} for hit in bm25.passages)
    heavier = seed_assistant.ask("黑龙江的边境线有多长？", weight_dense=3.0)  # a retrieval knob: its own retriever
    assert heavier.passages and "2981" in heavier.text
    simplified = seed_assistant.ask("黑龍江的邊境線有多長？", answer_script="simplified")
    assert "黑龙江" in simplified.text and not is_traditional(MARKER.sub("", simplified.text))
    with pytest.raises(InputError, match="k"):
        seed_assistant.ask("黑龙江的边境线有多长？", k=0)


def test_traditional_in_traditional_out(seed_assistant: Assistant, seed_qa: list[dict]) -> None:
    traditional = [q for q in seed_qa if q["answer"] and is_traditional(q["question"])][:6]
    assert len(traditional) == 6
    for item in traditional:
        answer = seed_assistant.ask(item["question"])
        text = MARKER.sub("", answer.text)
        assert is_traditional(text), (item["question"], answer.text)
        for citation in answer.citations:  # passages are shown as the source has them
            assert citation.quote in citation.chunk.clean
    simplified = seed_assistant.ask("黑龙江的边境线有多长？")  # the evidence is on the traditional page
    assert "黑龙江" in simplified.text and "黑龍江擁有" in simplified.citations[0].quote


def test_history_in_both_shapes_gives_the_same_rewrite(seed_assistant: Assistant) -> None:
    first = seed_assistant.ask("哈尔滨新区是什么时候获批设立的？")
    messages = [{"role": "user", "content": first.question}, {"role": "assistant", "content": first.text}]
    pairs = [(first.question, first.text)]
    by_messages = seed_assistant.ask("它有多少户高新技术企业？", messages)
    by_pairs = seed_assistant.ask("它有多少户高新技术企业？", pairs)
    assert by_messages.rewritten_question == by_pairs.rewritten_question
    assert "哈尔滨新区" in by_messages.rewritten_question
    assert "1097户" in by_messages.text
    with pytest.raises(TypeError):
        seed_assistant.ask("它有多少户高新技术企业？", ["not a turn"])


def test_answer_to_dict_and_notebook_rendering(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask("小鹏汽车助理总裁是谁？")
    data = json.loads(json.dumps(answer.to_dict(), ensure_ascii=False))
    assert data["text"] == answer.text and data["refused"] is False
    citation = data["citations"][0]
    for key in ("n", "text", "source", "title", "doc_id", "start", "end", "line_start", "line_end", "quote"):
        assert key in citation
    assert set(data["timings"]) >= {"retrieve", "generate", "total"}
    markdown, html = answer._repr_markdown_(), answer._repr_html_()
    assert answer.text in markdown and "来源" in markdown and citation["source"] in markdown
    assert "<ol>" in html and f'<li value="{citation["n"]}">' in html and "胡逸宁" in html


def test_cli_ask_json(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, seed_index_dir: Path) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_index_dir))
    assert main(["ask", "黑龙江的边境线有多长？", "--json", "-k", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "2981公里" in data["text"] and len(data["passages"]) == 3
    assert data["citations"] and data["citations"][0]["quote"]
    assert main(["ask", "黑龙江的边境线有多长？"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2981公里") and "[1]" in out and "seeds/000_" in out
    assert main(["ask", "  "]) == 2


def test_cli_chat_keeps_the_conversation(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, seed_index_dir: Path
) -> None:
    monkeypatch.setenv("RAG_INDEX_DIR", str(seed_index_dir))
    too_long = "边境线" * 400  # past max_question_chars: said, and the conversation goes on
    lines = iter(["哈尔滨新区是什么时候获批设立的？", too_long, "它有多少户高新技术企业？", "/quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat"]) == 0
    out = capsys.readouterr().out
    assert "2015年12月" in out and "1097户" in out
    assert out.count("答：") == 2 and "（问题太长" in out


def test_knowledge_bases_by_name_and_an_empty_one_says_so(tmp_path: Path) -> None:
    from rag.knowledge import EmptyKnowledgeBaseError, KnowledgeBaseNotFoundError
    from rag.registry import create_knowledge_base, delete_knowledge_base, list_knowledge_bases

    settings = Settings(data_dir=tmp_path / "data", index_dir=None)
    create_knowledge_base("港口", settings)
    assert list_knowledge_bases(settings) == ["default", "港口"]
    assistant = Assistant.load(settings, kb="港口")
    assert assistant.knowledge.name == "港口" and assistant.knowledge.index.path == tmp_path / "data" / "港口"
    with pytest.raises(EmptyKnowledgeBaseError, match="还没有文档"):  # not a refusal of every question
        assistant.ask("白沙湾的灯塔有多高？")
    with pytest.raises(InputError, match="还没有文档"):
        list(assistant.stream("白沙湾的灯塔有多高？"))

    news = tmp_path / "灯塔.txt"
    news.write_text("白沙湾新闻\n\n白沙湾渔港今年新建了一座灯塔，灯塔高42米，是当地最高的建筑。\n", encoding="utf-8")
    assistant.knowledge.add_paths([news])
    answer = assistant.ask("白沙湾的灯塔有多高？")
    assert "42米" in answer.text and answer.citations[0].source == str(news)  # as the README uses it
    assert Assistant.load(settings, kb="港口").ask("白沙湾的灯塔有多高？").text == answer.text

    with pytest.raises(KnowledgeBaseNotFoundError, match="不存在"):
        Assistant.load(settings, kb="没有")
    assert not (tmp_path / "data" / "没有").exists() and not (tmp_path / "data" / "default").exists()
    delete_knowledge_base("港口", settings)
    assert list_knowledge_bases(settings) == ["default"] and news.exists()
