"""The reader on CMRC 2018 and DRCD, end to end, scored only on questions it was not trained on.

    python bench/eval_reader.py --sample 250

For each set, the pooled contexts are indexed once (kept under out/eval-reader/), and a fixed sample of
questions is asked three ways: with the full corpus (answerable); with the question's own article taken
out of the retrieved passages ("article missing": off-topic passages; questions whose answer string also
appears in another context are left out); and with the same passages as when answerable but every
sentence holding the answer cut out ("answer removed": on-topic passages that do not say it). CMRC 2018 is read by the shipped reader (trained on DRCD
alone) and DRCD by the one trained on CMRC 2018 alone (``out/reader/`` from ``bench/train_reader.py``).

1. Refusal calibration, on a second, disjoint sample of each set: the answerability model
   (a logistic model over the reader's span scores and the question's coverage in the passage)
   is fitted there and its threshold set for ≤ --max-false-refusal; the same is done for the raw
   no-answer margin alone, for comparison. Both are reported on the first sample, with the curves in
   docs/eval/refusal.png. Each model is written into its reader's manifest (``reader.json``): rerun this
   after retraining.
2. Answers: the assistant (retrieval + reader) against the rules generator on the reported sample, with
   the metrics of ``rag eval`` (contains gold, leading-span F1/EM, refusals, citations).
Writes docs/eval/reader.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from tqdm.auto import tqdm

from rag import Assistant, KnowledgeBase, Settings
from rag.answer.extractive import ExtractiveGenerator
from rag.answer.reader import ANSWERABILITY, ReaderGenerator
from rag.eval.datasets import Dataset, EvalItem, load_dataset
from rag.eval.evaluators import AnswerEvaluator, RelevanceJudge
from rag.logistic import LogisticModel, calibrate, fit, threshold_for
from rag.reader.reader import Reader
from rag.reader.weights import WEIGHTS_PATH, manifest_path
from rag.text import normalize, split_sentences
from rag.types import Hit

DATASETS = ROOT.parent / "shared" / "datasets"
#: The reader scoring each set was trained on the other one (checked against its manifest).
READERS = {"cmrc2018": WEIGHTS_PATH, "drcd": ROOT / "out" / "reader" / "reader-cmrc2018.safetensors"}
#: One question's reader output: the answerability features of each read passage's best span.
Features = list[dict[str, float]]
UNANSWERABLE = ("article_missing", "answer_removed")


def open_set(name: str, workdir: Path) -> tuple[Dataset, KnowledgeBase]:
    data = load_dataset(DATASETS / name / "dev.json", "squad")
    settings = Settings(index_dir=workdir / name, data_dir=workdir / f"{name}-data", corpus=[])
    if settings.index_dir.exists():  # one build per set, kept for later runs
        return data, KnowledgeBase.open(settings, build_if_missing=False)
    knowledge = KnowledgeBase.create(settings)
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


def passages_for(knowledge: KnowledgeBase, item: EvalItem, passages: int, split: str) -> list[Hit] | None:
    """The passages the reader gets for ``item`` in ``split``; None when the split cannot be made for it."""
    if split == "article_missing":
        hits = knowledge.search(item.question, k=passages + 8)
        return [h for h in hits if h.chunk.doc_id != item.evidence[0].doc_id][:passages]
    hits = knowledge.search(item.question, k=passages)
    if split == "answerable":
        return hits
    golds = [normalize(g) for g in item.golds]
    cut, removed = [], False
    for hit in hits:
        clean = hit.chunk.clean
        text = "".join(clean[s:e] for s, e in split_sentences(clean) if not any(g in normalize(clean[s:e]) for g in golds))
        if any(g in normalize(text) for g in golds):
            return None  # the answer spans two sentences: nothing clean to cut
        removed |= len(text) < len(clean)
        cut.append(replace(hit, chunk=replace(hit.chunk, clean=text)))
    return cut if removed else None


def read(generator: ReaderGenerator, reader: Reader, knowledge: KnowledgeBase, items: list[EvalItem],
         passages: int, split: str) -> list[Features]:
    result = []
    for item in tqdm(items, desc=f"reader, {split}", unit="q"):
        hits = passages_for(knowledge, item, passages, split)
        if hits is not None:
            result.append([c.features for c in generator.candidates(reader, item.question, hits)])
    return result


def margin_score(features: Features) -> float:
    return max((f["margin"] for f in features), default=float("-inf"))


def model_score(model: LogisticModel, features: Features) -> float:
    """As the generator decides: the best passage's score."""
    return max((model.score(f) for f in features), default=float("-inf"))


def rates(scores: dict[str, list[float]], threshold: float) -> dict[str, float]:
    refused = {split: float(np.mean(np.array(values) < threshold)) for split, values in scores.items()}
    unanswerable = [v for split in UNANSWERABLE for v in scores[split]]
    return {
        "false_refusal": refused["answerable"],
        "refused_unanswerable": float(np.mean(np.array(unanswerable) < threshold)),
        **{f"refused_{split}": refused[split] for split in UNANSWERABLE},
    }


def fit_answerability(calibration: dict[str, list[Features]], max_false_refusal: float) -> LogisticModel:
    """Fitted on each question's highest-margin passage; the threshold from the generator's own scores."""
    rows, labels = [], []
    for label, questions in calibration.items():
        for features in questions:
            if features:
                rows.append(max(features, key=lambda f: f["margin"]))
                labels.append(label == "answerable")
    model = fit(rows, labels, ANSWERABILITY)
    return calibrate(model, [model_score(model, f) for f in calibration["answerable"]], max_false_refusal)


