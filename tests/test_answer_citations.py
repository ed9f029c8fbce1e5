"""Citation checking and repair: markers point at shown passages that support their sentence."""

from __future__ import annotations

import pytest

from rag import KnowledgeBase
from rag.answer.citations import attach, claims, repair, support
from rag.types import Hit

QUESTION = "哈尔滨新区有多少户高新技术企业？"


@pytest.fixture(scope="module")
def hits(seed_knowledge: KnowledgeBase) -> list[Hit]:
    found = seed_knowledge.search("哈尔滨新区 高新技术企业 改革办主任 高嵩")
    assert any("1097户" in h.chunk.clean for h in found)
    return found


def _n_with(hits: list[Hit], needle: str) -> int:
    return next(n for n, h in enumerate(hits, start=1) if needle in h.chunk.clean)


def _n_without(hits: list[Hit], needle: str) -> int:
    return next(n for n, h in enumerate(hits, start=1) if needle not in h.chunk.clean)


def test_markers_to_passages_not_shown_are_removed(hits: list[Hit]) -> None:
    right = _n_with(hits, "1097户")
    text, used = repair(f"哈尔滨新区拥有高新技术企业1097户。[{right}][9][0]", hits, check=False)
    assert text == f"哈尔滨新区拥有高新技术企业1097户。[{right}]" and used == [right]


def test_misattributed_marker_moves_to_the_supporting_passage(hits: list[Hit]) -> None:
    right, wrong = _n_with(hits, "1097户"), _n_without(hits, "1097")
    text, used = repair(f"哈尔滨新区拥有高新技术企业1097户。[{wrong}]", hits)
    assert text == f"哈尔滨新区拥有高新技术企业1097户。[{right}]" and used == [right]


def test_unsupported_claim_loses_its_marker(hits: list[Hit]) -> None:
    right = _n_with(hits, "1097户")
    text, used = repair(
        f"哈尔滨新区拥有高新技术企业1097户。[{right}]该区还有一座海洋馆，年接待游客五百万人次。[{right}]", hits
    )
    assert text == f"哈尔滨新区拥有高新技术企业1097户。[{right}]该区还有一座海洋馆，年接待游客五百万人次。"
    assert used == [right]


def test_a_wrong_number_is_not_supported(hits: list[Hit]) -> None:
    passage = hits[_n_with(hits, "1097户") - 1].chunk.clean
    assert support("哈尔滨新区拥有高新技术企业1097户", passage) > 0.8
    assert support("哈尔滨新区拥有高新技术企业2097户", passage) < 0.5


def test_full_width_and_grouped_markers(hits: list[Hit]) -> None:
    right = _n_with(hits, "1097户")
    parsed = claims(f"第一句。【{right}】第二句［1，2］。第三句[1, 3]")
    assert [c.cited for c in parsed] == [(right,), (1, 2), (1, 3)]
    assert [c.text for c in parsed] == ["第一句。", "第二句。", "第三句"]


def test_citations_carry_the_supporting_quote_and_source_offsets(hits: list[Hit]) -> None:
    right = _n_with(hits, "1097户")
    [citation] = attach(f"哈尔滨新区拥有高新技术企业1097户。[{right}]", hits)
    assert citation.n == right and "1097户" in citation.quote and citation.quote in citation.chunk.clean
    with open(citation.chunk.source, encoding="utf-8", newline="") as handle:
        original = handle.read()
    span = original[citation.quote_start : citation.quote_end]
    assert "".join(span.split()) == "".join(citation.quote.split())


def test_generated_answer_is_repaired_end_to_end(seed_assistant, chat_server) -> None:
    def reply(body: dict) -> str:
        blocks = body["messages"][-1]["content"].split("\n\n[")[1:]  # "[n] 标题：…<资料>…</资料>"
        right = next(i for i, block in enumerate(blocks, start=1) if "1097户" in block)
        wrong = next(i for i, block in enumerate(blocks, start=1) if "1097" not in block)
        return f"哈尔滨新区拥有高新技术企业1097户。[{wrong}]另有一座海洋馆。[{right}][42]"

    chat_server.reply = reply
    answer = seed_assistant.ask(
        QUESTION, generator="openai", openai_base_url=chat_server.base_url, openai_api_key="test"
    )
    right = _n_with(answer.passages, "1097户")
    assert answer.text == f"哈尔滨新区拥有高新技术企业1097户。[{right}]另有一座海洋馆。"
    assert [c.n for c in answer.citations] == [right]
