"""The Milvus backend (milvus-lite) against the local one: retrieval quality and search latency on the same rows.

    python bench/bench_milvus.py                                   # CMRC 2018 and DRCD, 400 documents each
    python bench/bench_milvus.py --datasets drcd --documents 1000 --questions 1000
    python bench/bench_milvus.py --jieba                           # also milvus-lite's jieba analyser
    python bench/bench_milvus.py --documents 0 --from-index out/eval-reader   # whole corpora, rows of built indexes

For each SQuAD-format set: a seeded sample of ``--documents`` contexts (the corpus) and up to ``--questions`` of
their questions. The indexing pipeline runs once; the same rows (chunks, BM25 tokens, vectors) go into a local
index and into milvus-lite, and the same retriever (fusion, near-duplicate collapse) searches both, so any
difference is the engines': Milvus's BM25 statistics and its dense search. Prints hit@1/hit@5 of hybrid,
BM25 and dense retrieval for both, the difference in points, the write time and the search latency
(p50/p95 per question, query embedding excluded: the questions are embedded once beforehand), and writes
docs/eval/milvus.json. ``--jieba``: a third store whose BM25 re-cuts our terms with milvus-lite's jieba
analyser instead of keeping them whole (what the default analysers avoid). ``--from-index DIR``: take the rows
(chunks, tokens, vectors) from local indexes already built over the corpora (``DIR/<set>``, e.g. by
bench/eval_reader.py, format 1) instead of embedding the sample again; ``--documents 0``: every document.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import faiss
import numpy as np

from rag.embeddings import DenseEmbeddings, load_embeddings
from rag.eval.datasets import Dataset, load_dataset
from rag.eval.evaluators import RelevanceJudge
from rag.eval.metrics import hit_at_k
from rag.indexing import Indexer
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import Addition, Change, backend
from rag.store import milvus as milvus_backend
from rag.text import normalize
from rag.types import Chunk

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
MODES = ("hybrid", "bm25", "dense")


class QueryCache(DenseEmbeddings):
    """The model's query vectors computed once for all questions, so that latency is the store's and fusion's."""

    def __init__(self, model: DenseEmbeddings, questions: list[str]) -> None:
        self.model_id, self.dimension = model.model_id, model.dimension
        self._model = model
        texts = [normalize(q) for q in questions]
        self._vectors = dict(zip(texts, model.embed_queries(texts)))

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return self._model.embed_passages(texts, progress=progress)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vectors[t] if t in self._vectors else self._model.embed_queries([t])[0] for t in texts])


