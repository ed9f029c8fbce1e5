"""The local index at archive scale (1 M chunks): exact search against HNSW and IVF-PQ, through the retriever.

    python bench/bench_archive.py                          # 1 M chunks: flat, hnsw, ivfpq
    python bench/bench_archive.py --chunks 200000 --kinds flat hnsw --questions 100

Data. The CMRC 2018 dev corpus is indexed with the bundled model once (under ``--work``; the embedding
cache makes later runs quick). Its chunks are replicated, with their real text and BM25 postings, into
documents of ten chunks until there are ``--chunks``; each replica gets a *mixed real vector*, the
normalised blend 0.75·v(its chunk) + 0.25·v(another chunk, at random) + N(0, 0.01²) per dimension, so
replicas spread between real chunks instead of piling up as near-twins of one. Queries are CMRC questions,
embedded by the bundled model beforehand: the timings exclude the query embedding, as the target states.

For each vector index kind (``flat`` first: exact, the reference) the same rows are written as one segment
with ``vector_index=<kind>``: seconds (the files, and for hnsw/ivfpq the approximate index). Then a fresh
process opens the index (seconds, RSS) and, on one thread, runs every question through the retriever (what
``rag search`` does: BM25 and dense, fused, near-duplicates collapsed) in hybrid, dense and BM25 mode:
p50/p95 ms; recall@10 of the dense results against exact search, and overlap of the hybrid top 10 with
the hybrid top 10 over exact search; RSS at the end. Last, it adds one 2,000-character article through
``KnowledgeBase.add_documents`` with the model and jieba's dictionary loaded: seconds and bytes written. Prints a table
and writes docs/eval/archive.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATASET = ROOT.parent / "shared" / "datasets" / "cmrc2018" / "dev.json"
TARGETS = {"hybrid_p50_ms": 30.0, "recall": 0.95, "rss_mb": 4096.0, "add_s": 2.0}
CHUNKS_PER_DOCUMENT = 10


@dataclass(frozen=True)
class Spec:
    model_id: str
    dimension: int


def rss_mb(field: str = "VmRSS") -> float:
    """The process's resident memory now (``VmHWM``: its peak; unlike ru_maxrss, not inherited across exec)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith(field + ":")).split()[1]) / 1024


