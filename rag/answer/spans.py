"""Candidate answer spans in a sentence: numbers, times, people, places, organisations.

Spans are found on the t2s form of the sentence (jieba's tags are trained on simplified text) and
returned as offsets, which are valid in the original sentence because t2s keeps the length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..text import pos_cut, to_simplified
from .question import UNITS, AnswerKind

_DIGITS = r"(?:\d+(?:[.,]\d+)*|[一二三四五六七八九十两百千零〇]+|[ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ]+|I{1,3}|IV|V)"
_ARABIC = re.compile(r"\d|[ⅠⅡⅢⅣⅤⅥⅦⅧⅨⅩ]")
_SCALE = r"(?:[万亿千百]+)?"
_UNIT = "(?:" + "|".join(map(re.escape, UNITS)) + "|%|％)"
_NUMBER = re.compile(
    rf"(?:约|超|近|逾|超过|达|共|累计)?{_DIGITS}(?:\s*(?:-|~|～|—|至|到)\s*{_DIGITS})?{_SCALE}(?:多|余)?"
    rf"(?:{_UNIT}(?:多|余)?(?:[\u4e00-\u9fff]{{0,4}}?(?=[，。；、,;]|$))?)?"
)
_NUMBER_CORE = re.compile(rf"{_DIGITS}")
_DATE_PART = re.compile(r"[月日号]")
_FROM = re.compile(r"(?:由|从|比|较)[^，。,;；至到达]{0,8}$")
_TO = re.compile(r"(?:至|达|为|到|是|共|了|超)$")
_UNIT_END = re.compile(rf"{_UNIT}(?:多|余)?[\u4e00-\u9fff]{{0,4}}$")
_TIME = re.compile(
    r"(?:(?:公元前?)?\d{1,4}年(?:代)?(?:\d{1,2}月(?:\d{1,2}日)?)?(?:初|底|末|年初|年底|上半年|下半年)?"
    r"|[\u4e00-\u9fff]{2}[元一二三四五六七八九十]{1,3}年(?:[正一二三四五六七八九十]{1,2}月)?(?:（\d{1,4}年）)?"
    r"|\d{1,2}月\d{1,2}日|\d{1,2}月(?:初|底|中旬|上旬|下旬)?|\d{1,2}日"
    r"|(?:今年|去年|明年|前年)(?:\d{1,2}月(?:\d{1,2}日)?|初|底)?"
    r"|[\u4e00-\u9fff]{1,4}(?:年间|时期|时代|末年|初年)|[\u4e00-\u9fff][代朝](?:末年?|初年?|中期|后期)?)"
)
_ROLES = (
    "局长|厅长|部长|司长|处长|科长|主任|书记|总裁|副总裁|董事长|总经理|经理|负责人|记者|关长|大师|主席|院长|校长|"
    "教授|市长|省长|县长|区长|镇长|村长|秘书长|理事长|总监|主管|创始人|蔗农|村民|居民|工人|员工|队长|站长|所长|"
    "行长|会长|团长|专家|研究员|工程师|博士|技师|代表|委员|总编|主编|编辑|通讯员|班长|组长|总工程师"
)
_AFTER_ROLE = re.compile(
    rf"(?:{_ROLES})([\u4e00-\u9fff]{{2,3}}?)(?=表示|说|介绍|在|称|指出|告诉|认为|坦言|透露|回忆|带领|牵头|参加|"
    rf"陪同|主持|出席|是|也|还|就|接受|等|和|与|向|对|的|[，,。、：:（(\s“”]|$)"
)
# Transliterated names: 摩根·理查德·茨万吉拉伊, 乔治·亨丁顿
_FOREIGN_NAME = re.compile(r"[\u4e00-\u9fff]{1,6}(?:[·・•][\u4e00-\u9fff]{1,8})+")
_ORG_SUFFIX = (
    "有限责任公司|股份有限公司|有限公司|公司|集团|银行|分行|支行|研究院|研究所|委员会|办公室|总工会|工会|大学|学院|"
    "中心|协会|海关|报社|医院|工作室|联盟"
)
_ORG = re.compile(rf"[\u4e00-\u9fff“”\"（）()A-Za-z0-9]{{2,30}}?(?:{_ORG_SUFFIX})")
_ORG_LEFT_CUT = re.compile(r".*(?:[是由为在和与及、的到经向对将被让给从据如自同等了着把使]|目前|已经|已)")
_PLACE_AFTER = re.compile(
    r"(?:来到|前往|走进|位于|落户|运往|运抵|发往|抵达|到达|在|于)([^，。；、,;：:“”]{2,25}?)"
    r"(?=察看|考察|调研|揭幕|举行|拍摄|采收|召开|开幕|成立|落地|[，。；,;]|$)"
)
_PLACE_SUFFIX = re.compile(
    r"[\u4e00-\u9fff]{1,12}?(?:省|市|县|区|镇|乡|村|街道|小区|社区|州|盟|旗|城|港|口岸|国|新区|园区)(?![\u4e00-\u9fff]{0,1}[长委])"
)


# Common surnames: a name jieba tags "nr" without a role word before it must start with one of these.
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟"
    "谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢"
    "齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂苗谷盛曲翁冉骆蓝路"
    "游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂"
    "佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩佘池查麻苑迟邝官封谈匡鞠惠荆冀郁胥栗燕楚鄢谌奚粟冼蔺"
    "楼厉仝郜阚屠朴盖廉禹祖漆巴狄宿逯邰赫杭裘亓"
)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str
    bonus: int = 0  # characters of distance forgiven: spans found by a strong pattern (局长XXX) win ties


def _strip(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start] in ' 　“”"（(、，,的':
        start += 1
    while end > start and text[end - 1] in ' 　“”"）)、，,的':
        end -= 1
    return Span(start, end, text[start:end]) if end - start >= 1 else None


@lru_cache(maxsize=4096)
def _tags(simplified: str) -> tuple[tuple[str, str, int], ...]:
    out, position = [], 0
    for word, flag in pos_cut(simplified):
        out.append((word, flag, position))
        position += len(word)
    return tuple(out)


def _numbers(text: str) -> list[Span]:
    spans = []
    for m in _NUMBER.finditer(text):
        if _DATE_PART.match(text, m.end()) or (m.start() and text[m.start() - 1] == "月"):
            continue  # "3月8日": a date, not a quantity
        span = _strip(text, m.start(), m.end())
        # A Chinese numeral alone ("一类", "两周") is a number only with a unit after it.
        if span and _NUMBER_CORE.search(span.text) and (_ARABIC.search(span.text) or _UNIT_END.search(span.text)):
            before = text[max(0, span.start - 10) : span.start]
            # "由3万元增长至35万余元": the value reached, not the starting point
            bonus = -6 if _FROM.search(before) else 4 if _TO.search(before) else 0
            spans.append(Span(span.start, span.end, span.text, bonus))
    return spans


def _people(simple: str) -> list[Span]:
    spans = [Span(m.start(1), m.end(1), simple[m.start(1) : m.end(1)], 8) for m in _AFTER_ROLE.finditer(simple)]
    tags = _tags(simple)
    for i, (word, flag, position) in enumerate(tags):
        if not flag.startswith("nr"):
            continue
        end = position + len(word)
        if len(word) == 1 and i + 1 < len(tags) and len(tags[i + 1][0]) <= 2:  # surname + given name split apart
            end += len(tags[i + 1][0])
        # jieba's two-character "names" are often words (智慧); a known surname makes them likely names
        if 3 <= end - position <= 4 or (end - position == 2 and simple[position] in _SURNAMES):
            spans.append(Span(position, end, simple[position:end]))
    spans += [Span(m.start(), m.end(), m.group()) for m in _FOREIGN_NAME.finditer(simple)]
    return spans


def _organizations(simple: str) -> list[Span]:
    spans = []
    for m in _ORG.finditer(simple):
        start = m.start()
        cut = _ORG_LEFT_CUT.match(simple[start : m.end() - 2])
        if cut:
            start += cut.end()
        span = _strip(simple, start, m.end())
        if span and len(span.text) >= 3:
            spans.append(span)
    for word, flag, position in _tags(simple):
        if flag == "nt" and len(word) >= 2:
            spans.append(Span(position, position + len(word), word))
    # "招商银行" + "南宁分行": adjacent names are one organisation
    ends = {s.end: s for s in spans}
    spans += [Span(ends[s.start].start, s.end, simple[ends[s.start].start : s.end]) for s in spans if s.start in ends]
    return spans


def _places(simple: str) -> list[Span]:
    spans = [s for m in _PLACE_AFTER.finditer(simple) if (s := _strip(simple, m.start(1), m.end(1)))]
    spans += [s for m in _PLACE_SUFFIX.finditer(simple) if (s := _strip(simple, m.start(), m.end()))]
    for word, flag, position in _tags(simple):
        if flag == "ns" and len(word) >= 2:
            spans.append(Span(position, position + len(word), word))
    return spans


def candidate_spans(sentence: str, kind: AnswerKind) -> list[Span]:
    """Spans of ``sentence`` that could answer a question of this kind (offsets into ``sentence``)."""
    simple = to_simplified(sentence)
    if len(simple) != len(sentence):  # rare multi-character conversions: analyse the sentence as it is
        simple = sentence
    if kind == "number":
        found = _numbers(simple)
    elif kind == "time":
        found = [Span(m.start(), m.end(), m.group()) for m in _TIME.finditer(simple) if m.group()]
    elif kind == "person":
        found = _people(simple)
    elif kind == "organization":
        found = _organizations(simple)
    elif kind == "place":
        found = _places(simple)
    else:
        found = []
    unique = {(s.start, s.end): Span(s.start, s.end, sentence[s.start : s.end], s.bonus) for s in found}
    return sorted(unique.values(), key=lambda s: (s.start, -s.end))
