"""Drives load against a running chat page over its own API (the handlers the browser uses).

Used by tests/test_load.py (short, in CI) and bench/bench_load.py (the full run). Each simulated
user is a ``gradio_client.Client`` with its own session that asks questions through ``/chat`` one
after another until the phase's deadline, starting a new conversation every few questions (as a
reader who clears the chat). A separate library client may upload generated news files through
``/upload`` meanwhile, check each is answerable through ``/ask``, and delete some through ``/delete``.

An answer is *served* when the page shows an answer or a refusal; an exception, the page's error
message or a missing answer is an *error*. An answer whose text (without its ``[n]`` markers, which
follow the passages' ranks and so move when a document is added) differs from the one the idle app
gave to the same question (see :func:`baseline`) is counted as *changed*: a race between answering
and indexing would show up there.

:class:`ApiClients` does the same over the OpenAI-compatible API on the same server: each client is
the official ``openai`` client asking ``/v1/chat/completions`` (every other one streaming), its
answers compared with those of :func:`api_baseline` (the checked text, ``rag.text``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

from gradio_client import Client, handle_file

from rag.eval.metrics import percentile

_ANSWER = re.compile(r'<span class="rag-answer-text">(.*?)</span></div>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_MARKERS = re.compile(r"\[\d+\]")


def last_turn(html: str) -> str:
    """The markup of the conversation's last turn."""
    return html.rsplit('id="turn-', 1)[-1]


def answer_text(html: str) -> str | None:
    """The text of the last turn's finished answer or refusal (markers included), or None."""
    turn = last_turn(html)
    found = _ANSWER.search(turn)
    return unescape(_TAG.sub("", found.group(1))) if found and "rag-streaming" not in turn else None


def unmarked(text: str) -> str:
    """An answer's text without its citation markers."""
    return _MARKERS.sub("", text)


def chat(client: Client, question: str) -> tuple[bool, str | None, str | None]:
    """Ask through ``/chat``: (served, answer text, error)."""
    try:
        html, _ = client.predict(question, api_name="/chat")
    except Exception as error:  # noqa: BLE001 - what the user sees as a failed request
        return False, None, f"{type(error).__name__}: {error}"[:300]
    if "rag-error" in last_turn(html):
        return False, None, "the page showed its error message"
    text = answer_text(html)
    if text is None:
        return False, None, "no answer on the page"
    return True, text, None


def baseline(url: str, questions: Sequence[str], key: str | None = None) -> dict[str, str]:
    """Each question's answer from the app with nobody else asking (also warms the app up)."""
    client = Client(url, verbose=False, headers=bearer(key))
    answers = {}
    for question in dict.fromkeys(questions):
        client.reset_session()
        served, text, error = chat(client, question)
        if not served:
            raise RuntimeError(f"warm-up question {question!r} failed: {error}")
        answers[question] = unmarked(text)
    return answers


@dataclass
class Sample:
    user: int
    question: str
    seconds: float
    served: bool
    changed: bool = False
    error: str | None = None


@dataclass
class LibraryOp:
    kind: str  # "upload" or "delete"
    name: str
    seconds: float
    ok: bool
    detail: str = ""
    doc_id: str | None = None
    late: bool = False  # started after the questions had stopped


