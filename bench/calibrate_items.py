"""How the reader's margin separates sentences that hold an answer from those that do not, read one by one.

    python bench/calibrate_items.py --sample 300

A list question's items are found by reading each sentence of the answering article alone
(``rag.answer.reader``): a sentence's span is an item when its margin (span score minus no-answer score)
reaches ``ITEM_MARGIN``. For a sample of questions, every sentence of the gold context is read alone;
sentences containing a gold answer are positives. CMRC 2018 is read by the shipped reader (trained on
DRCD alone), DRCD by the one trained on CMRC 2018 (``out/reader/`` from ``bench/train_reader.py``), so
neither reader is scored on its training set. Prints, for each margin, the share of positive and of
negative sentences kept; writes docs/eval/items.json.
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

from rag.answer.reader import ITEM_MARGIN  # noqa: E402
from rag.reader.data import load_squad  # noqa: E402
from rag.reader.reader import Reader  # noqa: E402
from rag.reader.weights import WEIGHTS_PATH  # noqa: E402
from rag.text import split_sentences  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
READERS = {"cmrc2018": WEIGHTS_PATH, "drcd": ROOT / "out" / "reader" / "reader-cmrc2018.safetensors"}
MARGINS = (-6.0, -4.0, -2.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0)


def sentence_margins(name: str, sample: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each read sentence's margin, and whether it holds a gold answer."""
    qaset = load_squad(DATASETS / name / "dev.json")
    reader = Reader.load(READERS[name])
    margins, positive = [], []
    for example in random.Random(seed).sample(qaset.examples, sample):
        context = qaset.contexts[example.context_id]
        sentences = [context[start:end] for start, end in split_sentences(context)]
        for sentence, span in zip(sentences, reader.read(example.question, sentences)):
            if span is not None:
                margins.append(span.margin)
                positive.append(any(answer in sentence for answer in example.answers))
    return np.array(margins), np.array(positive)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sets", nargs="+", default=list(READERS))
    parser.add_argument("--out", default=str(ROOT / "docs" / "eval" / "items.json"))
    args = parser.parse_args()
    report = {"item_margin": ITEM_MARGIN, "sample": args.sample, "sets": {}}
    for name in args.sets:
        margins, positive = sentence_margins(name, args.sample, args.seed)
        curve = {
            str(m): {"positives_kept": round(float((margins[positive] >= m).mean()), 3),
                     "negatives_kept": round(float((margins[~positive] >= m).mean()), 3)}
            for m in sorted({*MARGINS, ITEM_MARGIN})
        }
        report["sets"][name] = {"sentences": int(len(margins)), "positives": int(positive.sum()), "curve": curve}
        print(name, f"{len(margins)} sentences, {int(positive.sum())} holding the answer")
        for m, kept in curve.items():
            print(f"  margin ≥ {m:>5}: answer sentences kept {kept['positives_kept']:.3f}, others {kept['negatives_kept']:.3f}")
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
