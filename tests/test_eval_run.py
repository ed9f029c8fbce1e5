"""Both dataset formats load, and ``rag eval --limit 20`` runs end to end on a small corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import main
from rag.eval import load_dataset, load_jsonl, load_squad
from rag.eval.metrics import hit_at_k, mean

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_QA = ROOT / "examples" / "seeds_qa.jsonl"
DATASETS = ROOT.parent / "shared" / "datasets"

SQUAD = {
    "version": "test",
    "data": [
        {
            "title": "黑龍江",
            "paragraphs": [
                {
                    "id": "p1",
                    "context": "黑龍江擁有2981公里的漫長邊境線，是中國對俄合作的重要省份。",
                    "qas": [
                        {"id": "q1", "question": "黑龍江的邊境線有多長？", "answers": [{"text": "2981公里", "answer_start": 5}]},
                        {"id": "q2", "question": "黑龍江是對哪國合作的重要省份？", "answers": [
                            {"text": "俄", "answer_start": 20}, {"text": "俄", "answer_start": 20}]},
                    ],
                },
                {
                    "id": "p2",  # the same context again: one document
                    "context": "黑龍江擁有2981公里的漫長邊境線，是中國對俄合作的重要省份。",
                    "qas": [{"id": "q3", "question": "邊境線多長？", "answers": [{"text": "2981公里", "answer_start": 5}]}],
                },
            ],
        },
        {"title": "a/b", "paragraphs": [{"id": "p3", "context": "另一段文字。", "qas": []}]},
    ],
}


def test_load_squad(tmp_path: Path):
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    data = load_dataset(path)
    assert data.format == "squad"
    assert len(data.documents) == 2  # duplicate contexts pooled once
    assert [item.id for item in data.items] == ["q1", "q2", "q3"]
    q1, q2, q3 = data.items
    assert q1.answer == "2981公里" and q1.type == "number"
    assert q2.aliases == ()  # repeated gold answers collapse
    assert q1.evidence[0].doc_id == q3.evidence[0].doc_id == data.documents[0].id
    assert {d.source for d in data.documents} == {"黑龍江/p1.txt", "a_b/p3.txt"}


def test_load_jsonl_seed_set():
    data = load_jsonl(SEED_QA, SEEDS)
    assert data.format == "jsonl"
    assert len(data.items) == 85 and len(data.documents) == 5
    assert sum(not item.answerable for item in data.items) == 8
    assert all(item.evidence for item in data.items if item.answerable)
    sample = data.sample(20, seed=3)
    assert len(sample.items) == 20 and sample.items == data.sample(20, seed=3).items
    assert sample.documents is data.documents


def test_load_jsonl_rejects_a_quote_not_in_its_file(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("今天天气很好。", encoding="utf-8")
    bad = tmp_path / "qa.jsonl"
    bad.write_text(json.dumps({"question": "?", "answer": "好", "evidence": [{"file": "a.txt", "quote": "明天"}]}) + "\n")
    with pytest.raises(ValueError, match="not in"):
        load_jsonl(bad, corpus)


@pytest.mark.parametrize(("name", "documents", "questions"), [("cmrc2018", 848, 3219), ("drcd", 1000, 3524)])
def test_public_squad_sets_load(name: str, documents: int, questions: int):
    path = DATASETS / name / "dev.json"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    data = load_squad(path)
    assert data.name == name
    assert len(data.documents) == documents and len(data.items) == questions
    assert all(item.answerable and item.evidence for item in data.items)


@pytest.fixture(scope="module")
def small_seed_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first 1,500 characters of three seed pages, and the seed questions they can answer
    plus every unanswerable one (so refusal metrics are defined)."""
    root = tmp_path_factory.mktemp("small")
    corpus = root / "corpus"
    corpus.mkdir()
    texts = {}
    for path in sorted(SEEDS.glob("*.txt"))[:3]:
        texts[path.name] = path.read_text(encoding="utf-8")[:1500]
        (corpus / path.name).write_text(texts[path.name], encoding="utf-8")
    lines = []
    for line in SEED_QA.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        evidence = [{"file": Path(e["file"]).name, "quote": e["quote"]} for e in row["evidence"]]
        if all(e["quote"] in texts.get(e["file"], "") for e in evidence):
            lines.append(json.dumps({**row, "evidence": evidence}, ensure_ascii=False))
    assert len(lines) >= 20
    dataset = root / "qa.jsonl"
    dataset.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dataset, corpus


def test_eval_limit_20_end_to_end(small_seed_set, tmp_path: Path, capsys):
    dataset, corpus = small_seed_set
    out = tmp_path / "report"
    status = main(
        ["eval", "--dataset", str(dataset), "--corpus", str(corpus), "--limit", "20", "--out", str(out),
         "--config", "bm25", "--config", "hybrid", "--config", "naive"]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "hit@1" in printed and "naive" in printed
    for name in ("metrics.json", "report.md", "results.jsonl", "hit_at_k.png", "latency.png"):
        assert (out / name).stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["dataset"]["questions"] == 20
    assert list(metrics["configs"]) == ["bm25", "hybrid", "naive"]
    # bm25 and hybrid share one index build; naive has its own.
    builds = {name: c["build"]["seconds"] for name, c in metrics["configs"].items()}
    assert builds["bm25"] == builds["hybrid"] != builds["naive"]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 60
    for name, config in metrics["configs"].items():
        mine = [r for r in rows if r["config"] == name]
        retrieval, answers = config["retrieval"], config["answers"]
        # The aggregate is the mean of the per-question rows it came from.
        ranked = [r["relevance"] for r in mine if "relevance" in r]
        assert retrieval["hit@1"] == pytest.approx(mean([hit_at_k(relevance, 1) for relevance in ranked]))
        assert retrieval["hit@1"] <= retrieval["hit@3"] <= retrieval["hit@5"] <= retrieval["hit@10"]
        assert answers["refusal_recall"] is not None  # the sample holds unanswerable questions
        assert set(config["by_type"]) == {r["type"] for r in mine}
        assert answers["total_p50_ms"] > 0
    assert metrics["configs"]["hybrid"]["retrieval"]["hit@5"] >= 0.8
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| hit@1 |" in report and "## Worst questions" in report and "![hit_at_k.png]" in report
