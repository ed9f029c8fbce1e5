"""jieba tokenisation for the lexical index and for question analysis."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import jieba

from .convert import normalize
from .dictionary import load_dictionary

jieba.setLogLevel(logging.WARNING)

_WORD = re.compile(r"[\w]", re.UNICODE)

# Function words and question words carry no topic; dropping them sharpens BM25.
STOPWORDS = frozenset(
    """
    的 了 是 在 和 与 及 或 也 都 就 而 并 被 把 将 对 从 向 于 为 以 之 其 这 那 此 该 个 们 着 过 吗 呢 吧 啊 呀
    有 没有 中 上 下 里 等 又 还 即 所 则 但 又 很 更 最 已 已经 会 能 要 让 给 由 到 一个 一些 这个 那个 这些 那些
    什么 哪 哪里 哪儿 哪个 哪些 哪家 哪位 哪年 谁 何 何时 何地 为何 如何 怎么 怎样 怎么样 多少 几 几个 多久 多大 是否 是不是
    请问 请 问 呢 吗 么 the a an of to in and or is are was were
    """.split()
)


def tokenize(text: str, *, for_search: bool = True) -> list[str]:
    """Normalised (t2s, NFKC, lower) jieba tokens without punctuation and stopwords."""
    load_dictionary()
    norm = normalize(text)
    cut = jieba.cut_for_search(norm) if for_search else jieba.cut(norm)
    return [t for t in (w.strip() for w in cut) if t and _WORD.search(t) and t not in STOPWORDS]


def words(text: str) -> list[str]:
    """jieba's words of ``text`` as written (they join back to ``text``), for cutting at word boundaries."""
    load_dictionary()
    return list(jieba.cut(text))


def pos_cut(text: str) -> Iterator[tuple[str, str]]:
    """``(word, part-of-speech flag)`` pairs of jieba's tagger."""
    load_dictionary()
    import jieba.posseg  # ~0.3 s (it parses its word-tag table), so only once an answer needs it

    return ((pair.word, pair.flag) for pair in jieba.posseg.cut(text))
