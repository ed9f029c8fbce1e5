"""OCR of rendered newspaper pages, scored against the renderer's ground truth (tests/page_render.py).

Prints, per engine and page kind (simplified/traditional × clean/damaged): character error rate, reading-order
accuracy of blocks, headline detection rate, citation-box coverage, and per-page wall time, CPU time and peak
memory; then pages per minute at the chosen dpi.

    python bench/bench_ocr.py                       # short: first page of one simplified and the traditional seed, A4
    python bench/bench_ocr.py --size a3 --all-pages # every seed page on A3 sheets (long)
    python bench/bench_ocr.py --qa --size a3        # every seed on A3 pages, OCR'd: retrieval and answers on the
                                                    # seed QA set against the text pages (--damaged: scanned look)

Scoring:
- CER: each ground-truth block (a headline, or one column of an article) against the OCR lines whose centres
  fall inside it, in the engine's reading order (edit distance / reference characters; whitespace ignored,
  NFKC-folded). OCR lines that fall in no block count as insertions.
- Reading order: the share of consecutive ground-truth block pairs that come out in the same order.
- Headlines: the share of the page's headlines that come out as a headline (``# `` line) with CER ≤ 0.2.
- Retrieval and answers (``--qa``): each seed typeset on pages, OCR'd, written out as the ingest writes a
  multi-page scan (headlines, paragraphs, boxes), becomes one document; the seed QA set is run (default
  settings: hybrid search, extractive answers) on these documents and on the text pages. A passage is relevant
  when it holds the evidence quote with at most 10 % of its characters wrong (OCR errors; on the text pages
  this is the exact match) — the exact-match hit@1 is printed too.
- Citation boxes: every sentence of the body is located in the OCR'd document (through a character alignment),
  its highlight boxes are computed the way citations compute them (chunk boxes clipped to the sentence), and
  the sentence counts as covered when ≥ 95 % of its characters' centres (known to the renderer) lie in them.
"""

from __future__ import annotations

import argparse
import difflib
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import page_render as pr  # noqa: E402

from rag.chunking import ChunkingConfig, chunk_document  # noqa: E402
from rag.ingest.ocr import PagedText, TextBox, get_engine, reading_order, write_page  # noqa: E402
from rag.text import clean  # noqa: E402
from rag.types import Document, boxes_between  # noqa: E402

SIZES = {"small": ((8.3, 6.0), 3), "a4": ((8.27, 11.69), 4), "a3": ((11.69, 16.54), 5)}
SENTENCE_END = "。！？"


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _inside(point: tuple[float, float], box: tuple[float, float, float, float], margin: float = 0.0) -> bool:
    return box[0] - margin <= point[0] <= box[2] + margin and box[1] - margin <= point[1] <= box[3] + margin


TESSERACT_LANGUAGES = "chi_sim+chi_tra"  # --tesseract-languages
SECOND_READER = True  # --no-second-reader: RapidOCR alone on traditional pages


def recognize(page: pr.Page, engine_name: str, threads: int = 2) -> tuple[list[TextBox], float, float]:
    """The page's OCR lines, wall seconds and CPU seconds (the engine's threads and Tesseract's processes)."""
    engine = get_engine(engine_name, TESSERACT_LANGUAGES, threads, 0, SECOND_READER)  # the bench runs under `nice` as a whole
    cpu, wall = _cpu(), time.perf_counter()
    lines = engine.recognize(page.image)
    return lines, time.perf_counter() - wall, _cpu() - cpu


def score_page(page: pr.Page, engine_name: str, threads: int = 2, lines: list[TextBox] | None = None) -> dict[str, float]:
    wall = cpu = 0.0
    if lines is None:
        lines, wall, cpu = recognize(page, engine_name, threads)
    blocks = reading_order(lines)
    result = PagedText()
    write_page(result, blocks, 1, page.image.size)
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


