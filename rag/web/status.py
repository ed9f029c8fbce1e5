"""The banner over the page while the server starts: the build's progress, or why it cannot answer."""

from __future__ import annotations

from html import escape

from ..startup import Status

__all__ = ["STATUS_CSS", "status_html", "status_json"]


def status_html(status: Status) -> str:
    """Progress (stage, counts, time left) while loading; the error and its detail after a failure."""
    if status.state == "ready":
        return ""
    if status.state == "failed":
        detail = f'<div class="rag-status-detail">{escape(status.detail)}</div>' if status.detail else ""
        return f'<div class="rag-status rag-status-failed" role="alert">⚠️ {escape(status.message)}{detail}</div>'
    step = status.step
    meter = ""
    if step is not None and step.total:
        meter = f'<progress class="rag-status-meter" max="{step.total}" value="{step.done}"></progress>'
    waited = f"（已用 {round(status.elapsed)} 秒；就绪后即可提问，无需刷新页面）"
    return (
        f'<div class="rag-status rag-status-loading" role="status">⏳ {escape(status.message)}'
        f'<span class="rag-status-waited">{waited}</span>{meter}</div>'
    )


def status_json(status: Status) -> dict:
    """The same for scripts (the page's ``/status`` endpoint)."""
    step = status.step
    return {
        "state": status.state,
        "message": status.message,
        "detail": status.detail,
        "stage": step.stage if step else None,
        "done": step.done if step else None,
        "total": step.total if step else None,
        "eta_seconds": None if status.eta is None else round(status.eta, 1),
        "elapsed_seconds": round(status.elapsed, 1),
    }


STATUS_CSS = """
.rag-status { padding: .6em .9em; border-radius: 8px; line-height: 1.7; }
.rag-status-loading { background: var(--color-accent-soft); }
.rag-status-failed { background: rgba(255, 80, 0, .15); border: 1px solid rgba(255, 80, 0, .5); }
.rag-status-detail { font-family: var(--font-mono); font-size: .85em; white-space: pre-wrap; margin-top: .3em; }
.rag-status-waited { font-size: .85em; color: var(--body-text-color-subdued); }
.rag-status-meter { display: block; width: 100%; margin-top: .3em; }
"""