def check_protocol(name: str, path: Path) -> None:
    trained_on = json.loads(manifest_path(path).read_text(encoding="utf-8"))["trained_on"]
    if any(name in source for source in trained_on):
        sys.exit(f"{path} was trained on {trained_on}: it cannot be scored on {name}")


def store_model(path: Path, model: LogisticModel, provenance: str) -> None:
    meta = manifest_path(path)
    manifest = json.loads(meta.read_text(encoding="utf-8"))
    manifest["answerability"] = {"model": model.to_dict(), "calibrated_on": provenance}
    meta.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-false-refusal", type=float, default=0.03)
    parser.add_argument("--workdir", type=Path, default=ROOT / "out" / "eval-reader")
    parser.add_argument("--sets", nargs="+", choices=list(READERS), default=list(READERS))
    args = parser.parse_args()
    passages = Settings().reader_passages
    out = ROOT / "docs" / "eval"
    report: dict = {"sample": args.sample, "seed": args.seed, "passages": passages, "refusal": {}, "answers": {}, "scores": {}}
    earlier = json.loads((out / "reader.json").read_text(encoding="utf-8")) if (out / "reader.json").exists() else {}
    if all(earlier.get(key) == report[key] for key in ("sample", "seed", "passages")):
        report = earlier  # a run over some of the sets keeps the others' results
    for name in args.sets:
        weights = READERS[name]
        check_protocol(name, weights)
        data, knowledge = open_set(name, args.workdir)
        answerable = [i for i in data.items if i.answerable]
        drawn = random.Random(args.seed).sample(answerable, 2 * args.sample)
        items, held = drawn[: args.sample], drawn[args.sample :]
        reader = Reader.load(weights)
        generator = ReaderGenerator(ExtractiveGenerator(knowledge.idf))
        reported, calibration = (
            {
                "answerable": read(generator, reader, knowledge, part, passages, "answerable"),
                "article_missing": read(generator, reader, knowledge, unanswerable_split(data, part), passages, "article_missing"),
                "answer_removed": read(generator, reader, knowledge, part, passages, "answer_removed"),
            }
            for part in (items, held)
        )
        margin_threshold = threshold_for([margin_score(f) for f in calibration["answerable"]], args.max_false_refusal)
        model = fit_answerability(calibration, args.max_false_refusal)
        margins = {label: [margin_score(f) for f in qs] for label, qs in reported.items()}
        modelled = {label: [model_score(model, f) for f in qs] for label, qs in reported.items()}
        report["scores"][name] = {"margin": margins, "answerability": modelled}
        sizes = {label: len(qs) for label, qs in calibration.items()}
        provenance = (
            f"{name} dev, seed {args.seed}: {sizes['answerable']} answerable questions, {sizes['article_missing']} with "
            f"their article missing and {sizes['answer_removed']} with the answer's sentences cut from the passages; "
            f"threshold for ≤ {args.max_false_refusal:.0%} false refusals"
        )
        store_model(weights, model, provenance)
        report["refusal"][name] = {
            "reader": str(weights.relative_to(ROOT)),
            "calibration_sample": sizes,
            "reported_sample": {label: len(qs) for label, qs in reported.items()},
            "margin_only": {"threshold": margin_threshold, **rates(margins, margin_threshold)},
            "answerability": {"model": model.to_dict(), **rates(modelled, model.threshold)},
        }
        judge = RelevanceJudge(knowledge.chunks())
        report["answers"][name] = {}
        for label, overrides in (
            ("reader", {"generator": "extractive", "reader_weights": weights}),
            ("rules", {"generator": "rules"}),
        ):
            assistant = Assistant(knowledge, knowledge.settings.with_overrides(**overrides))
            evaluator = AnswerEvaluator(items, judge, name=f"{name} {label}")
            report["answers"][name][label] = evaluator(assistant.ask)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reader.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _plot(report, out / "refusal.png")
    print(json.dumps({k: v for k, v in report.items() if k != "scores"}, indent=2, ensure_ascii=False))


def _plot(report: dict, path: Path) -> None:
    """Refused unanswerable against refused answerable as the threshold moves, for each way of scoring."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4))
    for name, style in zip(report["scores"], ("-", "--")):
        refusal = report["refusal"][name]
        thresholds = {"margin": refusal["margin_only"]["threshold"], "answerability": refusal["answerability"]["model"]["threshold"]}
        for kind, colour in (("margin", "tab:grey"), ("answerability", "tab:blue")):
            values, threshold = report["scores"][name][kind], thresholds[kind]
            finite = [v for split in values.values() for v in split if np.isfinite(v)]
            curve = [rates(values, t) for t in np.quantile(finite, np.linspace(0, 1, 200))]
            axis.plot([c["false_refusal"] for c in curve], [c["refused_unanswerable"] for c in curve], style,
                      color=colour, label=f"{name}: {kind}")
            chosen = rates(values, threshold)
            axis.plot(chosen["false_refusal"], chosen["refused_unanswerable"], "o", color=colour)
    axis.set_xlim(0, 0.3)
    axis.set_xlabel("answerable questions refused")
    axis.set_ylabel("unanswerable questions refused (both kinds)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
