"""HTML: visible text only (no scripts, styles or markup), one block element per line."""

from __future__ import annotations

from .encoding import decode

_INVISIBLE = ("script", "style", "noscript", "template", "head", "iframe", "svg", "object", "embed")


def read_html(data: bytes, source: str) -> str:
    from bs4 import BeautifulSoup  # ~0.1 s: only once an HTML file comes in

    soup = BeautifulSoup(decode(data, source)[0], "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    for tag in soup(_INVISIBLE):
        tag.decompose()
    body = soup.get_text("\n")
    lines = [line.strip() for line in body.splitlines()]
    text = "\n\n".join(line for line in lines if line)
    return f"{title}\n\n{text}" if title and not text.startswith(title) else text
