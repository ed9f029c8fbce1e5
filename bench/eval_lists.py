"""List questions (哪些, 哪几, 哪两位) over the seed pages: are all the items there, and only items?

    python bench/eval_lists.py examples/seeds_lists.jsonl examples/seeds_fresh.jsonl

For each ``list`` question (its ``items``, or its answer split at 、): item recall (gold items that the
answer contains, script- and punctuation-insensitive), lead precision (items of the answer's lead that
are, contain or lie inside a gold item), every-item rate, and refusals. ``--item-margins`` also scores the
reader's per-sentence item margin at other values (``rag.answer.reader.ITEM_MARGIN``; ``inf`` keeps only
the best span's enumeration), to show what the calibrated value trades. Writes docs/eval/lists.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import Assistant  # noqa: E402
from rag.answer import reader as reader_generator  # noqa: E402
from rag.text import normalize  # noqa: E402

_PUNCT = "，,、；;：:。！？!?…“”‘’\"'（）()《》「」 "


def _key(text: str) -> str:
    return "".join(ch for ch in normalize(text) if ch not in _PUNCT)


def load(paths: list[str]) -> list[dict]:
    items = []
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("type") == "list":
                row.setdefault("items", row["answer"].split("、"))
                items.append(row)
    return items


def score(assistant: Assistant, questions: list[dict]) -> dict[str, float]:
    recall, precision, complete, refused, rows = [], [], 0, 0, []
    for row in questions:
        answer = assistant.ask(row["question"])
        gold = [_key(item) for item in row["items"]]
        text = _key(answer.text)
        found = [g for g in gold if g in text]
        recall.append(len(found) / len(gold))
        complete += len(found) == len(gold)
        refused += answer.refused
        lead = [_key(part) for part in (answer.span or "").split("、") if _key(part)]
        if lead:
            precision.append(sum(any(p in g or g in p for g in gold) for p in lead) / len(lead))
        rows.append({"id": row["id"], "answer": answer.text, "recall": recall[-1]})
    n = len(questions)
    return {
        "questions": n,
        "item_recall": round(sum(recall) / n, 3),
        "lead_precision": round(sum(precision) / len(precision), 3) if precision else 0.0,
        "every_item": round(complete / n, 3),
        "refused": round(refused / n, 3),
        "answers": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+")
    parser.add_argument("--item-margins", type=float, nargs="*", default=[])
    parser.add_argument("--out", default=str(ROOT / "docs" / "eval" / "lists.json"))
    args = parser.parse_args()
    questions = load(args.sets)
    assistant = Assistant.load()
    results = {}
    for margin in [reader_generator.ITEM_MARGIN, *args.item_margins]:
        reader_generator.ITEM_MARGIN = margin  # a sweep over the module's calibrated constant
        results[str(margin)] = score(assistant, questions)
        summary = {k: v for k, v in results[str(margin)].items() if k != "answers"}
        print(f"item margin {margin}: {summary}")
    Path(args.out).write_text(json.dumps({"sets": args.sets, "results": results}, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
