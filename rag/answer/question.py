"""What a question asks for: the kind of answer, its content terms, numbers and unit.

All analysis runs on the normalised (t2s, NFKC, lower-case) question so both scripts behave alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..text import normalize, tokenize

AnswerKind = Literal["number", "time", "person", "place", "organization", "other"]

_TIME = re.compile(r"何时|什么时候|什么时间|哪一?天|哪一?年|哪个月|几月|几号|几日|哪日|何年|截至哪|日期|多少年[前后]")
_PERSON = re.compile(r"谁|哪[一两几]?位|什么人")
_ORG_WORD = r"公司|企业|银行|机构|部门|单位|组织|学校|大学|医院|店|集团|媒体|报社|协会|工会"
_ORG = re.compile(rf"哪[一]?家|哪个(?:{_ORG_WORD})|什么(?:{_ORG_WORD})")
_NAME = re.compile(r"叫什么名字|名字是什么|名字叫什么")
_PLACE = re.compile(
    r"哪里|哪儿|在哪|何地|何处|什么地方|什么地区|哪些地方|哪些地区|哪[个座一]?(?:城市|国家|省|市|县|区|镇|乡|村|小区|社区|地方|地区|口岸|港口)"
)
_NUMBER = re.compile(r"多少|几|多长|多大|多高|多远|多重|多久|多快|多宽|多深|百分之|比例|增幅|占比")
_ABBREVIATION = re.compile(r"简称")

#: Measure words a number can carry; longest first so 万吨 wins over 吨.
UNITS = sorted(
    """
    公里 千米 平方公里 平方米 立方米 米 厘米 毫米 吨 万吨 千克 公斤 克 元 亿元 万元 美元 人民币 人 名 家 户 个 列 颗 件
    基 天 年 岁 次 倍 辆 架 艘 台 套 项 所 座 条 亩 公顷 千瓦 千瓦时 度 级 期 批 位 种 款 场 只 头 株 箱 单 票 趟 班 小时
    分钟 秒 周 月 届 轮 份 张 篇 部 本 处 栋 层 间 吨公里 标箱 标准箱 万 亿 成
    """.split(),
    key=len,
    reverse=True,
)
_UNIT_AFTER = re.compile(r"(?:多少|几)(?:个)?(" + "|".join(map(re.escape, UNITS)) + ")")
_MONEY = re.compile(r"多少钱|值多少|金额|总值|营收|收入|产值|投资|资金|授信|贷款|出口额|进口额|销售额|规模")
_AGE = re.compile(r"岁数|年龄|多大年纪|几岁")
_NUMBER_TOKEN = re.compile(r"\d+(?:[.,/]\d+)*")
# The asked thing's class, from "哪家银行", "哪座城市", "餐饮店叫什么名字", "哪一年" …
_CATEGORY = re.compile(
    r"哪[一]?[家个座所位]?(银行|公司|企业|店|城市|国家|村|小区|社区|省|县|镇|学校|大学|医院)"
    r"|(银行|公司|企业|店)[^，,]{0,3}叫什么|(哪一?年|何年)|(哪一?天|几号|几日|哪日)"
)
_CATEGORY_SPANS = {
    "银行": re.compile(r"(?:银行|分行|支行)$"),
    "公司": re.compile(r"(?:公司|集团|厂)$"),
    "企业": re.compile(r"(?:公司|集团|厂|企业)$"),
    "店": re.compile(r"(?:店|馆|餐厅|酒楼|酒家)$"),
    "城市": re.compile(r"^[^省县区镇村]*$"),
    "国家": re.compile(r"^[^省市县区镇村]*$"),
    "村": re.compile(r"村$"),
    "小区": re.compile(r"(?:小区|社区|花园|苑|园)$"),
    "社区": re.compile(r"社区$"),
    "省": re.compile(r"省$"),
    "县": re.compile(r"县$"),
    "镇": re.compile(r"镇$"),
    "学校": re.compile(r"(?:学校|学院|大学|中学|小学)$"),
    "大学": re.compile(r"(?:大学|学院)$"),
    "医院": re.compile(r"医院$"),
    "年": re.compile(r"年"),
    "日": re.compile(r"日|号"),
}
_MANY = re.compile(r"哪[两几]位|哪些|哪几|分别|[还都][^，,。？?]{0,8}哪(?:里|儿|个|家|位)")


@dataclass(frozen=True)
class Question:
    text: str  # as asked
    normalized: str
    kind: AnswerKind
    terms: tuple[str, ...]  # content tokens (t2s jieba, stopwords and question words removed)
    numbers: tuple[str, ...]  # digit strings the answer's context must contain ("2023", "2021/2022")
    unit: str | None  # measure word the answer must carry ("公里" in 多少公里)
    many: bool  # asks for several items (哪两位, 哪些)
    category: str | None = None  # the asked thing's class when named: 银行 in 哪家银行, 年 in 哪一年

    def fits(self, span: str) -> bool:
        """Whether a candidate span is of the asked category (a bank for 哪家银行, a year for 哪一年)."""
        if self.unit and self.unit not in span and not (self.unit_or_ge and "个" in span):
            return False
        pattern = _CATEGORY_SPANS.get(self.category or "")
        return pattern is None or bool(pattern.search(span))

    @property
    def unit_or_ge(self) -> bool:
        """'多少个人' may be counted in 个 or in 人."""
        return bool(re.search(r"(?:多少|几)个" + re.escape(self.unit or "~"), self.normalized))


def _kind(norm: str) -> AnswerKind:
    if _TIME.search(norm):
        return "time"
    if _PERSON.search(norm):
        return "person"
    if _ORG.search(norm):
        return "organization"
    if _PLACE.search(norm):
        return "place"
    if _NAME.search(norm):
        before = norm[: _NAME.search(norm).start()]
        return "organization" if re.search(rf"(?:{_ORG_WORD})[^，,]{{0,3}}$", before) else "person"
    if _NUMBER.search(norm):
        return "number"
    return "other"


def analyze(question: str) -> Question:
    norm = normalize(question)
    kind = _kind(norm)
    unit = None
    if kind == "number":
        match = _UNIT_AFTER.search(norm)
        unit = match.group(1) if match else ("岁" if _AGE.search(norm) else None)
        if unit in ("万", "亿"):  # "多少万" only says the scale
            unit = None
    terms = tuple(dict.fromkeys(tokenize(question)))
    match = _CATEGORY.search(norm)
    category = None
    if match:
        category = match.group(1) or match.group(2) or ("年" if match.group(3) else "日")
    return Question(
        text=question,
        normalized=norm,
        kind=kind,
        terms=terms,
        numbers=tuple(dict.fromkeys(_NUMBER_TOKEN.findall(norm))),
        unit=unit,
        many=bool(_MANY.search(norm)),
        category=category,
    )
