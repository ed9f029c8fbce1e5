"""Train the learned sentence selector (``generator=selector``) and score it on the set it never saw.

    python bench/train_selector.py --train 1500 --sample 250

Protocol, as for the reader: train on DRCD → score CMRC 2018, train on CMRC 2018 → score DRCD. Training
rows are every sentence of the passages retrieved for --train questions of one set (label: the sentence
holds a gold answer); its refusal threshold is set on other questions of the same training set, with
their gold article taken out (≤ 3 % false refusals on the answerable ones). Scoring asks the same
question sample as ``bench/eval_reader.py`` (seed 0) end to end, so its numbers sit beside the reader's
and the rules' in docs/eval/reader.json. The DRCD-trained model ships (rag/answer/selector.json).
Writes docs/eval/selector.json. Datasets: CMRC 2018 dev (CC BY-SA 4.0), DRCD dev (CC BY-SA 3.0).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tqdm.auto import tqdm  # noqa: E402

from eval_reader import open_set, unanswerable_split  # noqa: E402
from rag import Assistant, KnowledgeBase  # noqa: E402
from rag.answer.extractive import ExtractiveGenerator  # noqa: E402
from rag.answer.selector import FEATURES, SELECTOR_PATH  # noqa: E402
from rag.eval.datasets import EvalItem  # noqa: E402
from rag.eval.evaluators import AnswerEvaluator, RelevanceJudge  # noqa: E402
from rag.logistic import LogisticModel, calibrate, fit  # noqa: E402
from rag.text import normalize  # noqa: E402

WORKDIR = ROOT / "out" / "eval-reader"
SETS = ("drcd", "cmrc2018")


def sentence_rows(knowledge: KnowledgeBase, items: list[EvalItem]) -> tuple[list[dict[str, float]], list[bool]]:
    rules = ExtractiveGenerator(knowledge.idf)
    rows, labels = [], []
    for item in tqdm(items, desc="training sentences", unit="q"):
        golds = [normalize(g) for g in item.golds]
        for evidence in rules.evidence(item.question, knowledge.search(item.question)):
            rows.append(evidence.features)
            labels.append(any(g in normalize(evidence.sentence) for g in golds))
    return rows, labels


def best_scores(model: LogisticModel, knowledge: KnowledgeBase, items: list[EvalItem], drop_gold: bool) -> list[float]:
    rules = ExtractiveGenerator(knowledge.idf)
    scores = []
    for item in tqdm(items, desc="threshold" + (" (gold removed)" if drop_gold else ""), unit="q"):
        hits = knowledge.search(item.question, k=knowledge.settings.k + (8 if drop_gold else 0))
        if drop_gold:
            hits = [h for h in hits if h.chunk.doc_id != item.evidence[0].doc_id]
        found = rules.evidence(item.question, hits[: knowledge.settings.k])
        scores.append(max((model.score(e.features) for e in found), default=float("-inf")))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=1500, help="training questions per set")
    parser.add_argument("--sample", type=int, default=250, help="scored questions per set (as eval_reader)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-false-refusal", type=float, default=0.03)
    args = parser.parse_args()
    opened = {name: open_set(name, WORKDIR) for name in SETS}
    report: dict = {"protocol": "train on one set, score on the other, end to end", "train_questions": args.train}
    for train, test in (("drcd", "cmrc2018"), ("cmrc2018", "drcd")):
        data, knowledge = opened[train]
        answerable = [i for i in data.items if i.answerable]
        drawn = random.Random(args.seed + 1).sample(answerable, args.train + 300)
        training, held = drawn[: args.train], drawn[args.train :]
        rows, labels = sentence_rows(knowledge, training)
        model = fit(rows, labels, FEATURES)
        model = calibrate(model, best_scores(model, knowledge, held, drop_gold=False), args.max_false_refusal)
        unanswerable = best_scores(model, knowledge, unanswerable_split(data, held), drop_gold=True)
        path = ROOT / "out" / "selector" / f"selector-{train}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        saved = {"trained_on": f"{train} dev", "model": model.to_dict()}
        path.write_text(json.dumps(saved, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if train == "drcd":
            SELECTOR_PATH.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")

        test_data, test_knowledge = opened[test]
        test_answerable = [i for i in test_data.items if i.answerable]
        items = random.Random(args.seed).sample(test_answerable, 2 * args.sample)[: args.sample]  # eval_reader's sample
        settings = test_knowledge.settings.with_overrides(generator="selector", selector_weights=path)
        evaluator = AnswerEvaluator(items, RelevanceJudge(test_knowledge.chunks()), name=f"{test} selector")
        scored = evaluator(Assistant(test_knowledge, settings).ask)
        report[f"train_{train}_score_{test}"] = {
            "training_sentences": len(rows),
            "positive_sentences": sum(labels),
            "training_set_unanswerable_refused": sum(s < model.threshold for s in unanswerable) / max(len(unanswerable), 1),
            "selector": scored,
        }
        print(json.dumps({test: report[f"train_{train}_score_{test}"]}, ensure_ascii=False, indent=2), flush=True)
    out = ROOT / "docs" / "eval" / "selector.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
