"""Training the reader: frozen lower layers run once and cached, upper layers and head fine-tuned.

``python bench/train_reader.py`` drives this; see its ``--help``. The protocol never scores a reader on
questions it was trained on: train on DRCD → score CMRC and the reverse.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from .data import QASet
from .features import Window, encode_passage, encode_question, windows
from .metrics import exact_match, span_f1
from .model import Encoder, SpanHead, init_head
from .predict import best_span
from .tokenizer import Tokenizer


@dataclass
class Cached:
    """Windows with their frozen-layer states (float16), and the example each belongs to."""

    windows: list[Window]
    example: list[int]
    states: list[torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    frozen: int = 4
    trained: int = 6
    epochs: int = 3
    batch: int = 32
    lr: float = 1.5e-4
    head_lr: float = 1e-3
    negatives: float = 0.5  # answer-less windows per question, drawn from the same context
    seed: int = 13


def training_windows(tokenizer: Tokenizer, qaset: QASet, negatives: float, seed: int) -> tuple[list[Window], list[int]]:
    """One window holding the answer per question, and some that do not (to learn the no-answer score)."""
    rng = random.Random(seed)
    passages = {}
    chosen, owners = [], []
    for index, example in enumerate(qaset.examples):
        if example.context_id not in passages:
            passages[example.context_id] = encode_passage(tokenizer, qaset.contexts[example.context_id])
        answer = (example.answer_start, example.answer_start + len(example.answers[0]))
        all_windows = windows(tokenizer, encode_question(tokenizer, example.question), passages[example.context_id], answer)
        positive = [w for w in all_windows if w.start > 0]
        negative = [w for w in all_windows if w.start == 0 and not _mentions(w, qaset.contexts[example.context_id], example)]
        if not positive:
            continue
        chosen.append(rng.choice(positive))
        owners.append(index)
        if negative and rng.random() < negatives:
            chosen.append(rng.choice(negative))
            owners.append(index)
    return chosen, owners


def _mentions(window: Window, context: str, example) -> bool:
    """Whether the window's text contains an answer string anyway (then it is no clean negative)."""
    text = context[window.spans[0][0] : window.spans[-1][1]] if window.spans else ""
    return any(answer in text for answer in example.answers)


def evaluation_windows(tokenizer: Tokenizer, qaset: QASet, indices: list[int]) -> tuple[list[Window], list[int]]:
    passages = {}
    chosen, owners = [], []
    for index in indices:
        example = qaset.examples[index]
        if example.context_id not in passages:
            passages[example.context_id] = encode_passage(tokenizer, qaset.contexts[example.context_id])
        for window in windows(tokenizer, encode_question(tokenizer, example.question), passages[example.context_id]):
            chosen.append(window)
            owners.append(index)
    return chosen, owners


def _batches(lengths: list[int], size: int, shuffle: random.Random | None) -> list[list[int]]:
    """Indices in batches of similar length (little padding); shuffled batch order when training."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    if shuffle is not None:
        shuffle.shuffle(batches)
    return batches


def _pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.ones((len(rows), width), dtype=torch.long)  # 1 is <pad>
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask


@torch.inference_mode()
def cache_states(encoder: Encoder, items: list[Window], owners: list[int], label: str, batch: int = 64) -> Cached:
    states: list[torch.Tensor | None] = [None] * len(items)
    bar = tqdm(total=len(items), desc=f"frozen layers: {label} windows", unit="win")
    for chunk in _batches([len(w.ids) for w in items], batch, None):
        ids, mask = _pad([items[i].ids for i in chunk])
        hidden = encoder(ids, mask).to(torch.float16)
        for row, i in enumerate(chunk):
            states[i] = hidden[row, : len(items[i].ids)].clone()
        bar.update(len(chunk))
    bar.close()
    return Cached(items, owners, states)  # type: ignore[arg-type]


def _stack(rows: list[tuple[Cached, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached states of windows (each named by its cache and index), padded into one batch, and their mask."""
    width = max(len(cached.windows[i].ids) for cached, i in rows)
    hidden = torch.zeros((len(rows), width, rows[0][0].states[rows[0][1]].shape[-1]))
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (cached, i) in enumerate(rows):
        n = len(cached.windows[i].ids)
        hidden[row, :n] = cached.states[i].float()
        mask[row, :n] = 1
    return hidden, mask


def train_head(file, cached: list[Cached], config: TrainConfig, label: str) -> SpanHead:
    torch.manual_seed(config.seed)
    head = init_head(file, config.frozen, config.trained)
    items = [(c, i) for c in cached for i in range(len(c.windows))]
    rng = random.Random(config.seed)
    lengths = [len(c.windows[i].ids) for c, i in items]
    steps = config.epochs * math.ceil(len(items) / config.batch)
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in head.named_parameters() if not n.startswith("span.")], "lr": config.lr},
            {"params": head.span.parameters(), "lr": config.head_lr},
        ],
        weight_decay=0.01,
    )
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    head.train()
    bar = tqdm(total=steps, desc=f"training on {label}", unit="step")
    smoothed = None
    for _ in range(config.epochs):
        for chunk in _batches(lengths, config.batch, rng):
            rows = [items[j] for j in chunk]
            hidden, mask = _stack(rows)
            starts = [cached.windows[i].start for cached, i in rows]
            ends = [cached.windows[i].end for cached, i in rows]
            start_logits, end_logits = head(hidden, mask)
            loss = (F.cross_entropy(start_logits, torch.tensor(starts)) + F.cross_entropy(end_logits, torch.tensor(ends))) / 2
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            smoothed = loss.item() if smoothed is None else 0.95 * smoothed + 0.05 * loss.item()
            bar.set_postfix(loss=f"{smoothed:.3f}")
            bar.update(1)
    bar.close()
    head.eval()
    return head


@torch.inference_mode()
def evaluate(head: SpanHead, cached: Cached, qaset: QASet, label: str) -> dict[str, float]:
    """Best span over each question's windows of its gold context: F1, EM, and the no-answer margins."""
    best: dict[int, tuple[float, str]] = {}
    for chunk in tqdm(_batches([len(w.ids) for w in cached.windows], 64, None), desc=f"scoring {label}", unit="batch"):
        hidden, mask = _stack([(cached, i) for i in chunk])
        start_logits, end_logits = head(hidden, mask)
        for row, i in enumerate(chunk):
            window = cached.windows[i]
            example = qaset.examples[cached.example[i]]
            span = best_span(start_logits[row], end_logits[row], window)
            if span is None:
                continue
            text = qaset.contexts[example.context_id][span.start : span.end]
            if cached.example[i] not in best or span.margin > best[cached.example[i]][0]:
                best[cached.example[i]] = (span.margin, text)
    owners = sorted(set(cached.example))
    f1 = [span_f1(best.get(i, (0, ""))[1], qaset.examples[i].answers) for i in owners]
    em = [exact_match(best.get(i, (0, ""))[1], qaset.examples[i].answers) for i in owners]
    margins = [best[i][0] for i in owners if i in best]
    return {
        "questions": float(len(owners)),
        "f1": float(np.mean(f1)),
        "em": float(np.mean(em)),
        "margin_p10": float(np.percentile(margins, 10)) if margins else 0.0,
    }


def timed(label: str):
    started = time.perf_counter()
    return lambda: print(f"{label}: {time.perf_counter() - started:.0f} s", flush=True)
