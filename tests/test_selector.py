"""The learned sentence selector (generator=selector): the cheaper alternative to the reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag import Assistant
from rag.answer.selector import FEATURES, SELECTOR_PATH, SelectorError, load_selector


def test_shipped_selector_is_trained_on_drcd_with_every_feature() -> None:
    saved = json.loads(SELECTOR_PATH.read_text(encoding="utf-8"))
    assert saved["trained_on"] == "drcd dev"
    assert load_selector().features == FEATURES


def test_selector_answers_with_a_cited_span_and_refuses_off_topic(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask("黑龙江的边境线有多长？", generator="selector")
    assert answer.generator == "selector" and not answer.refused
    assert "2981" in (answer.span or "") and answer.citations and "2981" in answer.citations[0].quote
    assert seed_assistant.ask("苹果公司的首席执行官是谁？", generator="selector").refused


def test_unusable_selector_model_names_the_file(seed_assistant: Assistant, tmp_path: Path) -> None:
    broken = tmp_path / "selector.json"
    broken.write_text('{"model": {"features": ["coverage"]', encoding="utf-8")
    with pytest.raises(SelectorError, match="selector.json"):
        seed_assistant.ask("黑龙江的边境线有多长？", generator="selector", selector_weights=broken)
