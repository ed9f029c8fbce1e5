"""``evaluate``: every configuration on the same questions, side by side.

Configurations that build the same index (same :meth:`Settings.index_fingerprint`) share one
build in a temporary directory; bm25, dense and hybrid differ only at search time.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..assistant import Assistant
from ..embeddings import DenseEmbeddings, load_embeddings
from ..knowledge import KnowledgeBase
from ..settings import Settings
from ..types import Answer, Chunk, Document, Hit
from .configs import EvalConfig, parse_configs
from .datasets import DatasetFormat, load_dataset
from .evaluators import AnswerEvaluator, RelevanceJudge, RetrievalEvaluator
from .naive import CHUNK_OVERLAP, CHUNK_SIZE, NaiveAssistant, NaiveRetriever

log = logging.getLogger(__name__)
KS = (1, 3, 5, 10)
#: Settings recorded with each config's results (besides the index fingerprint), for reproducibility.
_RECORDED = ("mode", "k", "candidates", "rrf_k", "weight_bm25", "weight_dense", "dedupe_threshold", "reranker",
             "generator", "answer_script", "refusal_threshold", "max_answer_sentences")


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


@dataclass
class System:
    """One configuration ready to evaluate: the corpus chunks it searches, and its two entry points."""

    chunks: list[Chunk]
    search: Callable[[str, int], list[Hit]]
    ask: Callable[[str], Answer]
    build: dict[str, float]


class Builds:
    """Indexes (and embedding models) built once per fingerprint in ``workdir`` and shared by configs."""

    def __init__(self, documents: list[Document], workdir: Path, progress: bool = False) -> None:
        self.documents = documents
        self.workdir = workdir
        self.progress = progress
        self._embeddings: dict[str, DenseEmbeddings] = {}
        self._built: dict[str, tuple[KnowledgeBase | NaiveRetriever, dict[str, float]]] = {}

    def embeddings(self, settings: Settings) -> DenseEmbeddings:
        key = json.dumps([settings.embedding_model, settings.embedding_quantize, settings.embedding_device])
        if key not in self._embeddings:
            self._embeddings[key] = load_embeddings(settings)
        return self._embeddings[key]

    def system(self, config: EvalConfig, settings: Settings) -> System:
        fingerprint = settings.index_fingerprint()
        if config.naive:
            fingerprint = {"naive": True, "embedding_model": settings.embedding_model}
        key = json.dumps(fingerprint, sort_keys=True)
        if key not in self._built:
            self._built[key] = self._build(config, settings)
        built, build = self._built[key]
        if isinstance(built, NaiveRetriever):
            return System(built.chunks, built.search, NaiveAssistant(built, settings).ask, build)
        knowledge = built.with_settings(settings)  # configs sharing a build differ only at search and answer time
        # The retriever directly: no index refresh check per search (the index is private to this run).
        search = lambda question, k: knowledge.retriever.search(question, k=k)  # noqa: E731
        return System(knowledge.chunks(), search, Assistant(knowledge, settings).ask, build)

    def _build(self, config: EvalConfig, settings: Settings) -> tuple[KnowledgeBase | NaiveRetriever, dict[str, float]]:
        embeddings = self.embeddings(settings)
        log.info("building the %s index of %d documents", "naive" if config.naive else "shared", len(self.documents))
        started = time.perf_counter()
        built: KnowledgeBase | NaiveRetriever
        if config.naive:
            built = NaiveRetriever(self.documents, embeddings, progress=self.progress)
            chunks = len(built.chunks)
        else:
            path = self.workdir / f"index{len(self._built)}"
            built = KnowledgeBase.create(settings.with_overrides(index_dir=path), embeddings=embeddings)
            built.add_documents(self.documents, progress=self.progress)
            chunks = built.stats().chunks
        seconds = time.perf_counter() - started
        return built, {
            "documents": float(len(self.documents)),
            "chunks": float(chunks),
            "seconds": seconds,
            "chunks_per_s": chunks / seconds if seconds else 0.0,
            "peak_rss_mib": peak_rss_mib(),
        }


def _merge_rows(config: str, retrieval: list[dict], answers: list[dict]) -> list[dict[str, Any]]:
    by_id = {row["id"]: row for row in retrieval}
    merged = []
    for row in answers:
        extra = by_id.get(row["id"], {})
        merged.append({"config": config, **row, **{k: v for k, v in extra.items() if k not in row}})
    return merged


def evaluate(
    dataset: str | Path,
    format: DatasetFormat | None = None,
    corpus: str | Path | None = None,
    configs: list[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    settings: Settings | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate each config on the dataset; return the metrics dict (and write the report to ``out``).

    ``configs`` are specs like ``"bm25"`` or ``"chunk300 chunk_size=300"`` (default: bm25, dense,
    hybrid, naive). ``limit`` evaluates a fixed random sample of questions (``seed``); the corpus
    stays whole."""
    from .report import console_table, write_report

    base = settings or Settings()
    parsed = parse_configs(configs)
    full = load_dataset(dataset, format, corpus)
    data = full.sample(limit, seed)
    metrics: dict[str, Any] = {
        "dataset": {
            "name": data.name,
            "path": str(dataset),
            "format": data.format,
            "documents": len(data.documents),
            "questions": len(data.items),
            "questions_in_file": len(full.items),
            "unanswerable": sum(not item.answerable for item in data.items),
            "limit": limit,
            "seed": seed,
        },
        "machine": machine(),
        "configs": {},
    }
    rows: list[dict[str, Any]] = []
    curves: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as workdir:
        builds = Builds(data.documents, Path(workdir), progress)
        for config in parsed:
            config_settings = config.settings(base)
            system = builds.system(config, config_settings)
            judge = RelevanceJudge(system.chunks)
            retrieval = RetrievalEvaluator(data.items, judge, KS, progress, config.name)
            answers = AnswerEvaluator(data.items, judge, progress, config.name)
            retrieval_metrics = retrieval(system.search)
            answer_metrics = answers(system.ask)
            types = sorted({item.type for item in data.items})
            metrics["configs"][config.name] = {
                "label": config.label(),
                "overrides": config.overrides,
                "settings": _recorded(config, config_settings),
                "build": system.build,
                "retrieval": retrieval_metrics,
                "answers": answer_metrics,
                "by_type": {
                    t: {
                        "retrieval": retrieval.aggregate([r for r in retrieval.rows if r["type"] == t]),
                        "answers": answers.aggregate([r for r in answers.rows if r["type"] == t]),
                    }
                    for t in types
                },
                "peak_rss_mib": peak_rss_mib(),
            }
            curves[config.name] = retrieval.curve()
            rows.extend(_merge_rows(config.name, retrieval.rows, answers.rows))
    metrics["hit_curves"] = curves
    print(console_table(metrics))
    if out is not None:
        write_report(metrics, rows, Path(out))
    return metrics


def _recorded(config: EvalConfig, settings: Settings) -> dict[str, Any]:
    recorded = {**settings.index_fingerprint(), **{field: getattr(settings, field) for field in _RECORDED}}
    if config.naive:
        recorded.update(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, mode="dense (raw text)")
    return recorded


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": _cpu_name(),
        "cpus": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


__all__ = ["Builds", "System", "evaluate", "machine", "peak_rss_mib"]