def _near(quote: str, text: str, tolerance: float = 0.1) -> bool:
    """``quote`` occurs in ``text`` with at most ``tolerance`` of its characters wrong (approximate substring)."""
    if quote in text:
        return True
    limit = max(1, int(tolerance * len(quote)))
    previous = [0] * (len(text) + 1)  # Sellers: a match may start anywhere in the text
    for i, q in enumerate(quote, 1):
        current = [i]
        for j, t in enumerate(text, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (q != t)))
        previous = current
    return min(previous) <= limit


def _judge(chunks):
    from rag.eval.evaluators import RelevanceJudge
    from rag.eval.metrics import squash

    def holds(chunk, item) -> frozenset[int]:
        text = squash(chunk.text)
        return frozenset(n for n, e in enumerate(item.evidence) if _near(squash(e.quote), text))

    class TolerantJudge(RelevanceJudge):
        """Quotes found with up to 10 % of their characters wrong: an OCR error in a quote is not a retrieval miss."""

        def covers(self, hit, item):
            covered = holds(hit.chunk, item)
            for chunk_id in hit.also_in:
                if chunk_id in self.chunks:
                    covered |= holds(self.chunks[chunk_id], item)
            return covered

        def count(self, item):
            return sum(bool(holds(c, item)) for c in self.chunks.values())

    return TolerantJudge(chunks)


