"""Questions that name their subject only through another fact, split into the two reads they need.

"俄速通总部所在城市的那个国家级新区，高新技术企业数量占全省的比重是多少？" asks about a district that
only another article names: the inner description ("俄速通总部所在城市") is read first; its answer
(the bridge, 哈尔滨) then stands in for it ("哈尔滨国家级新区，高新技术企业数量…"), which is retrieved
and read again. The inner part is what precedes "的那…" in the first clause, or the whole first clause
of a question with several, unless that part is itself asking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Hop", "split"]

_CLAUSES = re.compile(r"[，,；;]")
# A part that asks ("截至哪一天，…") is the question itself, not a description of something to look up.
_ASKS = re.compile(r"哪|什么|多少|谁|何时|何地|何处|为何|如何|何种|怎|吗|是否")  # not 几 (几种: "several")
# "的那个", "的那座", "的那一天": the description ends, the asked thing follows (its classifier dropped).
_RELATIVE = re.compile(r"的那一?[个座家位条所天名只件项种处年月]?")


@dataclass(frozen=True)
class Hop:
    inner: str  # describes the bridge entity
    rest: str  # the question about it, once the bridge is put in front


def split(question: str) -> Hop | None:
    """The two reads of ``question``, or None when it has one clause and no "的那…"."""
    question = question.strip()
    first = _CLAUSES.split(question, maxsplit=1)[0]
    match = _RELATIVE.search(first)
    if match and match.start() > 0:
        hop = Hop(first[: match.start()], question[match.end() :])
    elif len(first) < len(question) and len(question) - len(first) > 1:
        hop = Hop(first, question[len(first) :])
    else:
        return None
    return None if _ASKS.search(hop.inner) else hop
