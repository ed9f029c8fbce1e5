"""Answer quality and warm latency of ``Assistant.ask`` (extractive by default).

Seed QA set (default):
    python bench/bench_ask.py                      # metrics + latency on examples/seeds_qa.jsonl
    python bench/bench_ask.py --sweep              # refusal-threshold trade-off
SQuAD-format sets (CMRC 2018 dev, DRCD dev): all contexts pooled into one corpus, a sample of questions:
    python bench/bench_ask.py --squad /work/shared/datasets/cmrc2018/dev.json --index-dir /tmp/cmrc-index --sample 300

Metrics: answer contains the gold answer or an alias (after t2s); refusal rate on unanswerable and false
refusals on answerable questions; citation precision (cited passage contains the evidence); median answer
length; ask p50/p95 (warm). For SQuAD sets also exact match and character F1 of the answer's leading span.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

from rag import Assistant, KnowledgeBase, Settings
from rag.answer.citations import MARKER
from rag.eval.metrics import best_f1, exact_match, normalize_answer, percentile
from rag.eval.metrics import contains_gold as _contains
from rag.types import Answer, Document

ROOT = Path(__file__).resolve().parent.parent
_norm = normalize_answer


def contains_gold(answer: Answer, golds: list[str]) -> bool:
    return bool(_contains(MARKER.sub("", answer.text), golds))


def leading_span(answer: Answer) -> str:
    """What the answer leads with: the span before '：', else the first sentence, markers removed."""
    text = MARKER.sub("", answer.text)
    head = text.split("：", 1)[0] if "：" in text[:40] else re.split(r"[。！？]", text, maxsplit=1)[0]
    return head.strip()


def _bigrams(text: str) -> set[str]:
    text = _norm(text)
    return {text[i : i + 2] for i in range(len(text) - 1)}


def cites_evidence(passage: str, quotes: list[str]) -> bool:
    """The passage holds one of the evidence quotes (whole, or ≥ 80 % of its bigrams when cut by chunking),
    or is part of it (a SQuAD context split into several chunks)."""
    norm = _norm(passage)
    grams = _bigrams(passage)
    for quote in quotes:
        if _norm(quote) in norm or norm in _norm(quote):
            return True
        wanted = _bigrams(quote)
        if wanted and len(wanted & grams) / len(wanted) >= 0.8:
            return True
    return False


def run(assistant: Assistant, items: list[dict], overrides: dict) -> dict:
    answerable = [i for i in items if i["answers"]]
    unanswerable = [i for i in items if not i["answers"]]
    results = []
    for item in items:
        started = time.perf_counter()
        answer = assistant.ask(item["question"], **overrides)
        results.append((item, answer, time.perf_counter() - started))
    contained = sum(contains_gold(a, i["answers"]) for i, a, _ in results if i["answers"])
    refused_unanswerable = sum(a.refused for i, a, _ in results if not i["answers"])
    false_refusals = sum(a.refused for i, a, _ in results if i["answers"])
    cited = [(c, i) for i, a, _ in results if i["answers"] and not a.refused for c in a.citations]
    precise = sum(cites_evidence(c.chunk.clean, i["evidence"]) for c, i in cited if i["evidence"])
    with_evidence = sum(1 for _, i in cited if i["evidence"])
    lengths = [len(a.text) for i, a, _ in results if not a.refused]
    times = [t * 1000 for _, _, t in results]
    report = {
        "questions": len(items),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "contains_gold": round(contained / max(1, len(answerable)), 4),
        "refusal_on_unanswerable": round(refused_unanswerable / len(unanswerable), 4) if unanswerable else None,
        "false_refusal": round(false_refusals / max(1, len(answerable)), 4),
        "citation_precision": round(precise / with_evidence, 4) if with_evidence else None,
        "median_answer_chars": statistics.median(lengths) if lengths else 0,
        "ask_ms_p50": round(percentile(times, 50), 1),
        "ask_ms_p95": round(percentile(times, 95), 1),
    }
    if any(i.get("squad") for i in items):
        spans = [(leading_span(a), i["answers"]) for i, a, _ in results if i["answers"]]
        report["leading_span_em"] = round(sum(exact_match(p, golds) for p, golds in spans) / max(1, len(spans)), 4)
        report["leading_span_char_f1"] = round(sum(best_f1(p, golds) for p, golds in spans) / max(1, len(spans)), 4)
    report["failures"] = [
        {"id": i["id"], "question": i["question"], "gold": i["answers"][:1], "answer": a.text}
        for i, a, _ in results
        if (i["answers"] and not contains_gold(a, i["answers"])) or (not i["answers"] and not a.refused)
    ]
    return report


def seed_items(path: Path) -> list[dict]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            answers = [row["answer"], *row.get("answer_aliases", [])] if row["answer"] else []
            quotes = [e["quote"] for e in row.get("evidence", [])]
            items.append({"id": row["id"], "question": row["question"], "answers": answers, "evidence": quotes})
    return items


def squad_items(path: Path, sample: int, seed: int) -> tuple[list[dict], list[Document]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    documents, items = [], []
    for article in data:
        for p_index, paragraph in enumerate(article["paragraphs"]):
            source = f"{path.parent.name}/{paragraph.get('id') or article.get('id', '')}-{p_index}"
            context = paragraph["context"]
            documents.append(Document(id=_doc_id(context), source=source, text=context))
            for qa in paragraph["qas"]:
                answers = list(dict.fromkeys(a["text"] for a in qa["answers"] if a["text"].strip()))
                if answers:
                    items.append(
                        {
                            "id": qa["id"],
                            "question": qa["question"],
                            "answers": answers,
                            "evidence": [context],
                            "squad": True,
                        }
                    )
    random.Random(seed).shuffle(items)
    return items[:sample], documents


def _doc_id(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa", type=Path, default=ROOT / "examples" / "seeds_qa.jsonl")
    parser.add_argument("--squad", type=Path, help="a SQuAD-format file; its contexts become the corpus")
    parser.add_argument("--index-dir", type=Path, help="index location (default: the settings' index_dir)")
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--sweep", action="store_true", help="report the refusal-threshold trade-off")
    parser.add_argument("--failures", action="store_true", help="list the questions answered wrongly")
    parser.add_argument("--generator", default=None)
    args = parser.parse_args(argv)

    settings = Settings().with_overrides(index_dir=args.index_dir)
    if args.squad:
        items, documents = squad_items(args.squad, args.sample, args.seed)
        knowledge = KnowledgeBase.open(settings.with_overrides(corpus=[]))
        if not knowledge.documents:  # first run: index the pooled contexts (minutes of CPU)
            knowledge.add_documents(documents, progress=True)
        assistant = Assistant(knowledge, settings)
    else:
        items = seed_items(args.qa)
        assistant = Assistant.load(settings, progress=True)
    overrides = {"generator": args.generator}
    for item in items[:3]:  # warm up: jieba, the embedding model, caches
        assistant.ask(item["question"], **overrides)
    if args.sweep:
        for threshold in [round(0.05 * t, 2) for t in range(13)]:
            report = run(assistant, items, {**overrides, "refusal_threshold": threshold})
            report.pop("failures")
            print(json.dumps({"refusal_threshold": threshold, **report}, ensure_ascii=False))
        return 0
    report = run(assistant, items, overrides)
    failures = report.pop("failures")
    print(json.dumps(report, ensure_ascii=False, indent=1))
    if args.failures:
        for failure in failures:
            print(json.dumps(failure, ensure_ascii=False), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
