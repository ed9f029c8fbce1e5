"""A server's knowledge bases, opened in a background thread so that the server answers at once.

The first knowledge base (``settings.kb``; the default one is built from the bundled pages when
missing) is opened or built while the page is already served: the page shows :meth:`Startup.status`
(in Chinese, with the build's progress and an estimate of the time left), the API answers 503
(:class:`NotReadyError`) until it is ready, and an error (a damaged index, nothing to index) stays
on the page as well as in the log. Once ready, a Startup is the server's
:class:`~rag.registry.AssistantCache`: the page and the API look knowledge bases up through it.

```python
startup = Startup(settings).start()
startup.status().message        # "正在建立知识库“default”：编码段落 第 320/1200 段，约剩 40 秒"
startup.wait()                  # the final Status: ready or failed
startup.get("default").ask("黑龙江的边境线有多长？")
```
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .progress import Step, observe
from .settings import Settings

if TYPE_CHECKING:
    from .assistant import Assistant
    from .registry import AssistantCache

__all__ = ["NotReadyError", "Startup", "Status"]

log = logging.getLogger(__name__)

#: What each stage of a build counts, for the page.
_STAGES = {"chunking": ("切分文档", "篇"), "embedding": ("编码段落", "段"), "ocr": ("文字识别", "页")}


@dataclass(frozen=True)
class Status:
    state: Literal["loading", "ready", "failed"]
    message: str  # one line in Chinese, for the page (and the API's 503)
    detail: str = ""  # what went wrong, as the library said it (file names, the command that repairs it)
    step: Step | None = None  # the build's current stage, while building
    eta: float | None = None  # seconds the build still needs (estimated from the embedding rate)
    elapsed: float = 0.0


class NotReadyError(RuntimeError):
    """The knowledge bases are not ready: still loading, or they failed to load (see ``status``)."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.message + (f"（{status.detail}）" if status.detail else ""))
        self.status = status


