"""Cleaning (rejoined words, headlines, exact offset map), script conversion, sentences, tokens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.text import (
    clean,
    is_traditional,
    normalize,
    sentences,
    split_sentences,
    to_simplified,
    to_traditional,
    tokenize,
)
from rag.text.numerals import arabic_numerals

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
_DROPPED = re.compile(r"[\ufffd\u200b-\u200f\u2060\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def seed_text(prefix: str) -> str:
    return next(SEEDS.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")


def blocks(cleaned, kind: str) -> list[str]:
    return [cleaned.text[b.start : b.end] for b in cleaned.blocks if b.kind == kind]


# ---------------------------------------------------------------------------- rejoining
@pytest.mark.parametrize(
    "prefix, split, joined",
    [
        ("000", "進一\n\n步", "勉勵他們進一步加大科技投入"),
        ("000", "成\n\n效", "探索創新成效，要求"),
        ("001", "交通保障至关\n\n重要。", "交通保障至关重要。"),
    ],
)
def test_words_split_across_blank_lines_are_rejoined(prefix: str, split: str, joined: str) -> None:
    original = seed_text(prefix)
    assert split in original and joined not in original
    cleaned = clean(original)
    assert joined in cleaned.text
    start = cleaned.text.index(joined)
    s, e = cleaned.to_original(start, start + len(joined))
    assert split in original[s:e]
    assert re.sub(r"\s", "", original[s:e]) == joined


def test_a_latin_word_wrapped_at_the_line_end_keeps_a_space_mapped_to_the_break() -> None:
    original = "据介绍，公司当天发布了名为Deep\n\nSeek的模型，引发关注。"
    cleaned = clean(original)
    assert cleaned.text == "据介绍，公司当天发布了名为Deep Seek的模型，引发关注。"
    space = cleaned.text.index(" ")
    s, _ = cleaned.to_original(space, space + 1)
    assert original[s] == "\n"


def test_sentence_end_stops_the_join() -> None:
    cleaned = clean("第一段到此结束，共有十几个字。\n\n第二段另起一行，也是完整的句子。")
    assert [b.kind for b in cleaned.blocks] == ["paragraph", "paragraph"]
    assert cleaned.text == "第一段到此结束，共有十几个字。\n第二段另起一行，也是完整的句子。"


def test_broken_and_invisible_characters_are_dropped() -> None:
    original = "据报道，北京智源人工\u200b智能研究院\ufffd\n\n今天发布新模型。"
    cleaned = clean(original)
    assert "\ufffd" not in cleaned.text and "\u200b" not in cleaned.text
    assert "北京智源人工智能研究院" in cleaned.text
    # A line that ends in a broken character was truncated, not wrapped: it is not joined.
    assert len(cleaned.blocks) == 2
    for path in SEEDS.glob("*.txt"):
        assert not _DROPPED.search(clean(path.read_text(encoding="utf-8")).text)


# ---------------------------------------------------------------------------- block kinds
def test_seed_headlines_bylines_and_captions() -> None:
    cleaned = clean(seed_text("000"))
    headlines = blocks(cleaned, "headline")
    assert headlines[0] == "李強在京調研新質生產力發展情況"
    assert "東北大項目建設熱火朝天" in headlines
    assert "大公報記者 王欣欣、于海江" in blocks(cleaned, "byline")
    captions = blocks(cleaned, "caption")
    assert "▲哈伊高鐵永興呼蘭河特大橋施工現場。央視新聞" in captions
    for line in captions + blocks(cleaned, "byline"):
        assert line not in headlines


@pytest.mark.parametrize(
    "prefix, line",
    [
        ("001", "□新华社记者"),
        ("001", "(新华社北京12月16日电)"),  # dateline closing an article
        ("001", "据新华社北京12月16日电"),
        ("002", "本报记者 郑杨"),
        ("003", "新华社记者 胡超 摄"),
        ("003", "张欣宇 郑锦波"),  # author names only
        ("004", "本版编辑 祝 伟 美 编 王墨晗"),
    ],
)
def test_bylines_and_datelines_are_not_headlines(prefix: str, line: str) -> None:
    cleaned = clean(seed_text(prefix))
    assert line in blocks(cleaned, "byline")
    assert line not in blocks(cleaned, "headline")


def test_a_dateline_does_not_swallow_the_next_headline() -> None:
    cleaned = clean(seed_text("001"))
    assert "幸福的歌声 希望的田野" in blocks(cleaned, "headline")


def test_markdown_headings_short_lines_and_paragraphs() -> None:
    original = "## 天津海关创新模式助力企业发展\n\n黑龙江外贸动力澎湃\n\n日前，天津东疆综保区内的跨境电商仓库愈发繁忙。\n▲货物出区。新华社"
    cleaned = clean(original)
    assert [(b.kind, cleaned.text[b.start : b.end]) for b in cleaned.blocks] == [
        ("headline", "天津海关创新模式助力企业发展"),
        ("headline", "黑龙江外贸动力澎湃"),
        ("paragraph", "日前，天津东疆综保区内的跨境电商仓库愈发繁忙。"),
        ("caption", "▲货物出区。新华社"),
    ]
    start = cleaned.text.index("天津海关")
    s, e = cleaned.to_original(start, start + 4)
    assert original[s:e] == "天津海关"  # the "## " marker is not part of the headline


def test_line_numbers_count_crlf_and_cr_line_breaks() -> None:
    cleaned = clean("第一行。\r\n第二行。\r第三行。\n第四行。")
    assert [cleaned.line_of(cleaned.original.index(f"第{n}行")) for n in "一二三四"] == [1, 2, 3, 4]


def test_to_original_rejects_bad_spans() -> None:
    cleaned = clean("一句话。")
    with pytest.raises(ValueError):
        cleaned.to_original(2, 2)
    with pytest.raises(ValueError):
        cleaned.to_original(0, len(cleaned.text) + 1)


# ---------------------------------------------------------------------------- offset map, any input
_PIECES = st.sampled_from(
    ["新华社", "记者", "李強", "调研", "进一", "步", "，", "。", "“", "”", "（", "）", "▲", "## ", "#", " ", "\t",
     "\n", "\n\n", "\r\n", "\r", "\ufffd", "\u200b", "Deep", "Seek", "3.5", "万人", "？", "……"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=60).map("".join))
def test_every_cleaned_character_maps_back_to_the_original(original: str) -> None:
    cleaned = clean(original)
    positions = [cleaned.to_original(i, i + 1)[0] for i in range(len(cleaned.text))]
    assert positions == sorted(set(positions))  # monotonic, one original character each
    for char, position in zip(cleaned.text, positions):
        source = original[position]
        assert char == source or (char in " \n" and (source.isspace() or _DROPPED.match(source)))
    kept = set(positions)
    for position, char in enumerate(original):
        # Nothing is lost: only whitespace, broken/invisible characters and Markdown "#" markers go.
        if not char.isspace() and not _DROPPED.match(char) and char != "#":
            assert position in kept, (original, position)
    for block in cleaned.blocks:
        s, e = cleaned.to_original(block.start, block.end)
        content = re.sub(r"[\s#]", "", _DROPPED.sub("", original[s:e]))
        assert content == re.sub(r"[\s#]", "", cleaned.text[block.start : block.end])


# ---------------------------------------------------------------------------- sentences
def test_sentences_keep_closing_quotes_and_cover_the_text() -> None:
    text = "他说：“我们一定会更好。”随后离开。增长3.5%！真的吗？……好\n新段落"
    spans = split_sentences(text)
    assert "".join(text[s:e] for s, e in spans) == text
    assert sentences(text) == ["他说：“我们一定会更好。”", "随后离开。", "增长3.5%！", "真的吗？……", "好", "新段落"]


def test_sentences_drop_whitespace_only_spans() -> None:
    assert split_sentences("  \n\n ") == []
    assert sentences("一。 \n 二。") == ["一。", "二。"]


# ---------------------------------------------------------------------------- scripts and tokens
def test_script_conversion_and_normalisation() -> None:
    assert to_simplified("李強在京調研新質生產力發展情況") == "李强在京调研新质生产力发展情况"
    assert to_traditional("黑龙江外贸动力澎湃") == "黑龍江外貿動力澎湃"
    assert normalize("ＡＢＣ１２３，國務院") == "abc123,国务院"
    assert is_traditional(seed_text("000"))
    assert not is_traditional(seed_text("001"))


def test_tokens_are_script_independent_without_stopwords_or_punctuation() -> None:
    traditional = tokenize("黑龍江的邊境線有多長？")
    assert traditional == tokenize("黑龙江的边境线有多长？")
    assert "黑龙江" in traditional
    assert not {"的", "？", "?"} & set(traditional)
    assert tokenize("请问是什么？") == []


@pytest.mark.parametrize(
    ("text", "converted"),
    [
        ("灯塔高四十二米", "灯塔高42米"),
        ("一百零五户", "105户"),
        ("一万两千人", "12000人"),
        ("第二十届", "第20届"),
        ("二〇二三年", "2023年"),
        ("千万不要", "千万不要"),  # not numbers: left alone
        ("万一下雨", "万一下雨"),
        ("七八个人", "七八个人"),
        ("十一五规划", "十一五规划"),
        ("一座灯塔十分高", "一座灯塔十分高"),
    ],
)
def test_arabic_numerals_convert_only_numbers_and_keep_origins(text: str, converted: str) -> None:
    result, origin = arabic_numerals(text)
    assert result == converted and len(origin) == len(result)
    for char, (start, end) in zip(result, origin):  # every character points at what it stands for
        assert char == text[start] or (char.isdigit() and end - start >= 1)
