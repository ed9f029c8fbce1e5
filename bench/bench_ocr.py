"""OCR of rendered newspaper pages, scored against the renderer's ground truth (tests/page_render.py).

Prints, per engine and page kind (simplified/traditional × clean/damaged): character error rate, reading-order
accuracy of blocks, headline detection rate, citation-box coverage, and per-page wall time, CPU time and peak
memory; then pages per minute at the chosen dpi.

    python bench/bench_ocr.py                       # short: first page of one simplified and the traditional seed, A4
    python bench/bench_ocr.py --size a3 --all-pages # every seed page on A3 sheets (long)

Scoring:
- CER: each ground-truth block (a headline, or one column of an article) against the OCR lines whose centres
  fall inside it, in the engine's reading order (edit distance / reference characters; whitespace ignored,
  NFKC-folded). OCR lines that fall in no block count as insertions.
- Reading order: the share of consecutive ground-truth block pairs that come out in the same order.
- Headlines: the share of the page's headlines that come out as a headline (``# `` line) with CER ≤ 0.2.
- Citation boxes: every sentence of the body is located in the OCR'd document (through a character alignment),
  its highlight boxes are computed the way citations compute them (chunk boxes clipped to the sentence), and
  the sentence counts as covered when ≥ 95 % of its characters' centres (known to the renderer) lie in them.
"""

from __future__ import annotations

import argparse
import difflib
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import page_render as pr  # noqa: E402

from rag.chunking import ChunkingConfig, chunk_document  # noqa: E402
from rag.ingest.ocr import PagedText, get_engine, reading_order, write_page  # noqa: E402
from rag.text import clean  # noqa: E402
from rag.types import Document, boxes_between  # noqa: E402

SIZES = {"small": ((8.3, 6.0), 3), "a4": ((8.27, 11.69), 4), "a3": ((11.69, 16.54), 5)}
SENTENCE_END = "。！？"


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _inside(point: tuple[float, float], box: tuple[float, float, float, float], margin: float = 0.0) -> bool:
    return box[0] - margin <= point[0] <= box[2] + margin and box[1] - margin <= point[1] <= box[3] + margin


