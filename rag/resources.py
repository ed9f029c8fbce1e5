"""Files shipped inside the package, read through :mod:`importlib.resources` so a wheel works anywhere.

In the source tree they live in the top-level ``prompts/`` and ``seeds/`` folders; ``pyproject.toml``
maps those to the ``rag.prompts`` and ``rag.seeds`` packages (for wheels and editable installs alike).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

__all__ = ["prompt_text", "seeds_dir"]


@cache
def prompt_text(name: str) -> str:
    """The prompt template ``<name>.txt``, stripped."""
    return files("rag.prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8").strip()


def seeds_dir() -> Path:
    """The folder of the bundled newspaper pages (the default knowledge base's corpus)."""
    return Path(str(files("rag.seeds")))
