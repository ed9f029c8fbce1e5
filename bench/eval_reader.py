"""The reader on CMRC 2018 and DRCD, end to end, scored only on questions it was not trained on.

    python bench/eval_reader.py --sample 300

For each set, the pooled contexts are indexed once (kept under out/eval-reader/), and a fixed sample of
questions is asked twice over: with the full corpus (answerable) and with the question's own gold
context taken out of the retrieved passages (the unanswerable split; questions whose answer string also
appears in another context are left out of it). CMRC 2018 is read by the reader trained on DRCD alone
and DRCD by the one trained on CMRC 2018 alone (from ``bench/train_reader.py``).

1. Refusal calibration: the reader's best no-answer margin for each question. The two one-set readers
   put their margins on different scales, so a threshold does not carry from one reader to the other:
   each set's threshold is chosen on a second, disjoint sample of that set (the highest threshold whose
   false refusals stay ≤ --max-false-refusal) and reported on the first, with the curves in
   docs/eval/refusal.png. The shipped reader (trained on DRCD) takes the CMRC 2018 threshold.
2. Answers: the assistant (retrieval + reader at that threshold) against the rules generator on the
   reported sample, with the metrics of ``rag eval`` (contains gold, leading-span F1/EM, refusals, citations).
Writes docs/eval/reader.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from rag import Assistant, KnowledgeBase, Settings  # noqa: E402
from rag.eval.datasets import Dataset, EvalItem, load_dataset  # noqa: E402
from rag.eval.evaluators import AnswerEvaluator, RelevanceJudge  # noqa: E402
from rag.reader.reader import Reader  # noqa: E402
from rag.text import normalize  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
CROSS = ROOT / "out" / "reader"
#: The reader scoring each set was trained on the other one.
READERS = {"cmrc2018": CROSS / "reader-drcd.safetensors", "drcd": CROSS / "reader-cmrc2018.safetensors"}


def open_set(name: str, workdir: Path) -> tuple[Dataset, KnowledgeBase]:
    data = load_dataset(DATASETS / name / "dev.json", "squad")
    settings = Settings(index_dir=workdir / name, corpus=[])
    built = settings.index_dir.exists()
    knowledge = KnowledgeBase.open(settings, build_if_missing=not built)
    if not built:  # one build per set, kept for later runs
        knowledge.add_documents(data.documents, progress=True)
    return data, knowledge


def unanswerable_split(data: Dataset, items: list[EvalItem]) -> list[EvalItem]:
    """The items whose answer appears in no context but their own."""
    texts = [(d.id, normalize(d.text)) for d in data.documents]
    kept = []
    for item in items:
        golds = [normalize(g) for g in item.golds]
        gold_doc = item.evidence[0].doc_id
        if not any(g in text for g in golds for doc_id, text in texts if doc_id != gold_doc):
            kept.append(item)
    return kept


def margins(reader: Reader, knowledge: KnowledgeBase, items: list[EvalItem], passages: int, drop_gold: bool) -> list[float]:
    result = []
    for item in tqdm(items, desc="reader margins" + (" (gold removed)" if drop_gold else ""), unit="q"):
        hits = knowledge.search(item.question, k=passages + (8 if drop_gold else 0))
        if drop_gold:
            hits = [h for h in hits if h.chunk.doc_id != item.evidence[0].doc_id]
        spans = reader.read(item.question, [h.chunk.clean for h in hits[:passages]])
        result.append(max((s.margin for s in spans if s), default=float("-inf")))
    return result


def rates(scores: dict[str, list[float]], threshold: float) -> dict[str, float]:
    return {
        "false_refusal": float(np.mean(np.array(scores["answerable"]) < threshold)),
        "refused_unanswerable": float(np.mean(np.array(scores["unanswerable"]) < threshold)),
    }


def choose(scores: dict[str, list[float]], max_false_refusal: float) -> float:
    candidates = sorted({round(v, 3) for v in scores["answerable"] + scores["unanswerable"] if np.isfinite(v)})
    allowed = [t for t in candidates if rates(scores, t)["false_refusal"] <= max_false_refusal]
    return float(max(allowed)) if allowed else float(min(candidates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-false-refusal", type=float, default=0.03)
    parser.add_argument("--workdir", type=Path, default=ROOT / "out" / "eval-reader")
    args = parser.parse_args()
    passages = Settings().reader_passages
    sets, scores, calibration, samples = {}, {}, {}, {}
    for name in READERS:
        data, knowledge = open_set(name, args.workdir)
        answerable = [i for i in data.items if i.answerable]
        drawn = random.Random(args.seed).sample(answerable, 2 * args.sample)
        items, held = drawn[: args.sample], drawn[args.sample :]
        reader = Reader.load(READERS[name])
        sets[name], samples[name] = (data, knowledge), items
        scores[name], calibration[name] = (
            {
                "answerable": margins(reader, knowledge, part, passages, drop_gold=False),
                "unanswerable": margins(reader, knowledge, unanswerable_split(data, part), passages, drop_gold=True),
            }
            for part in (items, held)
        )
    report: dict = {"sample": args.sample, "seed": args.seed, "passages": passages, "refusal": {}, "answers": {}}
    thresholds = {}
    for name in READERS:
        threshold = choose(calibration[name], args.max_false_refusal)
        thresholds[name] = threshold
        report["refusal"][name] = {
            "reader": READERS[name].name,
            "threshold": threshold,
            "calibration_sample": {k: len(v) for k, v in calibration[name].items()},
            "reported_sample": {k: len(v) for k, v in scores[name].items()},
            **rates(scores[name], threshold),
        }
    report["margins"] = scores
    for name, (data, knowledge) in sets.items():
        judge = RelevanceJudge(knowledge.index.snapshot.chunks)
        report["answers"][name] = {}
        for label, overrides in (
            ("reader", {"generator": "extractive", "reader_weights": READERS[name], "reader_threshold": thresholds[name]}),
            ("rules", {"generator": "rules"}),
        ):
            assistant = Assistant(knowledge, knowledge.settings.with_overrides(**overrides))
            evaluator = AnswerEvaluator(samples[name], judge, name=f"{name} {label}")
            report["answers"][name][label] = evaluator(assistant.ask)
    out = ROOT / "docs" / "eval"
    out.mkdir(parents=True, exist_ok=True)
    (out / "reader.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _plot(scores, thresholds, out / "refusal.png")
    print(json.dumps(report, indent=2, ensure_ascii=False))


def _plot(scores: dict[str, dict[str, list[float]]], thresholds: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(min(-6.0, *thresholds.values()) - 1, 10, 161)
    figure, axis = plt.subplots(figsize=(6.4, 4))
    for name, style in (("cmrc2018", "-"), ("drcd", "--")):
        curve = [rates(scores[name], t) for t in grid]
        axis.plot(grid, [c["false_refusal"] for c in curve], style, color="tab:red", label=f"{name}: answerable refused")
        axis.plot(grid, [c["refused_unanswerable"] for c in curve], style, color="tab:blue",
                  label=f"{name}: unanswerable refused")
        axis.axvline(thresholds[name], linestyle=style, color="grey", linewidth=0.8)
    axis.set_xlabel("threshold on (best span score − no-answer score)")
    axis.set_ylabel("share of questions")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
