"""The plain LangChain baseline every report is compared against.

What a tutorial would build: ``RecursiveCharacterTextSplitter(500, 50)`` over the raw text, a FAISS
inner-product index of the same embeddings, the raw question as the query. No cleaning, no
traditional → simplified conversion, no BM25, no headlines, no near-duplicate collapse.
"""

from __future__ import annotations

import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter
from tqdm.auto import tqdm

from ..answer.chain import AnswerChain, Request
from ..answer.extractive import ExtractiveGenerator
from ..answer.script import target_script
from ..embeddings import DenseEmbeddings
from ..settings import Settings
from ..store import BM25, FaissVectorStore
from ..text import normalize, tokenize
from ..types import Answer, Chunk, Document, Hit

CHUNK_SIZE = 500
CHUNK_OVERLAP = 50


def split_naively(document: Document) -> list[Chunk]:
    """Chunks of the raw text; ``text == document.text[start:end]`` as for our own chunks."""
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True)
    chunks = []
    for number, piece in enumerate(splitter.create_documents([document.text])):
        start = piece.metadata["start_index"]
        end = start + len(piece.page_content)
        chunks.append(
            Chunk(
                id=f"{document.id}-n{number:04d}",
                doc_id=document.id,
                source=document.source,
                text=piece.page_content,
                clean=piece.page_content,
                normalized=normalize(piece.page_content),  # the field's contract; the baseline never searches it
                title="",
                start=start,
                end=end,
                line_start=document.text.count("\n", 0, start) + 1,
                line_end=document.text.count("\n", 0, max(start, end - 1)) + 1,
            )
        )
    return chunks


class NaiveRetriever:
    """Dense-only search over naively split raw text; ``search(question, k)`` like our retriever."""

    def __init__(self, documents: list[Document], embeddings: DenseEmbeddings, *, progress: bool = False) -> None:
        self.embeddings = embeddings
        self.chunks: list[Chunk] = []
        for document in tqdm(documents, desc="naive split", unit="doc", disable=not progress or len(documents) < 2):
            self.chunks.extend(split_naively(document))
        self.vectors = FaissVectorStore(embeddings.dimension)
        if self.chunks:
            vectors = embeddings.embed_passages([c.text for c in self.chunks], progress=progress)
            self.vectors.add(np.arange(len(self.chunks), dtype=np.int64), vectors)

    def search(self, question: str, k: int = 5, mode: str | None = None) -> list[Hit]:
        """The ``k`` nearest chunks to the raw question (``mode`` is accepted and ignored: dense only)."""
        if not question.strip() or not self.chunks:
            return []
        keys, scores = self.vectors.search(self.embeddings.embed_queries([question])[0], k)
        return [
            Hit(self.chunks[int(key)], float(score), rank=rank, scores={"dense": float(score)})
            for rank, (key, score) in enumerate(zip(keys, scores), start=1)
        ]


class NaiveAssistant:
    """The baseline's passages answered by our extractive generator, so answers compare like for like.

    The generator weighs question terms by IDF; the baseline has no lexical index, so the IDF comes
    from a BM25 table over its own chunks, used for nothing else."""

    def __init__(self, retriever: NaiveRetriever, settings: Settings) -> None:
        self.settings = settings
        idf = BM25([tokenize(chunk.text) for chunk in retriever.chunks]).idf
        self._runnable = AnswerChain(lambda _settings: retriever, ExtractiveGenerator(idf)).runnable()

    def ask(self, question: str) -> Answer:
        question = question.strip()
        script = target_script(question, self.settings.answer_script)
        return self._runnable.invoke(Request(question, [], self.settings, script))
