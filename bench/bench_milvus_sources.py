"""What a write asks a Milvus knowledge base first: which stored documents are older versions of its files.

    python bench/bench_milvus_sources.py --documents 30000

Writes N one-chunk documents (~1,500 characters each, random 8-d vectors: only the document records matter
here) to a milvus-lite file, then times ``by_source`` for three files (two stored, one new) both ways:
reading every document record (how it was done before documents carried their ``source_tail``) and the
lookup by file name.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.settings import Settings
from rag.store import Addition, Change, backend
from rag.store.backend import DocumentRecords, source_key
from rag.types import Chunk, Document

TEXT = "黑龙江拥有2981公里的漫长边境线，国家一类口岸众多。" * 60  # ~1,500 characters, a news article's length


def addition(number: int, rng: np.random.Generator) -> Addition:
    document = Document(f"d{number:06d}", f"archive/2026/{number:06d}.txt", f"{TEXT}{number}")
    part = TEXT[:300]
    chunk = Chunk(
        id=f"{document.id}-0", doc_id=document.id, source=document.source, text=part, clean=part, normalized=part,
        title="", start=0, end=300, line_start=1, line_end=1,
    )
    return Addition(document, (chunk,), (["边境线"],), rng.standard_normal((1, 8)).astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rag-milvus-sources-") as folder:
        settings = Settings(index_dir=Path(folder) / "kb", store="milvus")
        store = backend(settings).create(settings.index_path, settings, SimpleNamespace(model_id="bench", dimension=8))
        rng = np.random.default_rng(0)
        additions = [addition(number, rng) for number in range(args.documents)]
        started = time.perf_counter()
        for start in range(0, len(additions), 500):
            store.update(lambda stored, start=start: Change(add=additions[start : start + 500]))
        print(f"{args.documents} documents written in {time.perf_counter() - started:.1f} s")
        documents = store.snapshot.documents
        numbers = (5, args.documents // 2)
        keys = {source_key(f"archive/2026/{n:06d}.txt", "") for n in numbers} | {source_key("new/一篇新稿.txt", "")}
        for name, lookup in (
            ("scan of every record", lambda: DocumentRecords.by_source(documents, keys)),
            ("lookup by file name", lambda: documents.by_source(keys)),
        ):
            started = time.perf_counter()
            found = lookup()
            print(f"{name}: {(time.perf_counter() - started) * 1000:.1f} ms, {len(found)} of {len(keys)} found")
        store.close()


if __name__ == "__main__":
    main()