@dataclass
class PhaseReport:
    name: str
    users: int
    seconds: float  # asked for
    wall_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    library: list[LibraryOp] = field(default_factory=list)
    rss_before_mb: float | None = None
    rss_after_mb: float | None = None

    @property
    def served(self) -> list[Sample]:
        return [s for s in self.samples if s.served]

    @property
    def errors(self) -> list[Sample]:
        return [s for s in self.samples if not s.served]

    @property
    def changed(self) -> list[Sample]:
        return [s for s in self.samples if s.changed]

    def latency(self, q: float) -> float | None:
        seconds = [s.seconds for s in self.served]
        return round(percentile(seconds, q), 3) if seconds else None

    def error_examples(self, n: int = 5) -> list[str]:
        return list(dict.fromkeys(s.error or "" for s in self.errors))[:n]

    def to_dict(self) -> dict:
        return {
            "phase": self.name,
            "users": self.users,
            "seconds": self.seconds,
            "wall_s": round(self.wall_s, 2),
            "asked": len(self.samples),
            "served": len(self.served),
            "errors": len(self.errors),
            "error_examples": self.error_examples(),
            "changed": len(self.changed),
            "changed_examples": [s.question for s in self.changed[:5]],
            "answers_per_s": round(len(self.served) / self.wall_s, 2) if self.wall_s else None,
            "p50_s": self.latency(50),
            "p95_s": self.latency(95),
            "max_s": self.latency(100),
            "library": [vars(op) | {"seconds": round(op.seconds, 2)} for op in self.library],
            "rss_before_mb": _round(self.rss_before_mb),
            "rss_after_mb": _round(self.rss_after_mb),
            "rss_growth_mb": _round(
                self.rss_after_mb - self.rss_before_mb if None not in (self.rss_before_mb, self.rss_after_mb) else None
            ),
        }

    def summary(self) -> str:
        d = self.to_dict()
        lines = [
            (
                f"{d['phase']}: {d['users']} users × {d['wall_s']} s — asked {d['asked']}, served {d['served']}, "
                f"errors {d['errors']}, changed {d['changed']}; {d['answers_per_s']} answers/s; "
                f"latency p50 {d['p50_s']} s, p95 {d['p95_s']} s, max {d['max_s']} s"
            )
        ]
        if d["rss_before_mb"] is not None:
            lines.append(
                f"  server RSS {d['rss_before_mb']} MB before → {d['rss_after_mb']} MB after "
                f"({d['rss_growth_mb']:+} MB)"
            )
        lines += [f"  error: {example}" for example in d["error_examples"]]
        lines += [f"  changed answer: {q}" for q in d["changed_examples"]]
        lines += [
            f"  {op['kind']} {op['name']}: {'ok' if op['ok'] else 'FAILED'} in {op['seconds']} s"
            + (" (started after the questions)" if op["late"] else "")
            + (f" ({op['detail']})" if op["detail"] else "")
            for op in d["library"]
        ]
        return "\n".join(lines)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def bearer(key: str | None) -> dict[str, str] | None:
    """The header a client sends when the server has API keys (the page accepts them too)."""
    return {"Authorization": f"Bearer {key}"} if key else None


class Users:
    """``n`` users, each with its own client (connected once, up front) and conversation."""

    def __init__(self, url: str, n: int, questions: Sequence[str], *, turns: int = 5, key: str | None = None) -> None:
        self.url = url
        self.questions = list(questions)
        self.turns = turns  # questions per conversation before the user starts a new one
        self.clients = [Client(url, verbose=False, headers=bearer(key)) for _ in range(n)]
        self._next = [i * 7 for i in range(n)]  # users start at different questions

    def run(
        self,
        phase: PhaseReport,
        expected: dict[str, str],
        *,
        during: Callable[[float], list[LibraryOp]] | None = None,
    ) -> PhaseReport:
        """Everybody asks until ``phase.seconds`` have passed; ``during(deadline)`` runs alongside."""
        start = threading.Barrier(len(self.clients) + 1)
        lock = threading.Lock()
        deadline = [0.0]

        def user(i: int) -> None:
            client, asked = self.clients[i], 0
            start.wait()
            while time.monotonic() < deadline[0]:
                if asked and asked % self.turns == 0:
                    client.reset_session()  # a new conversation
                question = self.questions[self._next[i] % len(self.questions)]
                self._next[i] += 1
                began = time.perf_counter()
                served, text, error = chat(client, question)
                sample = Sample(i, question, time.perf_counter() - began, served, error=error)
                sample.changed = served and question in expected and unmarked(text) != expected[question]
                with lock:
                    phase.samples.append(sample)
                asked += 1

        threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(len(self.clients))]
        for thread in threads:
            thread.start()
        began = time.monotonic()
        deadline[0] = began + phase.seconds
        start.wait(timeout=60)
        if during is not None:
            phase.library += during(deadline[0])
        for thread in threads:
            thread.join()
        phase.wall_s = time.monotonic() - began
        return phase


