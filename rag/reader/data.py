"""SQuAD-format question sets (CMRC 2018, DRCD) as reader examples."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Example:
    id: str
    question: str
    context_id: int  # index into the set's contexts
    answers: tuple[str, ...]
    answer_start: int  # character offset of the first answer in its context


@dataclass(frozen=True)
class QASet:
    name: str
    contexts: list[str]
    examples: list[Example]


def load_squad(path: str | Path, name: str | None = None) -> QASet:
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    contexts: list[str] = []
    examples: list[Example] = []
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            contexts.append(context)
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"] if a["text"].strip()))
                if not answers:
                    continue
                first = qa["answers"][0]
                start = first["answer_start"]
                if context[start : start + len(first["text"])] != first["text"]:
                    start = context.find(first["text"])  # a few published offsets are off by some characters
                    if start < 0:
                        continue
                examples.append(Example(qa["id"], qa["question"], len(contexts) - 1, answers, start))
    return QASet(name or Path(path).parent.name, contexts, examples)