def written_bytes() -> int:
    return int(next(line for line in Path("/proc/self/io").read_text().splitlines() if line.startswith("wchar")).split()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------------- the data
def base_index(work: Path, questions: int) -> Path:
    """The CMRC corpus indexed by the bundled model, and ``questions.json`` with embedded questions."""
    from rag import KnowledgeBase, Settings
    from rag.eval.datasets import load_dataset
    from rag.text import normalize

    path = work / "base"
    if not (work / "questions.json").exists():
        shutil.rmtree(path, ignore_errors=True)
        dataset = load_dataset(DATASET)
        knowledge = KnowledgeBase.create(Settings(data_dir=work / "data", index_dir=path))
        started = time.perf_counter()
        knowledge.add_documents(dataset.documents)
        print(f"base: {knowledge.stats().chunks} CMRC chunks indexed in {time.perf_counter() - started:.0f} s", flush=True)
        asked = [item.question for item in dataset.sample(questions, 0).items]
        vectors = knowledge.embeddings.embed_queries([normalize(q) for q in asked])
        spec = {"model_id": knowledge.embeddings.model_id, "dimension": knowledge.embeddings.dimension}
        rows = [{"question": q, "normalized": normalize(q), "vector": v.tolist()} for q, v in zip(asked, vectors)]
        (work / "questions.json").write_text(json.dumps({"spec": spec, "questions": rows}, ensure_ascii=False))
    return path


def archive_rows(base: Path, chunks: int, seed: int = 0):
    """``SegmentData`` of ``chunks`` replicated rows (see the module's docstring)."""
    from rag.settings import Settings
    from rag.store import Index
    from rag.store.segment import SegmentData, _grouped

    spec = json.loads((base.parent / "questions.json").read_text())["spec"]
    view = Index.open(base, Settings(index_dir=base), Spec(**spec)).snapshot
    (part,) = view.parts  # one add: one segment
    segment = part.segment
    n = segment.rows
    lines = [json.loads(line) for line in segment.lines("chunks", np.arange(n))]
    rng = np.random.default_rng(seed)
    of = np.arange(chunks) % n  # the real chunk each row replicates
    real = np.asarray(segment.vectors, dtype=np.float32)
    vectors = np.empty((chunks, real.shape[1]), dtype=np.float32)
    for start in range(0, chunks, 100_000):
        stop = min(chunks, start + 100_000)
        block = 0.75 * real[of[start:stop]] + 0.25 * real[rng.integers(0, n, stop - start)]
        block += rng.normal(0, 0.01, block.shape).astype(np.float32)
        vectors[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    catalogue, documents, chunk_lines = [], [], []
    for first in range(0, chunks, CHUNKS_PER_DOCUMENT):
        doc_id = f"archive{first // CHUNKS_PER_DOCUMENT:07d}"
        rows = range(first, min(chunks, first + CHUNKS_PER_DOCUMENT))
        ids = [f"{doc_id}-{row - first:04d}" for row in rows]
        source = f"archive/{doc_id}.txt"
        catalogue.append([doc_id, source, "", "2026-12-07T00:00:00+00:00", 0, first, len(ids)])
        texts = [lines[of[row]]["text"] for row in rows]
        documents.append((json.dumps({"text": "\n".join(texts), "headlines": [], "chunk_ids": ids}, ensure_ascii=False) + "\n").encode())
        for chunk_id, row in zip(ids, rows):
            line = dict(lines[of[row]], id=chunk_id, doc_id=doc_id, source=source)
            chunk_lines.append((json.dumps(line, ensure_ascii=False) + "\n").encode())
    # BM25 postings: each real posting (term, row, tf) once per replica of its row.
    counts = np.diff(np.asarray(segment.term_offsets))
    terms = np.repeat(np.arange(len(counts)), counts)
    real_rows = np.asarray(segment.posting_rows).astype(np.int64)
    tfs = np.asarray(segment.posting_tfs)
    copies = np.bincount(of, minlength=n)[real_rows]
    total = int(copies.sum())
    within = np.arange(total) - np.repeat(np.cumsum(copies) - copies, copies)
    rows = np.repeat(real_rows, copies) + n * within
    term_ids, tfs = np.repeat(terms, copies), np.repeat(tfs, copies)
    order = np.lexsort((rows, term_ids))
    by_id = sorted(segment.term_ids, key=segment.term_ids.get)
    grouped = _grouped(by_id, term_ids[order], rows[order], tfs[order])
    lengths = np.asarray(segment.lengths)[of].astype(np.float32)
    keys = np.arange(chunks, dtype=np.int64)
    return SegmentData(catalogue, documents, chunk_lines, keys, vectors, lengths, *grouped), Spec(**spec)


def write_archive(data, spec: Spec, path: Path, kind: str) -> float:
    """Publish ``data`` as the one segment of a new index, with ``vector_index=kind``; the seconds it took."""
    from rag.settings import Settings
    from rag.store import Index
    from rag.store.view import Part

    shutil.rmtree(path, ignore_errors=True)
    settings = Settings(index_dir=path, vector_index=kind)
    index = Index.create(path, settings, spec)
    started = time.perf_counter()
    with index._writing():  # what Index.update does with a change's segment, for rows made here
        segment = index._write_segment(data, [])
        index._publish([Part(segment)], data.size)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------- measuring, in a child process
def child(path: Path, work: Path) -> None:
    import faiss

    from rag import KnowledgeBase, Settings
    from rag.embeddings import DenseEmbeddings
    from rag.retrieval import Retriever
    from rag.store import Index

    given = json.loads((work / "questions.json").read_text())
    spec = Spec(**given["spec"])
    table = {row["normalized"]: np.array(row["vector"], dtype=np.float32) for row in given["questions"]}

    class Precomputed(DenseEmbeddings):
        """The questions' vectors, embedded beforehand (the target excludes the query embedding)."""

        model_id, dimension = spec.model_id, spec.dimension

        def embed_queries(self, texts: list[str]) -> np.ndarray:
            return np.stack([table[text] for text in texts])

        def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
            raise NotImplementedError("the bench only searches")

    settings = Settings(index_dir=path, data_dir=work / "data")
    started = time.perf_counter()
    index = Index.open(path, settings, spec)
    result: dict = {"open_s": time.perf_counter() - started, "rss_open_mb": rss_mb()}
    retriever = Retriever(index, Precomputed(), settings)
    faiss.omp_set_num_threads(1)
    questions = [row["question"] for row in given["questions"]]
    vectors = [table[row["normalized"]] for row in given["questions"]]
    for question in questions[:10]:  # warm-up: first touches of the mapped files
        retriever.search(question, k=10, mode="hybrid")
    for mode in ("hybrid", "dense", "bm25"):
        times, found = [], []
        for question in questions:
            started = time.perf_counter()
            hits = retriever.search(question, k=10, mode=mode)
            times.append((time.perf_counter() - started) * 1000)
            found.append([hit.chunk.id for hit in hits])
        result[mode] = {"p50_ms": statistics.median(times), "p95_ms": percentile(times, 0.95), "top10": found}
    result["dense_top10"] = [[int(k) for k in index.snapshot.vectors.search(v, 10)[0]] for v in vectors]
    result["rss_mb"] = rss_mb()
    result["peak_rss_mb"] = rss_mb("VmHWM")
    # One article added with the model loaded and warm (the model's load is not what a user waits for twice).
    from bench.bench_store import article
    from rag.ingest import load_bytes
    from rag.text import tokenize

    # A data folder of its own: an embedding cache shared with the other kinds' runs would hold the article.
    knowledge = KnowledgeBase.open(Settings(index_dir=path, data_dir=path.parent / f"{path.name}-data"))
    knowledge.embeddings.embed_passages(["预热"])
    tokenize("预热")  # jieba's dictionary, loaded once per process
    document = load_bytes(article().encode("utf-8"), "news/星河水库.txt")
    before, started = written_bytes(), time.perf_counter()
    knowledge.add_documents([document])
    result["add_s"] = time.perf_counter() - started
    result["add_written_mb"] = (written_bytes() - before) / 2**20
    print("RESULT " + json.dumps(result), flush=True)


def measure(path: Path, work: Path) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--work", str(work)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,  # a failed child is reported below with its output
    )
    line = next((line for line in output.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"child failed:\n{output.stdout[-2000:]}\n{output.stderr[-4000:]}")
    return json.loads(line[len("RESULT ") :])


def overlap(found: list[list], truth: list[list]) -> float:
    return float(np.mean([len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(found, truth)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivfpq"], choices=["flat", "hnsw", "ivfpq"])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path("/tmp/rag-bench-archive"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "eval" / "archive.json")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.work)
    kinds = ["flat"] + [kind for kind in args.kinds if kind != "flat"]  # flat first: the exact reference
    args.work.mkdir(parents=True, exist_ok=True)
    base = base_index(args.work, args.questions)
    started = time.perf_counter()
    data, spec = archive_rows(base, args.chunks)
    print(f"{args.chunks:,} rows generated in {time.perf_counter() - started:.0f} s", flush=True)
    rows = {}
    for kind in kinds:
        path = args.work / f"archive-{kind}"
        write_s = write_archive(data, spec, path, kind)
        print(f"{kind}: written in {write_s:.0f} s; measuring", flush=True)
        result = measure(path, args.work)
        result["write_s"] = write_s
        result["bytes_mb"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
        rows[kind] = result
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(path.parent / f"{path.name}-data", ignore_errors=True)
    exact = rows["flat"]
    report = []
    for kind, row in rows.items():
        report.append({
            "kind": kind,
            "write_s": round(row["write_s"], 1),
            "disk_mb": round(row["bytes_mb"]),
            "open_s": round(row["open_s"], 2),
            "rss_open_mb": round(row["rss_open_mb"]),
            "hybrid_p50_ms": round(row["hybrid"]["p50_ms"], 1),
            "hybrid_p95_ms": round(row["hybrid"]["p95_ms"], 1),
            "dense_p50_ms": round(row["dense"]["p50_ms"], 1),
            "bm25_p50_ms": round(row["bm25"]["p50_ms"], 1),
            "bm25_p95_ms": round(row["bm25"]["p95_ms"], 1),
            "dense_recall@10": round(overlap(row["dense_top10"], exact["dense_top10"]), 4),
            "hybrid_overlap@10": round(overlap(row["hybrid"]["top10"], exact["hybrid"]["top10"]), 4),
            "rss_mb": round(row["rss_mb"]),
            "peak_rss_mb": round(row["peak_rss_mb"]),
            "add_s": round(row["add_s"], 2),
            "add_written_mb": round(row["add_written_mb"], 2),
        })
    print(f"\n{args.chunks:,} chunks, {args.questions} CMRC questions, one thread; load {os.getloadavg()[0]:.1f}")
    columns = list(report[0])
    print(" | ".join(columns))
    for row in report:
        print(" | ".join(str(row[c]) for c in columns))
    print(f"targets: hybrid p50 ≤ {TARGETS['hybrid_p50_ms']:.0f} ms without the query embedding, recall@10 ≥ "
          f"{TARGETS['recall']}, RSS ≤ {TARGETS['rss_mb']:.0f} MB, adding an article ≤ {TARGETS['add_s']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"chunks": args.chunks, "questions": args.questions, "rows": report}, indent=2) + "\n")


if __name__ == "__main__":
    main()
