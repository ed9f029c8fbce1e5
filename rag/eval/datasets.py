"""QA sets for evaluation: our JSONL format and SQuAD-style files (CMRC 2018, DRCD).

Both load into the same shape: a list of :class:`EvalItem` and the corpus documents the
questions are asked against. An item knows what counts as relevant evidence; a chunk is
matched against it by :func:`rag.eval.metrics.is_relevant`.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..ingest import IngestError, load_bytes, load_paths
from ..resources import seeds_dir
from ..types import Document

DatasetFormat = Literal["jsonl", "squad"]


@dataclass(frozen=True)
class Evidence:
    """A quote that a relevant passage must contain, or (``doc_id`` set) a whole gold document."""

    file: str = ""
    quote: str = ""
    doc_id: str = ""


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answer: str  # "" when the question cannot be answered from the corpus
    aliases: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    type: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answer)

    @property
    def golds(self) -> tuple[str, ...]:
        return (self.answer, *self.aliases) if self.answer else ()


@dataclass
class Dataset:
    name: str
    format: DatasetFormat
    items: list[EvalItem]
    documents: list[Document] = field(default_factory=list)

    def sample(self, limit: int | None, seed: int = 0) -> "Dataset":
        """A fixed random subset of ``limit`` items (kept in file order); the corpus is unchanged."""
        if not limit or limit >= len(self.items):
            return self
        chosen = sorted(random.Random(seed).sample(range(len(self.items)), limit))
        return Dataset(self.name, self.format, [self.items[i] for i in chosen], self.documents)


# Question words → label, for sets without a ``type`` (SQuAD-style); first match wins.
_QUESTION_TYPES = (
    ("reason", re.compile(r"为什么|為什麼|为何|為何|原因|理由")),
    ("time", re.compile(r"哪一?年|哪一?天|几月|幾月|何时|何時|什么时候|什麼時候|哪个时期|哪個時期|时间|時間|年代|日期")),
    ("number", re.compile(r"多少|几|幾|多长|多長|多高|多大|多重|多远|多遠|数量|數量|人口|面积|面積")),
    ("person", re.compile(r"谁|誰|哪位|何人|什么人|什麼人")),
    ("place", re.compile(r"哪里|哪裡|哪裏|哪儿|何地|何处|何處|什么地方|什麼地方|位于|位於|哪个国家|哪個國家|哪座|哪国|哪國")),
    ("how", re.compile(r"如何|怎样|怎樣|怎么|怎麼")),
)


def question_type(question: str) -> str:
    """A coarse label from the question word, so SQuAD-style sets can be broken down too."""
    return next((label for label, pattern in _QUESTION_TYPES if pattern.search(question)), "other")


def detect_format(path: Path) -> DatasetFormat:
    if path.suffix.lower() == ".jsonl":
        return "jsonl"
    with open(path, encoding="utf-8") as handle:
        head = handle.read(4096).lstrip()
    return "squad" if head.startswith("{") and '"data"' in head else "jsonl"


def _resolve(file: str, roots: list[Path]) -> Path | None:
    for root in roots:
        candidate = (root / file).resolve()
        if candidate.is_file():
            return candidate
    return None


def load_jsonl(path: str | Path, corpus: str | Path | None = None) -> Dataset:
    """Our format: one ``{id, question, answer, answer_aliases, evidence: [{file, quote}], type}`` per line.

    The corpus is the files under ``corpus`` (default: the bundled pages, ``seeds/`` in the source tree). Evidence files are looked up
    relative to the working directory, the dataset's folder and its parent, and the corpus; a quote
    must be an exact substring of its file.
    """
    path = Path(path)
    corpus = Path(corpus) if corpus is not None else seeds_dir()
    documents, errors = load_paths([corpus])
    if errors:
        raise ValueError("cannot load the corpus: " + "; ".join(map(str, errors)))
    if not documents:
        raise ValueError(f"no supported files in the corpus {corpus}")
    roots = [Path.cwd(), path.parent, path.parent.parent, corpus, corpus.parent]
    items: list[EvalItem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        evidence = []
        for ev in row.get("evidence") or []:
            file = _resolve(ev["file"], roots)
            if file is None:
                raise ValueError(f"{path}:{number}: evidence file {ev['file']!r} not found")
            if ev["quote"] not in file.read_text(encoding="utf-8", errors="replace"):
                raise ValueError(f"{path}:{number}: quote {ev['quote']!r} is not in {ev['file']}")
            evidence.append(Evidence(file=ev["file"], quote=ev["quote"]))
        items.append(
            EvalItem(
                id=str(row.get("id", number)),
                question=row["question"],
                answer=row.get("answer") or "",
                aliases=tuple(row.get("answer_aliases") or ()),
                evidence=tuple(evidence),
                type=row.get("type") or question_type(row["question"]),
            )
        )
    return Dataset(path.stem, "jsonl", items, documents)


def _safe(title: str) -> str:
    return re.sub(r"[\\/\s]+", "_", title).strip("_") or "untitled"


def load_squad(path: str | Path) -> Dataset:
    """SQuAD-style JSON: every context is a corpus document; a question's gold passage is its own context."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    documents: dict[str, Document] = {}
    items: list[EvalItem] = []
    for article_no, article in enumerate(data):
        title = _safe(article.get("title") or f"article{article_no}")
        for paragraph_no, paragraph in enumerate(article["paragraphs"]):
            source = f"{title}/{paragraph.get('id') or paragraph_no}.txt"
            try:
                document = load_bytes(paragraph["context"].encode("utf-8"), source)
            except IngestError:
                continue  # an empty context: its questions cannot be asked
            documents.setdefault(document.id, document)  # identical contexts become one document
            for qa in paragraph["qas"]:
                answers = list(dict.fromkeys(a["text"].strip() for a in qa.get("answers", []) if a["text"].strip()))
                items.append(
                    EvalItem(
                        id=str(qa["id"]),
                        question=qa["question"],
                        answer=answers[0] if answers else "",
                        aliases=tuple(answers[1:]),
                        evidence=(Evidence(file=source, doc_id=document.id),) if answers else (),
                        type=qa.get("type") or question_type(qa["question"]),
                    )
                )
    name = path.parent.name if path.stem in ("dev", "train", "test") else path.stem  # cmrc2018/dev.json → cmrc2018
    return Dataset(name, "squad", items, list(documents.values()))


def load_dataset(path: str | Path, format: DatasetFormat | None = None, corpus: str | Path | None = None) -> Dataset:
    path = Path(path)
    format = format or detect_format(path)
    if format == "squad":
        return load_squad(path)
    return load_jsonl(path, corpus)
