"""Format 1 of the local index (one complete version directory of JSON Lines and a FAISS file): read it, to
list its documents or to convert it to segments once.

Layout of a format-1 version directory: ``manifest.json``, ``documents.jsonl`` (documents with their text),
``chunks.jsonl`` (chunk fields, integer key, BM25 tokens) and ``vectors.faiss`` (an ``IndexIDMap2`` over an
``IndexFlatIP``), each listed with its SHA-256 in the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ..types import Chunk, Document
from .files import read_jsonl, sha256_file
from .segment import SegmentData, _document_line, _line, postings_of

__all__ = ["convert", "read_documents", "verify"]


def verify(version_dir: Path, manifest: dict[str, Any]) -> str | None:
    """The first file that is missing or does not match its checksum, or None."""
    for name, expected in manifest["files"].items():
        file = version_dir / name
        if not file.is_file() or sha256_file(file) != expected:
            return str(file)
    return None


def read_documents(version_dir: Path) -> list[Document]:
    return [
        Document(row["id"], row["source"], row["text"], tuple(row["headlines"]), row.get("name", ""), row.get("pages", ()))
        for row in read_jsonl(version_dir / "documents.jsonl")
    ]


def convert(version_dir: Path, dimension: int) -> SegmentData:
    """The whole format-1 version as one segment (same keys, rows in the same order, BM25 from its tokens)."""
    catalogue, documents = [], []
    first_row: dict[str, int] = {}
    chunks, keys, tokens = [], [], []
    for row in read_jsonl(version_dir / "chunks.jsonl"):
        keys.append(row.pop("key"))
        tokens.append(row.pop("tokens"))
        chunk = Chunk(**row)
        first_row.setdefault(chunk.doc_id, len(chunks))
        chunks.append(_line(chunk.to_dict()))
    for row in read_jsonl(version_dir / "documents.jsonl"):
        ids = row["chunk_ids"]
        start = first_row.get(row["id"], len(chunks)) if ids else len(chunks)
        catalogue.append([row["id"], row["source"], row.get("name", ""), row["added_at"], int(row.get("updated", False)), start, len(ids)])
        documents.append(_document_line(row["text"], row["headlines"], row.get("pages", ()), ids))
    # Documents in the order of their chunks, so that each one's rows are contiguous after the one before.
    order = sorted(range(len(catalogue)), key=lambda n: catalogue[n][5])
    catalogue, documents = [catalogue[n] for n in order], [documents[n] for n in order]
    index = faiss.read_index(str(version_dir / "vectors.faiss"))
    ids = faiss.vector_to_array(faiss.downcast_index(index).id_map)
    flat = faiss.downcast_index(faiss.downcast_index(index).index)
    stored = faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, index.d)
    order = np.argsort(ids, kind="stable")
    keys_array = np.asarray(keys, dtype=np.int64)
    if not np.array_equal(ids[order], keys_array):
        raise ValueError(f"{version_dir}: the vectors' keys are not the chunks' keys")
    return SegmentData(catalogue, documents, chunks, keys_array, stored[order].copy(), *postings_of(tokens))