def score_page(page: pr.Page, engine_name: str) -> dict[str, float]:
    engine = get_engine(engine_name)
    cpu, wall = _cpu(), time.perf_counter()
    lines = engine.recognize(page.image)
    blocks = reading_order(lines)
    result = PagedText()
    write_page(result, blocks, 1, page.image.size)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    width, height = page.image.size
    ocr_lines = [line for block in blocks for line in block.lines]  # result.pages[i] is ocr_lines[i]

    # Assign each OCR line to the ground-truth block holding its centre.
    owner: list[int | None] = []
    for line in ocr_lines:
        centre = ((line.box[0] + line.box[2]) / 2, (line.box[1] + line.box[3]) / 2)
        owner.append(next((i for i, b in enumerate(page.blocks) if _inside(centre, b.box, 4)), None))
    errors = sum(len(pr.comparable(l.text)) for l, o in zip(ocr_lines, owner) if o is None)
    reference = 0
    positions: dict[int, int] = {}
    alignments: dict[int, dict[int, int]] = {}  # block → (block char index → document offset)
    for i, block in enumerate(page.blocks):
        mine = [n for n, o in enumerate(owner) if o == i]
        if mine:
            positions[i] = mine[0]
        hypothesis = "".join(ocr_lines[n].text for n in mine)
        errors += pr.edit_distance(pr.comparable(block.text), pr.comparable(hypothesis))
        reference += len(pr.comparable(block.text))
        offsets = [result.pages[n].start + k for n in mine for k in range(len(ocr_lines[n].text))]
        matcher = difflib.SequenceMatcher(None, block.text, hypothesis, autojunk=False)
        alignments[i] = {a + k: offsets[b + k] for a, b, size in matcher.get_matching_blocks() for k in range(size)}
    pairs = list(zip(range(len(page.blocks)), range(1, len(page.blocks))))
    in_order = sum(1 for a, b in pairs if a in positions and b in positions and positions[a] < positions[b])

    found_heads = ["".join(l.text for l in b.lines) for b in blocks if b.kind == "headline"]
    heads = page.headlines
    found = sum(1 for h in heads if any(pr.cer(h, f) <= 0.2 for f in found_heads))

    # Citation boxes, computed as citations compute them: the chunks' boxes clipped to the sentence.
    document = Document("bench", "page.png", result.text, pages=tuple(result.pages))
    chunks = chunk_document(document, clean(document.text), ChunkingConfig())
    sentences = covered = 0
    for i, block in enumerate(page.blocks):
        if block.kind != "body":
            continue
        chars = [c for line in block.lines for c in line.chars]
        start = 0
        for end in range(len(block.text)):
            if block.text[end] not in SENTENCE_END and end != len(block.text) - 1:
                continue
            mapped = [alignments[i][k] for k in range(start, end + 1) if k in alignments[i]]
            span = range(start, end + 1)
            start = end + 1
            if len(span) < 4:
                continue
            sentences += 1
            if not mapped:
                continue
            lo, hi = min(mapped), max(mapped) + 1
            boxes = [
                (b.box[0] * width, b.box[1] * height, b.box[2] * width, b.box[3] * height)
                for chunk in chunks
                if chunk.start < hi and lo < chunk.end
                for b in boxes_between(chunk.boxes, lo, hi)
                if b.box
            ]
            margin = 0.3 * (chars[0][3] - chars[0][1])
            centres = [((chars[k][0] + chars[k][2]) / 2, (chars[k][1] + chars[k][3]) / 2) for k in span]
            inside = sum(any(_inside(c, b, margin) for b in boxes) for c in centres)
            covered += inside >= 0.95 * len(centres)
    return {
        "errors": errors,
        "chars": reference,
        "pairs": len(pairs),
        "in_order": in_order,
        "headlines": len(heads),
        "found": found,
        "sentences": sentences,
        "covered": covered,
        "wall": wall,
        "cpu": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="rapidocr,tesseract")
    parser.add_argument("--size", choices=SIZES, default="a4")
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--seeds", default="002_dd50b58d08d7afa0.txt," + pr.TRADITIONAL_SEED)
    parser.add_argument("--all-pages", action="store_true", help="every page of each seed, not just the first")
    parser.add_argument("--no-damage", action="store_true")
    args = parser.parse_args()
    inches, columns = SIZES[args.size]
    pages: list[pr.Page] = []
    for seed in args.seeds.split(","):
        rendered = pr.render_seed(seed, dpi=args.dpi, page_inches=inches, columns=columns)
        pages += rendered if args.all_pages else rendered[:1]
    kinds = [("clean", pages)] + ([] if args.no_damage else [("damaged", [pr.damage(p) for p in pages])])
    print(f"{len(pages)} page(s), {args.size.upper()} at {args.dpi} dpi ({pages[0].image.size[0]}×{pages[0].image.size[1]} px), "
          f"{columns} columns; damage = {'+'.join(pr.DAMAGES)}")
    print(f"{'engine':10} {'pages':18} {'CER':>7} {'order':>7} {'heads':>7} {'boxes':>7} {'s/page':>7} {'cpu/pg':>7}")
    for engine in args.engines.split(","):
        get_engine(engine)  # load outside the timings
        totals: dict[str, float] = {}
        for kind, group in kinds:
            for script in ("simplified", "traditional"):
                chosen = [p for p in group if p.script == script]
                if not chosen:
                    continue
                scores = [score_page(p, engine) for p in chosen]
                s = {k: sum(x[k] for x in scores) for k in scores[0]}
                for k, v in s.items():
                    totals[k] = totals.get(k, 0) + v
                print(
                    f"{engine:10} {kind + ' ' + script:18} {s['errors'] / s['chars']:7.2%} {s['in_order'] / max(1, s['pairs']):7.1%} "
                    f"{s['found'] / max(1, s['headlines']):7.1%} {s['covered'] / max(1, s['sentences']):7.1%} "
                    f"{s['wall'] / len(chosen):7.1f} {s['cpu'] / len(chosen):7.1f}"
                )
        n = sum(len(g) for _, g in kinds)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # tesseract's own processes: not included
        print(
            f"{engine:10} {'all':18} {totals['errors'] / totals['chars']:7.2%} {totals['in_order'] / totals['pairs']:7.1%} "
            f"{totals['found'] / totals['headlines']:7.1%} {totals['covered'] / totals['sentences']:7.1%} "
            f"{totals['wall'] / n:7.1f} {totals['cpu'] / n:7.1f}   → {60 * n / totals['wall']:.1f} pages/min wall here, "
            f"{60 / (totals['cpu'] / n / 2):.1f} pages/min on 2 free cores (CPU time); peak RSS {peak:.0f} MB"
        )


if __name__ == "__main__":
    main()