# ---------------------------------------------------------------------------- the API clients
def _openai(url: str, key: str | None):
    import openai

    # No retries: a failed request is an error of the run, not something to hide.
    return openai.OpenAI(base_url=url.rstrip("/") + "/v1", api_key=key or "unused", max_retries=0, timeout=300)


def api_ask(client, question: str, *, stream: bool, model: str = "default") -> tuple[bool, str | None, str | None]:
    """Ask through ``/v1/chat/completions``: (served, the checked answer text, error)."""
    messages = [{"role": "user", "content": question}]
    try:
        if not stream:
            reply = client.chat.completions.create(model=model, messages=messages)
            text = (reply.model_extra or {}).get("rag", {}).get("text")
            return (True, text, None) if text and reply.choices[0].finish_reason == "stop" else (
                False, None, "no answer in the reply")
        text = None
        for chunk in client.chat.completions.create(model=model, messages=messages, stream=True):
            extra = (chunk.model_extra or {}).get("rag")
            if extra and chunk.choices and chunk.choices[0].finish_reason == "stop":
                text = extra.get("text")
        return (True, text, None) if text else (False, None, "the stream ended without its final answer")
    except Exception as error:  # noqa: BLE001 - what the API's caller sees as a failed request
        return False, None, f"{type(error).__name__}: {error}"[:300]


def api_baseline(url: str, questions: Sequence[str], key: str | None = None) -> dict[str, str]:
    """Each question's answer over the API with nobody else asking."""
    client = _openai(url, key)
    answers = {}
    for question in dict.fromkeys(questions):
        served, text, error = api_ask(client, question, stream=False)
        if not served:
            raise RuntimeError(f"warm-up question {question!r} over the API failed: {error}")
        answers[question] = unmarked(text)
    return answers


class ApiClients:
    """``n`` API callers, each its own ``openai`` client asking one question after another (odd ones stream)."""

    def __init__(self, url: str, n: int, questions: Sequence[str], *, key: str | None = None) -> None:
        self.questions = list(questions)
        self.clients = [_openai(url, key) for _ in range(n)]
        self._next = [i * 5 for i in range(n)]

    def run(self, phase: PhaseReport, expected: dict[str, str]) -> PhaseReport:
        """Everybody asks until ``phase.seconds`` have passed."""
        lock = threading.Lock()
        deadline = time.monotonic() + phase.seconds

        def caller(i: int) -> None:
            while time.monotonic() < deadline:
                question = self.questions[self._next[i] % len(self.questions)]
                self._next[i] += 1
                began = time.perf_counter()
                served, text, error = api_ask(self.clients[i], question, stream=bool(i % 2))
                sample = Sample(i, question, time.perf_counter() - began, served, error=error)
                sample.changed = served and question in expected and unmarked(text) != expected[question]
                with lock:
                    phase.samples.append(sample)

        began = time.monotonic()
        threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(len(self.clients))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        phase.wall_s = time.monotonic() - began
        return phase