def qa(args: argparse.Namespace) -> None:
    """OCR every seed on rendered pages and compare retrieval and answers with the text pages."""
    import tempfile
    from dataclasses import asdict

    from rag.eval.configs import parse_configs
    from rag.eval.datasets import load_jsonl
    from rag.eval.evaluators import AnswerEvaluator, RelevanceJudge, RetrievalEvaluator
    from rag.eval.runner import Builds
    from rag.ingest import content_id
    from rag.settings import Settings

    inches, columns = SIZES[args.size]
    data = load_jsonl(ROOT / "examples" / "seeds_qa.jsonl", ROOT / "seeds")
    cache = Path(args.cache) if args.cache else None
    documents, totals, n_pages, seconds, cpu = [], {}, 0, 0.0, 0.0
    for text_document in data.documents:
        seed = Path(text_document.source).name
        pages = pr.render_seed(seed, dpi=args.dpi, page_inches=inches, columns=columns)
        if args.damaged:
            pages = [pr.damage(p, seed_value=number) for number, p in enumerate(pages)]
        key = f"{seed}-{args.size}-{args.dpi}-{'damaged' if args.damaged else 'clean'}-{args.engines.split(',')[0]}.json"
        if cache and (cache / key).exists():
            recognised = [
                ([TextBox(**{**line, "box": tuple(line["box"])}) for line in lines], wall, used)
                for lines, wall, used in json.loads((cache / key).read_text(encoding="utf-8"))
            ]
        else:
            recognised = [recognize(page, args.engines.split(",")[0], args.threads) for page in pages]
            if cache:
                cache.mkdir(parents=True, exist_ok=True)
                rows = [([asdict(line) for line in lines], wall, used) for lines, wall, used in recognised]
                (cache / key).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        paged = PagedText()
        for number, (page, (lines, wall, used)) in enumerate(zip(pages, recognised), 1):
            write_page(paged, reading_order(lines), number, page.image.size)
            score = score_page(page, "", lines=lines)
            for k, v in score.items():
                totals[k] = totals.get(k, 0) + v
            seconds, cpu, n_pages = seconds + wall, cpu + used, n_pages + 1
        text = paged.text.rstrip("\n")
        cleaned = clean(text)
        headlines = tuple(cleaned.text[b.start : b.end] for b in cleaned.blocks if b.kind == "headline")
        # As the ingest makes it from a multi-page scan of the seed (rag.ingest.load_bytes).
        documents.append(Document(content_id(text.encode()), f"{Path(seed).stem}.tiff", text, headlines, pages=tuple(paged.pages)))
        found = sum(1 for h in (h for p in pages for h in p.headlines) if any(pr.cer(h, f) <= 0.2 for f in headlines))
        totals["doc_heads"] = totals.get("doc_heads", 0) + found
        print(f"{seed}: {len(pages)} page(s), {len(text)} characters, {len(headlines)} headlines", flush=True)

    print(f"\n{n_pages} {args.size.upper()} pages at {args.dpi} dpi{' (damaged)' if args.damaged else ''}: CER "
          f"{totals['errors'] / totals['chars']:.2%}, reading order {totals['in_order'] / totals['pairs']:.1%} of "
          f"{totals['pairs']} block pairs, headlines {totals['found'] / totals['headlines']:.1%} of {totals['headlines']} "
          f"(as document titles {totals['doc_heads'] / totals['headlines']:.1%}), citation boxes "
          f"{totals['covered'] / totals['sentences']:.1%} of {totals['sentences']} sentences; "
          f"{seconds / n_pages:.1f} s and {cpu / n_pages:.1f} CPU s per page")
    settings = Settings()
    (config,) = parse_configs(["hybrid"])
    results, rows = {}, {}
    with tempfile.TemporaryDirectory(prefix="rag-ocr-qa-") as workdir:
        for name, corpus in (("text pages", data.documents), ("OCR'd pages", documents)):
            system = Builds(corpus, Path(workdir) / name.split()[0], progress=False).system(config, config.settings(settings))
            exact = RetrievalEvaluator(data.items, RelevanceJudge(system.chunks), (1, 5), False)(system.search)
            judge = _judge(system.chunks)
            evaluator = RetrievalEvaluator(data.items, judge, (1, 5), False)
            retrieval = evaluator(system.search)
            rows[name] = {row["id"]: row for row in evaluator.rows}
            answers = AnswerEvaluator(data.items, judge, False)(system.ask)
            results[name] = (retrieval["hit@1"], retrieval["hit@5"], exact["hit@1"], answers["contains_gold"])
            print(f"{name:12} hit@1 {retrieval['hit@1']:.3f}  hit@5 {retrieval['hit@5']:.3f}  (exact quotes: hit@1 "
                  f"{exact['hit@1']:.3f})  contains gold {answers['contains_gold']:.3f}", flush=True)
    text_rows, ocr_rows = rows.values()
    questions = {item.id: item.question for item in data.items}
    for question_id, row in ocr_rows.items():  # what the OCR'd pages lose at rank 1
        if text_rows[question_id]["relevance"][:1] == [True] and row["relevance"][:1] != [True]:
            print(f"  lost at rank 1: {question_id} {questions[question_id]} -> {row['retrieved'][:1]}")
    (t1, _, _, tg), (o1, _, _, og) = results.values()
    print(f"difference: hit@1 {100 * (o1 - t1):+.1f} points (target within 2), contains gold {100 * (og - tg):+.1f} "
          f"points (target within 3)")


