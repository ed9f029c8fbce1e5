"""Follow-up questions made standalone before retrieval (the heuristic; the LLM uses prompts/rewrite.txt).

"那他后来去了哪里？" retrieves nothing useful on its own. Without an LLM the rewrite carries the
previous turn's entities over:
- a pronoun (他/她, 这家公司, 当地, 它 …) is replaced by the entity of the matching class — from the
  previous answer when the previous question asked for exactly that (谁 → 他), else from the question;
- "X呢？" swaps X for the previous question's entity of the same class ("那南宁呢？"), or puts X in
  front of the previous question's ask ("交通运输部应急办主任呢？" → "…主任是谁？");
- a question with no topic words ("具体是多少？") is prefixed with the previous question's topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..text import pos_cut, to_simplified, tokenize
from .citations import MARKER
from .history import Turn
from .question import analyze
from .spans import candidate_spans

_PRONOUNS = {
    "person": re.compile(r"(?<!其)(?:他们|她们|他|她)|此人|这个人|那个人|这位|那位|该人"),
    "organization": re.compile(r"(?:这|那|该|此)(?:家|个)?(?:公司|企业|银行|机构|单位|集团|部门)|这家|那家"),
    "place": re.compile(r"这里|那里|那儿|这儿|当地|该地|此地|该市|该省|该县|该区"),
    "other": re.compile(r"它们|它|(?<![尤极与])其(?![他中实余次])"),
}
_LEAD = re.compile(r"^(?:那么|那|然后|还有|另外|此外|再问一下|再问|请问)[，,、\s]*")
_ELLIPSIS = re.compile(r"^(?P<x>.{1,24}?)(?:的情况|怎么样|如何)?呢[？?。！!]*$")
_ASK = re.compile(
    r"(?:是|有|为|在|达到|增长了?)?(?:多少|几|谁|哪里|哪儿|哪[一]?[个座家位年天里国]|什么时候|何时|什么|如何|怎么样|多[长大高久远])"
    r"[^，,]*$"
)
_QUESTION_WORD = re.compile(r"哪|什么|谁|多少|几|何")
# Words that say nothing about the topic: a follow-up made only of these needs the previous question.
_VAGUE = frozenset(
    "具体 后来 之后 以后 当时 时候 情况 详细 介绍 一下 怎样 为什么 原因 结果 然后 还 现在 目前 最近 去 来 说".split()
)


@dataclass(frozen=True)
class Entity:
    text: str
    kind: str  # person | place | organization | other
    start: int


@lru_cache(maxsize=1024)
def entities(text: str) -> tuple[Entity, ...]:
    """Named things in a text, in order of appearance: people, organisations, places, other proper nouns."""
    simple = to_simplified(MARKER.sub("", text))
    found: list[Entity] = []
    for kind in ("person", "organization", "place"):
        found += [
            Entity(s.text, kind, s.start)
            for s in candidate_spans(simple, kind)
            if len(s.text) <= 20 and not _QUESTION_WORD.search(s.text)
        ]
    position = 0
    for word, flag in pos_cut(simple):
        if len(word) >= 2 and (flag in ("nz", "eng", "j") or flag.startswith(("nr", "ns", "nt"))):
            found.append(Entity(word, "other", position))
        position += len(word)
    # Of overlapping finds keep the longest ("哈尔滨新区储运管理有限公司" over "哈尔滨").
    found.sort(key=lambda e: (e.start, -len(e.text)))
    kept: list[Entity] = []
    for entity in found:
        if kept and entity.start < kept[-1].start + len(kept[-1].text):
            continue
        kept.append(entity)
    return tuple(kept)


def needs_context(question: str) -> bool:
    """Whether the question leans on the previous turn (pronoun, "X呢", leading 那, or no topic words)."""
    simple = to_simplified(question).strip()
    if any(p.search(simple) for p in _PRONOUNS.values()) or _LEAD.match(simple) or _ELLIPSIS.match(simple):
        return True
    return not [t for t in tokenize(simple, for_search=False) if t not in _VAGUE]


def _referent(kind: str, previous: Turn) -> str | None:
    """The entity a pronoun of this kind points at: the previous answer's when it answered a 谁/哪家/哪里."""
    in_question, in_answer = entities(previous.question), entities(previous.answer)
    asked = analyze(previous.question).kind
    ordered = (in_answer + in_question) if asked == kind else (in_question + in_answer)
    if kind == "other":  # 它/其: the previous question's first named thing of any kind
        ordered = in_question + in_answer
        return ordered[0].text if ordered else None
    return next((e.text for e in ordered if e.kind == kind), None)


def _topic(question: str) -> str:
    """The previous question without its ask and end punctuation: what it was about."""
    text = re.sub(r"[？?。！!\s]+$", "", to_simplified(question))
    return _ASK.sub("", text) or text


def _ask(question: str) -> str:
    match = _ASK.search(re.sub(r"[？?。！!\s]+$", "", to_simplified(question)))
    return match.group() if match else ""


def _swap(previous: str, new: str) -> str | None:
    """The previous question with its entity of the same class as ``new`` replaced by ``new``."""
    new_entities = [e for e in entities(new) if e.kind != "other"]
    if not new_entities:
        return None
    kind = new_entities[0].kind
    # The last one of the class: "东盟……是广西最大的贸易伙伴" + "那南宁呢" swaps 广西, the nearer the ask
    old = next((e.text for e in reversed(entities(previous)) if e.kind == kind), None)
    prev = to_simplified(previous)
    return prev.replace(old, new, 1) if old and old in prev else None


def rewrite(question: str, previous: Turn) -> str:
    """A standalone form of ``question`` given the previous turn (its question already standalone)."""
    simple = to_simplified(question).strip()
    body = _LEAD.sub("", simple) or simple
    has_pronoun = any(p.search(body) for p in _PRONOUNS.values())
    ellipsis = _ELLIPSIS.match(body)
    if ellipsis and not has_pronoun:
        x = ellipsis.group("x")
        swapped = _swap(previous.question, x)
        if swapped:
            return swapped
        ask = _ask(previous.question)
        if ask:
            return f"{x}{ask}？"
    replaced = body
    for kind, pattern in _PRONOUNS.items():
        if pattern.search(replaced):
            entity = _referent(kind, previous)
            if entity:
                replaced = pattern.sub(entity, replaced, count=1)
    if ellipsis and replaced != body:
        x = _ELLIPSIS.match(replaced)
        subject = x.group("x") if x else replaced
        if analyze(previous.question).kind != "other" and subject in MARKER.sub("", to_simplified(previous.answer)):
            return f"{subject}的情况如何？"  # the pronoun points at what was just answered: ask about it
        return _swap(previous.question, subject) or f"{subject}{_ask(previous.question)}？"
    if replaced != body and not needs_context(replaced):
        return replaced
    return f"{_topic(previous.question)}，{replaced}"


def standalone(question: str, history: list[Turn]) -> str | None:
    """The heuristic rewrite of ``question`` against the conversation, or None when it stands alone."""
    previous: Turn | None = None
    for turn in history:  # earlier follow-ups are resolved too, so context carries across several turns
        if previous is not None and needs_context(turn.question):
            turn = Turn(rewrite(turn.question, previous), turn.answer)
        previous = turn
    if previous is None or not needs_context(question):
        return None
    return rewrite(question, previous)