def together(*runs: Callable[[], object]) -> None:
    """Run each of ``runs`` in its own thread, at the same time; return when all are done."""
    threads = [threading.Thread(target=run, daemon=True) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# ---------------------------------------------------------------------------- the library client
_PLACES = ["白沙湾", "青柳镇", "石门村", "云溪镇", "桃源乡", "龙潭村", "鹤鸣镇", "金沙湾", "松林镇", "月牙湖"]


@dataclass
class NewsFile:
    path: Path
    place: str
    question: str
    answer: str  # the fact the answer must contain


def news_files(folder: Path, count: int, paragraphs: int = 80) -> list[NewsFile]:
    """``count`` generated Chinese news files (.txt and .md by turns), each with one checkable fact."""
    files = []
    for i in range(count):
        place = _PLACES[i % len(_PLACES)] + (str(i // len(_PLACES)) if i >= len(_PLACES) else "")
        height = 30 + 7 * i
        body = [f"{place}渔港今年新建了一座灯塔，灯塔高{height}米，由{place}港务局负责管理。"]
        body += [
            f"{place}第{j}号码头今年共停靠渔船{j * 13 + i}艘次，码头上的冷库可储存水产{j * 3 + 5}吨。"
            for j in range(1, paragraphs)
        ]
        if i % 2:
            text, suffix = f"# {place}新闻\n\n" + "\n\n".join(body) + "\n", ".md"
        else:
            text, suffix = f"{place}新闻\n\n" + "\n\n".join(body) + "\n", ".txt"
        path = folder / f"{place}新闻{suffix}"
        path.write_text(text, encoding="utf-8")
        files.append(NewsFile(path, place, f"{place}的灯塔有多高？", f"{height}米"))
    return files


def upload(client: Client, news: NewsFile) -> LibraryOp:
    """Upload through ``/upload``; ok when the page says so and ``/ask`` then cites the new document."""
    began = time.perf_counter()
    try:
        rows, documents, _, message, _ = client.predict([handle_file(news.path)], api_name="/upload")
        status = rows["data"][0][1]
        doc_id = next((row[4] for row in documents["data"] if row[1].startswith(f"{news.place}新闻.")), None)
        took = time.perf_counter() - began
        if status != "✓ 完成" or doc_id is None:
            return LibraryOp("upload", news.path.name, took, False, f"{status}: {rows['data'][0][2]} / {message}")
        answer = client.predict(news.question, api_name="/ask")
        cited = [c["doc_id"] for c in answer["citations"]]
        ok = not answer["refused"] and doc_id in cited and news.answer in answer["text"]
        detail = "" if ok else f"asked {news.question!r}: {answer['text'][:80]!r}, cited {cited}"
        return LibraryOp("upload", news.path.name, took, ok, detail, doc_id)
    except Exception as error:  # noqa: BLE001 - a failed operation is reported, not raised
        return LibraryOp("upload", news.path.name, time.perf_counter() - began, False, repr(error)[:300])


def delete(client: Client, news: NewsFile, doc_id: str) -> LibraryOp:
    """Delete through ``/delete``; ok when the page says so and ``/ask`` no longer finds the document."""
    began = time.perf_counter()
    try:
        documents, _, message, _ = client.predict(doc_id, api_name="/delete")  # and the upload table
        took = time.perf_counter() - began
        listed = doc_id in [row[4] for row in documents["data"]]
        answer = client.predict(news.question, api_name="/ask")
        found = any(hit["doc_id"] == doc_id for hit in answer["passages"])
        ok = "已删除" in message and not listed and not found
        return LibraryOp("delete", news.path.name, took, ok, "" if ok else f"{message}; listed {listed}, found {found}")
    except Exception as error:  # noqa: BLE001 - a failed operation is reported, not raised
        return LibraryOp("delete", news.path.name, time.perf_counter() - began, False, repr(error)[:300])


def library_work(
    url: str, files: Sequence[NewsFile], deletes: int, key: str | None = None
) -> Callable[[float], list[LibraryOp]]:
    """A ``during`` for :meth:`Users.run`: upload the files spread over the phase, deleting the first ``deletes``.

    The uploads start spread over the first half of the phase (each when the previous work is
    done, if that is later); each deleted file goes right after its upload was checked. Work that
    could not start before the deadline is still done, and marked ``late``.
    """

    def work(deadline: float) -> list[LibraryOp]:
        client = Client(url, verbose=False, headers=bearer(key))
        ops: list[LibraryOp] = []
        began = time.monotonic()
        step = max(0.0, deadline - began) * 0.5 / max(1, len(files))
        for i, news in enumerate(files):
            time.sleep(max(0.0, began + (i + 0.5) * step - time.monotonic()))
            late = time.monotonic() > deadline
            ops.append(upload(client, news))
            ops[-1].late = late
            if ops[-1].ok and i < deletes:
                late = time.monotonic() > deadline
                ops.append(delete(client, news, ops[-1].doc_id))
                ops[-1].late = late
        return ops

    return work
