"""Weights shipped with the package: float16 safetensors beside a JSON manifest holding their SHA-256.

Shared by the reader (``rag/reader/weights/``) and the distilled query encoder
(``rag/embeddings/weights/``). Tensors load as NumPy arrays, so a user of them that does not need
PyTorch never imports it. A missing, truncated or altered file raises the caller's error type with
the file's path and the caller's hint on how to restore it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .store.files import sha256_file


def manifest_path(path: Path) -> Path:
    return path.with_suffix(".json")


def write_weights(tensors: dict[str, np.ndarray], path: Path, manifest: dict[str, Any]) -> str:
    """Save ``tensors`` as float16 and ``manifest`` plus their SHA-256 beside them; the digest."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: np.ascontiguousarray(value, dtype=np.float16) for name, value in tensors.items()}, str(path))
    path.chmod(0o644)  # package data: readable by every user of an installed copy
    digest = sha256_file(path)
    text = json.dumps({**manifest, "sha256": digest}, ensure_ascii=False, indent=2) + "\n"
    manifest_path(path).write_text(text, encoding="utf-8")
    return digest


def read_weights(
    path: Path, error: type[Exception], hint: str, what: str = "weights"
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(manifest, float32 arrays) after checking the file against the manifest's SHA-256; ``error``
    (its message naming the file, then ``hint``) when they are missing, damaged or unreadable."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    meta_path = manifest_path(path)
    for required in (path, meta_path):
        if not required.is_file():
            raise error(f"{what} missing: {required}; {hint}")
    try:
        manifest = json.loads(meta_path.read_text(encoding="utf-8"))
        expected = manifest["sha256"]
    except (ValueError, KeyError) as failure:
        raise error(f"{what} manifest unreadable: {meta_path} ({failure}); {hint}") from failure
    if sha256_file(path) != expected:
        raise error(f"{what} fail their checksum: {path}; {hint}")
    try:
        tensors = {name: value.astype(np.float32) for name, value in load_file(str(path)).items()}
    except (SafetensorError, OSError) as failure:
        raise error(f"{what} unreadable: {path} ({failure}); {hint}") from failure
    return manifest, tensors