def rows_of_index(index_dir: Path, documents: list) -> list[Addition]:
    """The rows a local index (format 1) keeps for ``documents``: its chunks, BM25 tokens and vectors."""
    version = index_dir / (index_dir / "CURRENT").read_text().split()[0]
    index = faiss.read_index(str(version / "vectors.faiss"))
    flat = faiss.downcast_index(index.index)
    stored = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()
    vectors = dict(zip(faiss.vector_to_array(index.id_map).tolist(), stored))
    by_document: dict[str, list[tuple[Chunk, list[str], np.ndarray]]] = {}
    with open(version / "chunks.jsonl", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            key, tokens = row.pop("key"), row.pop("tokens")
            by_document.setdefault(row["doc_id"], []).append((Chunk(**row), tokens, vectors[key]))
    missing = [d.id for d in documents if d.id not in by_document]
    if missing:
        raise SystemExit(f"{index_dir} lacks {len(missing)} of the sampled documents (built from another corpus?)")
    return [
        Addition(
            d,
            tuple(c for c, _, _ in by_document[d.id]),
            tuple(t for _, t, _ in by_document[d.id]),
            np.stack([v for _, _, v in by_document[d.id]]).astype(np.float32),
        )
        for d in documents
    ]


def sample(dataset: Dataset, documents: int, questions: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    chosen = rng.sample(dataset.documents, min(documents or len(dataset.documents), len(dataset.documents)))
    ids = {d.id for d in chosen}
    items = [item for item in dataset.items if item.evidence and item.evidence[0].doc_id in ids]
    items = sorted(rng.sample(items, min(questions, len(items))), key=lambda item: item.id)
    return Dataset(dataset.name, dataset.format, items, chosen)


def evaluate(store, embeddings: DenseEmbeddings, settings: Settings, data: Dataset) -> dict[str, float]:
    judge = RelevanceJudge(list(store.snapshot.chunks))
    retriever = Retriever(store, embeddings, settings)
    result: dict[str, float] = {}
    for mode in MODES:
        retriever.search(data.items[0].question, k=5, mode=mode)  # warm: jieba's dictionary, first queries
        relevance, seconds = [], []
        for item in data.items:
            started = time.perf_counter()
            hits = retriever.search(item.question, k=5, mode=mode)
            seconds.append(time.perf_counter() - started)
            relevance.append([judge.relevant(hit, item) for hit in hits])
        result[f"{mode}_hit@1"] = statistics.fmean(hit_at_k(r, 1) for r in relevance)
        result[f"{mode}_hit@5"] = statistics.fmean(hit_at_k(r, 5) for r in relevance)
        ms = sorted(s * 1000 for s in seconds)
        result[f"{mode}_p50_ms"] = ms[len(ms) // 2]
        result[f"{mode}_p95_ms"] = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return result


def build(kind: str, folder: Path, settings: Settings, embeddings: DenseEmbeddings, change: Change):
    settings = settings.with_overrides(store=kind, index_dir=folder / kind)
    store = backend(settings).create(settings.index_path, settings, embeddings)
    started = time.perf_counter()
    store.update(lambda stored: change)
    return store, settings, time.perf_counter() - started


def run(name: str, args: argparse.Namespace, base: Settings, model: DenseEmbeddings) -> dict:
    data = sample(load_dataset(DATASETS / name / "dev.json"), args.documents, args.questions, args.seed)
    print(f"\n{name}: {len(data.documents)} documents, {len(data.items)} questions")
    started = time.perf_counter()
    if args.from_index:
        additions = rows_of_index(args.from_index / name, data.documents)
    else:
        additions = Indexer(base, model).prepare(data.documents, progress=True)
    prepared = time.perf_counter() - started
    embeddings = QueryCache(model, [item.question for item in data.items])
    kinds = ["local", "milvus"] + (["milvus-jieba"] if args.jieba else [])
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-milvus-") as folder:
        for kind in kinds:
            analyzer = milvus_backend._analyzer
            if kind == "milvus-jieba":  # the analyser that re-cuts our space-joined terms
                milvus_backend._analyzer = lambda lite: {"tokenizer": "jieba"}
            try:
                store, settings, write_s = build(
                    kind.split("-")[0], Path(folder) / kind, base, embeddings, Change(add=additions)
                )
                results[kind] = {"write_s": round(write_s, 2), **evaluate(store, embeddings, settings, data)}
                store.close()
            finally:
                milvus_backend._analyzer = analyzer
    chunks = sum(len(a.chunks) for a in additions)
    how = f"rows read from {args.from_index / name}" if args.from_index else "pipeline (chunk, embed, tokenise)"
    print(f"{len(additions)} documents, {chunks} chunks; {how} {prepared:.0f} s")
    print(f"{'':14}" + "".join(f"{k:>14}" for k in kinds) + f"{'milvus-local':>14}")
    for metric in [f"{m}_{s}" for m in MODES for s in ("hit@1", "hit@5")] + [
        "hybrid_p50_ms",
        "hybrid_p95_ms",
        "write_s",
    ]:
        values = [results[k][metric] for k in kinds]
        scale = 100 if "hit" in metric else 1
        diff = (values[1] - values[0]) * scale
        print(f"{metric:14}" + "".join(f"{v * scale:14.2f}" for v in values) + f"{diff:+14.2f}")
    return {
        "documents": len(additions),
        "chunks": chunks,
        "questions": len(data.items),
        "results": results,
        "hybrid_hit@1_difference_points": round(
            100 * (results["milvus"]["hybrid_hit@1"] - results["local"]["hybrid_hit@1"]), 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["cmrc2018", "drcd"])
    parser.add_argument("--documents", type=int, default=400, help="contexts in each corpus sample (0: all)")
    parser.add_argument("--questions", type=int, default=400, help="most questions per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-index", type=Path, help="folder of local indexes built over the sets (DIR/<set>)")
    parser.add_argument("--jieba", action="store_true", help="also measure milvus-lite's jieba analyser")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "eval" / "milvus.json")
    args = parser.parse_args()
    base = Settings()
    model = load_embeddings(base)
    report = {
        "command": "python bench/bench_milvus.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}".strip().replace(
                " True", ""
            )
            for k, v in vars(args).items()
            if k != "out" and v is not False and v is not None
        ),
        "versions": {"pymilvus": version("pymilvus"), "milvus-lite": version("milvus-lite")},
        "settings": {
            "mode": base.mode,
            "fusion": base.fusion,
            "candidates": base.candidates,
            "embedding": model.model_id,
        },
        "latency_note": "per question, query embedding excluded (questions embedded beforehand); 2 busy CPU cores",
        "datasets": {name: run(name, args, base, model) for name in args.datasets},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
