"""Chinese news question answering with citations: hybrid retrieval over cleaned, chunked articles."""

from .assistant import Assistant
from .knowledge import IngestReport, KnowledgeBase
from .settings import Settings
from .types import Answer, Chunk, Citation, Document, Hit

__all__ = ["Answer", "Assistant", "Chunk", "Citation", "Document", "Hit", "IngestReport", "KnowledgeBase", "Settings"]
