"""The evaluation report: console table, ``report.md``, ``metrics.json``, ``results.jsonl`` and plots."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# (section, key, label); "ms" keys are shown with one decimal, counts as integers, the rest as fractions.
RETRIEVAL_ROWS = [
    ("retrieval", "hit@1", "hit@1"),
    ("retrieval", "hit@3", "hit@3"),
    ("retrieval", "hit@5", "hit@5"),
    ("retrieval", "hit@10", "hit@10"),
    ("retrieval", "mrr@10", "MRR@10"),
    ("retrieval", "ndcg@10", "nDCG@10"),
    ("retrieval", "search_p50_ms", "search p50 (ms)"),
    ("retrieval", "search_p95_ms", "search p95 (ms)"),
]
ANSWER_ROWS = [
    ("answers", "contains_gold", "contains gold"),
    ("answers", "f1", "char F1"),
    ("answers", "em", "exact match"),
    ("answers", "span_f1", "leading-span F1"),
    ("answers", "span_em", "leading-span EM"),
    ("answers", "refusal_precision", "refusal precision"),
    ("answers", "refusal_recall", "refusal recall"),
    ("answers", "refusal_rate", "refusal rate"),
    ("answers", "citation_precision", "citation precision"),
    ("answers", "citation_recall", "citation recall"),
    ("answers", "median_answer_chars", "median answer (chars)"),
]
LATENCY_ROWS = [
    ("answers", "retrieve_p50_ms", "retrieve p50 (ms)"),
    ("answers", "retrieve_p95_ms", "retrieve p95 (ms)"),
    ("answers", "generate_p50_ms", "generate p50 (ms)"),
    ("answers", "generate_p95_ms", "generate p95 (ms)"),
    ("answers", "total_p50_ms", "total p50 (ms)"),
    ("answers", "total_p95_ms", "total p95 (ms)"),
]
BUILD_ROWS = [
    ("build", "documents", "documents"),
    ("build", "chunks", "chunks"),
    ("build", "seconds", "index build (s)"),
    ("build", "chunks_per_s", "chunks/s"),
    ("build", "peak_rss_mib", "peak RSS after build (MiB)"),
    ("", "peak_rss_mib", "peak RSS after config (MiB)"),
]
TYPE_METRICS = [("retrieval", "hit@1"), ("retrieval", "mrr@10"), ("answers", "contains_gold"), ("answers", "f1")]
CONSOLE_ROWS = RETRIEVAL_ROWS[:6] + ANSWER_ROWS + LATENCY_ROWS + BUILD_ROWS[1:4]
WORST_PER_CONFIG = 5

#: Attribution for the public sets in ../shared/datasets (CC BY-SA asks for it).
ATTRIBUTION = {
    "cmrc2018": "CMRC 2018 dev set (Cui et al., EMNLP 2019), CC BY-SA 4.0, from the ymcui/cmrc2018 repository.",
    "drcd": "DRCD dev set (Shao et al., 2018), CC BY-SA 3.0, from the DRCKnowledgeTeam/DRCD repository.",
}


def _format(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key.endswith("_ms") or key in ("seconds", "chunks_per_s", "peak_rss_mib", "median_answer_chars"):
        return f"{value:.1f}"
    if key in ("documents", "chunks", "questions"):
        return f"{int(value)}"
    return f"{value:.3f}"


def _value(config: dict[str, Any], section: str, key: str) -> Any:
    return (config.get(section) or {}).get(key) if section else config.get(key)


def side_by_side(metrics: dict[str, Any], rows: Sequence[tuple[str, str, str]]) -> list[list[str]]:
    configs = metrics["configs"]
    table = [["metric", *configs]]
    for section, key, label in rows:
        table.append([label, *(_format(key, _value(c, section, key)) for c in configs.values())])
    return table


def markdown_table(table: list[list[str]]) -> str:
    head, *body = table
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def console_table(metrics: dict[str, Any]) -> str:
    table = side_by_side(metrics, CONSOLE_ROWS)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in table
    ]
    d = metrics["dataset"]
    title = f"{d['name']}: {d['questions']} questions ({d['unanswerable']} unanswerable), {d['documents']} documents"
    return "\n".join([title, lines[0], "-" * len(lines[0]), *lines[1:]])


def _by_type(metrics: dict[str, Any]) -> str:
    configs = metrics["configs"]
    first = next(iter(configs.values()))
    parts = []
    for section, key in TYPE_METRICS:
        table = [["type", "n", *configs]]
        for type_name, groups in first["by_type"].items():
            n = (groups["answers"] or {}).get("questions")
            cells = [_format(key, (c["by_type"][type_name][section] or {}).get(key)) for c in configs.values()]
            table.append([type_name, _format("questions", n), *cells])
        parts.append(f"**{key}** by type\n\n" + markdown_table(table))
    return "\n\n".join(parts)


def _first_relevant(row: dict[str, Any]) -> int | None:
    return next((rank for rank, relevant in enumerate(row.get("relevance", []), start=1) if relevant), None)


def worst(rows: Sequence[dict[str, Any]], n: int = WORST_PER_CONFIG) -> list[dict[str, Any]]:
    """Answerable questions ranked worst first: evidence not found (or found late), then the weakest answer."""
    candidates = [r for r in rows if r["answerable"]]
    return sorted(candidates, key=lambda r: (-(_first_relevant(r) or 99), r["contains"], r["f1"], r["id"]))[:n]


def _quote(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return (text[:limit] + "…" if len(text) > limit else text).replace("|", "\\|")


def _worst_section(rows: Sequence[dict[str, Any]], configs: Sequence[str]) -> str:
    parts = []
    for name in configs:
        lines = [f"### {name}", ""]
        for row in worst([r for r in rows if r["config"] == name]):
            rank = _first_relevant(row)
            lines.append(
                f"- **{row['id']}** ({row['type']}) {_quote(row['question'], 120)} — gold: {_quote(row['gold'], 40)}; "
                f"first relevant rank: {rank or 'not in top 10'}"
            )
            lines.append(f"  - answer: {_quote(row['answer'], 140)}")
            for hit in row.get("retrieved", [])[:3]:
                lines.append(f"  - retrieved [{hit['rank']}] `{hit['source']}`: {_quote(hit['text'])}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _plots(metrics: dict[str, Any], rows: Sequence[dict[str, Any]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = metrics["dataset"]["name"]
    configs = list(metrics["configs"])
    figure, axes = plt.subplots(figsize=(6, 4))
    styles = [("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", "-"), ("P", "--")]
    for number, (config, curve) in enumerate(metrics["hit_curves"].items()):
        marker, line = styles[number % len(styles)]  # curves often coincide: keep each one visible
        axes.plot(range(1, len(curve) + 1), curve, marker=marker, linestyle=line, label=config, alpha=0.85)
    lowest = min((min(curve) for curve in metrics["hit_curves"].values() if curve), default=0.0)
    bottom = max(0.0, math.floor((lowest - 0.02) * 20) / 20)  # zoom in: the curves often differ by a few points
    axes.set(xlabel="k", ylabel="hit@k", title=f"{name}: hit@k (y axis from {bottom:.2f})", ylim=(bottom, 1.005))
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / "hit_at_k.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(1, 3, figsize=(11, 4), sharey=True)
    for ax, stage in zip(axes, ("retrieve", "generate", "total")):
        data = [[max(r[f"{stage}_s"] * 1000, 1e-3) for r in rows if r["config"] == c] for c in configs]
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(configs) + 1), configs)
        ax.set(title=stage, yscale="log")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("ms per question (log scale)")
    figure.suptitle(f"{name}: latency per question")
    figure.tight_layout()
    figure.savefig(out / "latency.png", dpi=110)
    plt.close(figure)
    return ["hit_at_k.png", "latency.png"]


def render_markdown(metrics: dict[str, Any], rows: Sequence[dict[str, Any]], plots: Sequence[str]) -> str:
    d, m = metrics["dataset"], metrics["machine"]
    sample = (
        f"a fixed random sample of {d['questions']} of {d['questions_in_file']} questions (seed {d['seed']})"
        if d["questions"] < d["questions_in_file"]
        else f"all {d['questions']} questions"
    )
    configs = metrics["configs"]
    lines = [
        f"# Evaluation: {d['name']}",
        "",
        f"Dataset `{d['path']}` ({d['format']}): {sample}, {d['unanswerable']} of them unanswerable; "
        f"corpus of {d['documents']} documents.",
    ]
    if d["name"] in ATTRIBUTION:
        lines.append(f"Data: {ATTRIBUTION[d['name']]}")
    lines += [
        "",
        f"Machine: {m['processor']}, {m['cpus']} CPUs, Python {m['python']}, {m['platform']}"
        + (f", OMP_NUM_THREADS={m['omp_num_threads']}" if m.get("omp_num_threads") else "")
        + f". Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        "Configs: " + "; ".join(f"**{name}** = `{c['label']}`" for name, c in configs.items()) + ".",
        "",
        "## Retrieval",
        "",
        "A passage is relevant if it contains an evidence quote (whitespace- and script-insensitive) or lies in "
        "the question's gold context; a passage also counts through the near-duplicates collapsed into it. "
        "Unanswerable questions are left out here. nDCG@10's ideal ranking holds every relevant chunk of the "
        "corpus, so it rewards configs that cut a gold context into fewer chunks; hit@k and MRR do not depend "
        "on chunk counts.",
        "",
        markdown_table(side_by_side(metrics, RETRIEVAL_ROWS)),
        "",
        "## Answers",
        "",
        "Answers and gold are compared after t2s, NFKC, lower case and removing punctuation; *contains gold* "
        "and F1/EM take the best of the gold answer and its aliases and count a refusal as 0. Refusal "
        "precision/recall treat unanswerable questions as positives (n/a: no unanswerable question in the set). "
        "Citation precision: cited passages that are relevant (answerable questions); recall: of the evidence "
        "pieces (quotes, gold context) present in the shown passages, the share that a citation points at "
        "(answered questions).",
        "",
        markdown_table(side_by_side(metrics, ANSWER_ROWS)),
        "",
        "## Latency",
        "",
        markdown_table(side_by_side(metrics, LATENCY_ROWS)),
        "",
        "## Index build and memory",
        "",
        "Peak RSS is the whole evaluation process's peak so far (it only grows), read after each step.",
        "",
        markdown_table(side_by_side(metrics, BUILD_ROWS)),
        "",
    ]
    lines += [f"![{p}]({p})" for p in plots] + ["", "## By type", "", _by_type(metrics), ""]
    lines += ["## Worst questions", "", _worst_section(rows, list(configs)), ""]
    return "\n".join(lines)


def write_report(metrics: dict[str, Any], rows: Sequence[dict[str, Any]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    with open(out / "results.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    plots = _plots(metrics, rows, out)
    (out / "report.md").write_text(render_markdown(metrics, rows, plots), encoding="utf-8")