class Startup:
    """The assistants of one server, available once the first knowledge base is open."""

    def __init__(self, settings: Settings, *, warm_up: str | None = None) -> None:
        """``warm_up``: a question asked once before the server is ready, so that the tokenizer's dictionary,
        the reader and the caches are loaded then rather than on the first visitor's question."""
        self.settings = settings
        self.warm_up = warm_up
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._cache: AssistantCache | None = None
        self._began = time.monotonic()
        self._building = False
        self._step: Step | None = None
        self._stage_began = self._step_at = self._began
        self._phase = ""  # what happens outside a build's stages ("warming up")
        self._failure: Status | None = None

    @classmethod
    def ready(cls, assistant: Assistant) -> Startup:
        """An already open assistant (the page over it needs no loading)."""
        from .registry import AssistantCache

        startup = cls(assistant.settings)
        startup._cache = AssistantCache(assistant)
        startup._done.set()
        return startup

    def start(self) -> Startup:
        """Open (or build) the knowledge base in a daemon thread; progress goes to this context's observers too."""
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(self._load,), name="rag-startup", daemon=True).start()
        return self

    # ------------------------------------------------------------------ state
    def status(self) -> Status:
        with self._lock:
            elapsed = time.monotonic() - self._began
            if self._failure is not None:
                return Status("failed", self._failure.message, self._failure.detail, elapsed=elapsed)
            if self._cache is not None:
                return Status("ready", f"知识库“{self.settings.kb}”已就绪", elapsed=elapsed)
            return self._loading(elapsed)

    def wait(self, timeout: float | None = None) -> Status:
        """The status once loading has ended (or after ``timeout`` seconds)."""
        self._done.wait(timeout)
        return self.status()

    @property
    def assistants(self) -> AssistantCache:
        """The server's assistants; :class:`NotReadyError` while loading or after a failure."""
        cache = self._cache
        if cache is None:
            raise NotReadyError(self.status())
        return cache

    # ------------------------------------------------------------------ the AssistantProvider of the API
    def names(self) -> list[str]:
        return self.assistants.names()

    def get(self, name: str) -> Assistant:
        return self.assistants.get(name)

    # ------------------------------------------------------------------ internals
    def _loading(self, elapsed: float) -> Status:
        kb = self.settings.kb
        step, eta = self._step, None
        if self._phase:
            message = self._phase
        elif step is None:
            message = f"首次运行，正在建立知识库“{kb}”…" if self._building else f"正在打开知识库“{kb}”…"
        else:
            label, unit = _STAGES.get(step.stage, (step.stage, step.unit))
            message = f"正在建立知识库“{kb}”：{label} 第 {step.done}/{step.total} {unit}"
            if step.stage == "embedding" and 0 < step.done < step.total:
                # the rate so far, counted down between the updates (which come a batch at a time)
                per_unit = (self._step_at - self._stage_began) / step.done
                eta = max(1.0, per_unit * (step.total - step.done) - (time.monotonic() - self._step_at))
                message += f"，约剩 {_duration(eta)}"
        return Status("loading", message, step=step, eta=eta, elapsed=elapsed)

    def _observe(self, step: Step) -> None:
        with self._lock:
            self._step_at = time.monotonic()
            if self._step is None or self._step.stage != step.stage:
                self._stage_began = self._step_at
            self._step = step

    def _load(self) -> None:
        from .assistant import Assistant
        from .knowledge import KnowledgeBase
        from .registry import AssistantCache

        try:
            building = not KnowledgeBase.exists(self.settings)
            with self._lock:
                self._building = building
            with observe(self._observe):
                assistant = Assistant.load(self.settings, progress=True)
            if self.warm_up and assistant.knowledge.documents:
                with self._lock:
                    self._phase = f"知识库“{self.settings.kb}”已打开，正在加载分词词典和阅读模型…"
                assistant.ask(self.warm_up)
            cache = AssistantCache(assistant)
            with self._lock:
                self._cache = cache
            count = len(assistant.knowledge.documents)
            log.info("knowledge base %r ready: %d documents", self.settings.kb, count)
        except Exception as error:  # every failure is shown on the page; the server keeps answering
            failure = _failure(self.settings.kb, error)
            log.error("%s %s", failure.message, failure.detail, exc_info=not _expected(error))
            with self._lock:
                self._failure = failure
        finally:
            self._done.set()


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    return f"{seconds} 秒" if seconds < 60 else f"{seconds // 60} 分 {seconds % 60} 秒"


def _expected(error: Exception) -> bool:
    from .embeddings import EmbeddingError
    from .knowledge import NothingToIndexError
    from .store import IndexStoreError

    return isinstance(error, (IndexStoreError, EmbeddingError, NothingToIndexError))


def _failure(kb: str, error: Exception) -> Status:
    """The page's words for what went wrong, and the library's own message as the detail."""
    from .embeddings import EmbeddingError
    from .knowledge import KnowledgeBaseNotFoundError, NothingToIndexError
    from .store import IndexStoreError

    detail = str(error)
    if isinstance(error, KnowledgeBaseNotFoundError):
        return Status("failed", detail)  # already in Chinese, with the command that creates it
    if isinstance(error, IndexStoreError):
        message = f"无法打开知识库“{kb}”：索引已损坏或无法读取。请按提示重建索引后重启服务。"
    elif isinstance(error, EmbeddingError):
        message = "无法加载嵌入模型，知识库无法打开。请检查 embedding_model 设置后重启服务。"
    elif isinstance(error, NothingToIndexError):
        message = f"无法建立知识库“{kb}”：语料中没有可读取的文件（支持 .txt、.md、.html、.pdf、.docx）。"
    else:
        message = f"启动时出错，知识库“{kb}”无法打开。详情见服务器日志。"
        detail = f"{type(error).__name__}: {error}"
    return Status("failed", message, detail)