def traditional_copies(seeds: str, dpi: int, inches, columns: int, all_pages: bool) -> list[pr.Page]:
    """Seeds (by number) converted to traditional script and typeset with another draw of fonts and layout."""
    import tempfile

    from rag.text.convert import to_traditional

    pages: list[pr.Page] = []
    for number in filter(None, seeds.split(",")):
        source = next((ROOT / "seeds").glob(f"{number}_*.txt"))
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / pr.TRADITIONAL_SEED  # the renderer typesets this name in traditional fonts
            copy.write_text(to_traditional(source.read_text(encoding="utf-8")), encoding="utf-8")
            rendered = pr.render_seed(copy, dpi=dpi, page_inches=inches, columns=columns, seed_value=7)
        pages += rendered if all_pages else rendered[:1]
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="rapidocr,tesseract")
    parser.add_argument("--size", choices=SIZES, default="a4")
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--seeds", default="002_dd50b58d08d7afa0.txt," + pr.TRADITIONAL_SEED)
    parser.add_argument("--all-pages", action="store_true", help="every page of each seed, not just the first")
    parser.add_argument("--no-damage", action="store_true")
    parser.add_argument("--threads", type=int, default=2, help="RapidOCR worker threads")
    parser.add_argument("--qa", action="store_true", help="retrieval and answers on the seed QA set over OCR'd seeds")
    parser.add_argument("--damaged", action="store_true", help="--qa: OCR the damaged renders")
    parser.add_argument("--cache", help="--qa: keep the OCR lines here, so that a rerun skips the OCR")
    parser.add_argument("--tesseract-languages", default="chi_sim+chi_tra", help="e.g. chi_tra for traditional pages")
    parser.add_argument(
        "--traditional-copies",
        default="",
        help="seeds typeset again in traditional script (OpenCC s2t, other fonts), scored as their own rows: pages "
        "the traditional repairs were not developed on, e.g. 001,003,004",
    )
    parser.add_argument(
        "--second-reader",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="RapidOCR on traditional pages: Tesseract chi_tra fills in what it cannot read (as by default)",
    )
    args = parser.parse_args()
    global TESSERACT_LANGUAGES, SECOND_READER
    TESSERACT_LANGUAGES, SECOND_READER = args.tesseract_languages, args.second_reader
    if args.qa:
        return qa(args)
    inches, columns = SIZES[args.size]
    pages: list[pr.Page] = []
    for seed in args.seeds.split(","):
        rendered = pr.render_seed(seed, dpi=args.dpi, page_inches=inches, columns=columns)
        pages += rendered if args.all_pages else rendered[:1]
    kinds = [("clean", pages)] + ([] if args.no_damage else [("damaged", [pr.damage(p) for p in pages])])
    copies = traditional_copies(args.traditional_copies, args.dpi, inches, columns, args.all_pages)
    if copies:
        kinds += [("clean copy", copies)] + ([] if args.no_damage else [("damaged copy", [pr.damage(p, 3) for p in copies])])
    print(f"{len(pages) + len(copies)} page(s), {args.size.upper()} at {args.dpi} dpi ({pages[0].image.size[0]}×{pages[0].image.size[1]} px), "
          f"{columns} columns; damage = {'+'.join(pr.DAMAGES)}")
    print(f"{'engine':10} {'pages':24} {'CER':>7} {'order':>7} {'heads':>7} {'boxes':>7} {'s/page':>7} {'cpu/pg':>7}")
    for engine in args.engines.split(","):
        get_engine(engine, TESSERACT_LANGUAGES, args.threads, 0, SECOND_READER)  # load outside the timings
        totals: dict[str, float] = {}
        for kind, group in kinds:
            for script in ("simplified", "traditional"):
                chosen = [p for p in group if p.script == script]
                if not chosen:
                    continue
                scores = [score_page(p, engine, args.threads) for p in chosen]
                s = {k: sum(x[k] for x in scores) for k in scores[0]}
                for k, v in s.items():
                    totals[k] = totals.get(k, 0) + v
                print(
                    f"{engine:10} {kind + ' ' + script:24} {s['errors'] / s['chars']:7.2%} {s['in_order'] / max(1, s['pairs']):7.1%} "
                    f"{s['found'] / max(1, s['headlines']):7.1%} {s['covered'] / max(1, s['sentences']):7.1%} "
                    f"{s['wall'] / len(chosen):7.1f} {s['cpu'] / len(chosen):7.1f}"
                )
        n = sum(len(g) for _, g in kinds)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # tesseract's own processes: not included
        print(
            f"{engine:10} {'all':24} {totals['errors'] / totals['chars']:7.2%} {totals['in_order'] / totals['pairs']:7.1%} "
            f"{totals['found'] / totals['headlines']:7.1%} {totals['covered'] / totals['sentences']:7.1%} "
            f"{totals['wall'] / n:7.1f} {totals['cpu'] / n:7.1f}   → {60 * n / totals['wall']:.1f} pages/min wall here, "
            f"{60 / (totals['cpu'] / n / 2):.1f} pages/min on 2 free cores (CPU time); peak RSS {peak:.0f} MB"
        )


if __name__ == "__main__":
    main()
