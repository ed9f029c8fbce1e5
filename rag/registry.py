"""Named knowledge bases: each one its own versioned index, a subfolder ``<data_dir>/<name>``.

The CLI (``rag kb``), the page's selector and the API all go through these functions. The default
knowledge base (``"default"``) always exists: it is built from the bundled pages when first opened,
and ``RAG_INDEX_DIR`` may put it elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .settings import DEFAULT_KB, Settings, check_kb_name

if TYPE_CHECKING:
    from .assistant import Assistant

__all__ = [
    "AssistantCache",
    "KnowledgeBaseExistsError",
    "create_knowledge_base",
    "delete_knowledge_base",
    "knowledge_base_path",
    "list_knowledge_bases",
    "open_knowledge_base",
]


class KnowledgeBaseExistsError(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"知识库“{name}”已存在")


def _settings(name: str, settings: Settings | None) -> Settings:
    return (settings or Settings()).with_overrides(kb=check_kb_name(name))


def knowledge_base_path(name: str, settings: Settings | None = None) -> Path:
    """The index folder of knowledge base ``name`` (``ValueError`` for an unsafe name)."""
    return _settings(name, settings).index_path


def list_knowledge_bases(settings: Settings | None = None) -> list[str]:
    """The names of the knowledge bases: ``"default"`` first, then the others in name order."""
    from .store import backend

    settings = settings or Settings()
    store = backend(settings)
    names = []
    if settings.data_dir.is_dir():
        names = sorted(
            p.name
            for p in settings.data_dir.iterdir()
            if p.name != DEFAULT_KB and p.is_dir() and store.exists(p) and _is_name(p.name)
        )
    return [DEFAULT_KB, *names]


def _is_name(name: str) -> bool:
    try:
        check_kb_name(name)
    except ValueError:
        return False
    return True


def create_knowledge_base(name: str, settings: Settings | None = None, *, embeddings=None) -> Path:
    """Create an empty knowledge base; :class:`KnowledgeBaseExistsError` if it exists. Returns its folder.

    ``embeddings``: an already loaded model of ``settings`` (else it is loaded)."""
    from .knowledge import KnowledgeBase
    from .store import backend

    settings = _settings(name, settings)
    path = settings.index_path
    if backend(settings).exists(path) or name == DEFAULT_KB:
        raise KnowledgeBaseExistsError(name)
    KnowledgeBase.create(settings, embeddings=embeddings)
    return path


def delete_knowledge_base(name: str, settings: Settings | None = None) -> Path:
    """Remove knowledge base ``name``: its index folder (documents, uploads, versions) and, for a Milvus
    server, its collections there; nothing else.

    Only a folder that holds an index is removed. The default knowledge base is rebuilt from the bundled
    pages the next time it is opened. ``KeyError`` if there is no such knowledge base."""
    from .store import backend

    settings = _settings(name, settings)
    path, store = settings.index_path, backend(settings)
    if not store.exists(path):
        raise KeyError(f"知识库“{name}”不存在")
    store.destroy(path, settings)
    return path


def open_knowledge_base(name: str = DEFAULT_KB, settings: Settings | None = None, **options):
    """The :class:`~rag.knowledge.KnowledgeBase` named ``name`` (options as for ``KnowledgeBase.open``)."""
    from .knowledge import KnowledgeBase

    return KnowledgeBase.open(_settings(name, settings), **options)


class AssistantCache:
    """The assistants of one server by knowledge-base name, opened on first use and kept (the page and the
    API share one); all of them share the first one's settings and its loaded embedding model."""

    def __init__(self, first: "Assistant") -> None:
        import threading

        self.settings = first.settings
        self.first = first
        self._embeddings = first.knowledge.embeddings
        self._open = {first.knowledge.name: first}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every knowledge base on disk, and any opened here (the API lists them as models)."""
        on_disk = list_knowledge_bases(self.settings)
        return on_disk + sorted(set(self._open) - set(on_disk))

    def get(self, name: str) -> "Assistant":
        """The assistant of knowledge base ``name``; ``KeyError`` for a name that was never created."""
        from .assistant import Assistant
        from .knowledge import KnowledgeBase

        if name not in self._open and name not in list_knowledge_bases(self.settings):
            raise KeyError(name)
        with self._lock:  # one opening at a time: two visitors must not build the same index twice
            if name not in self._open:
                settings = _settings(name, self.settings)
                knowledge = KnowledgeBase.open(settings, embeddings=self._embeddings)
                self._open[name] = Assistant(knowledge, settings)
            return self._open[name]

    def create(self, name: str) -> Path:
        """:func:`create_knowledge_base` with the loaded model."""
        return create_knowledge_base(name, self.settings, embeddings=self._embeddings)

    def forget(self, name: str) -> None:
        """Drop an assistant (after its knowledge base was deleted); the first one stays."""
        with self._lock:
            if name != self.first.knowledge.name:
                self._open.pop(name, None)
