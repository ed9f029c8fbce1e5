"""How long a failure takes to surface: the timings tests/test_faults.py and test_embeddings.py do not assert.

    python bench/bench_faults.py                       # over indexes/default (built from seeds/ if missing)
    python bench/bench_faults.py --timeout 2 --repeat 5

For each fault of the LLM endpoint (a local fake server, as in the tests): seconds until ``ask`` and
``stream`` return the extractive fallback, median of ``--repeat`` runs, and the ratio to the call's
budget (``llm_timeout``); a follow-up whose rewrite and answer both meet a silent server (budget: two
calls); and how long loading an embedding model that is not there takes to fail.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]  # the tests import app.py from the root

from conftest import FakeChatServer  # noqa: E402 - the tests' fake endpoint
from support import free_port  # noqa: E402
from test_faults import FAULTS, QUESTION, assert_fallback, endpoint  # noqa: E402

from rag import Assistant, Settings  # noqa: E402
from rag.embeddings import EmbeddingError, load_embeddings  # noqa: E402


def median_seconds(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def llm_faults(assistant: Assistant, timeout: float, repeat: int) -> list[tuple[str, float, float]]:
    rows = []
    for fault in FAULTS:
        server = FakeChatServer()
        try:
            llm = {"generator": "openai", "openai_base_url": endpoint(server, fault), "openai_api_key": "sk-bench"}
            options = {**llm, "llm_timeout": timeout, "llm_max_chars": 300}

            def ask() -> None:
                assert_fallback(assistant.ask(QUESTION, **options), fault)

            def stream() -> None:
                *_, answer = assistant.stream(QUESTION, **options)
                assert_fallback(answer, fault)

            rows.append((f"{fault} (ask)", median_seconds(ask, repeat), timeout))
            rows.append((f"{fault} (stream)", median_seconds(stream, repeat), timeout))
        finally:
            server.close()
    server = FakeChatServer()
    server.mode, server.max_seconds = "silent", 60.0
    try:

        def follow_up() -> None:
            answer = assistant.ask(
                "它有多少户高新技术企业？",
                [("哈尔滨新区是什么时候获批设立的？", "2015年12月。[1]")],
                generator="openai",
                openai_base_url=server.base_url,
                openai_api_key="sk-bench",
                llm_timeout=timeout,
            )
            assert answer.generator == "extractive (fallback)" and "超时" in answer.note

        rows.append(("follow-up, silent server (rewrite + answer)", median_seconds(follow_up, repeat), 2 * timeout))
    finally:
        server.close()
    return rows


def model_failures(repeat: int) -> list[tuple[str, float]]:
    def missing_path() -> None:
        try:
            load_embeddings(Settings(embedding_model=str(Path(tempfile.gettempdir()) / "no-such-model-here")))
        except EmbeddingError:
            return
        raise AssertionError("a missing model loaded")

    def unreachable_hub() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        saved = {name: os.environ.pop(name, None) for name in ("HF_ENDPOINT", "HF_HUB_OFFLINE")}
        os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{port}"
        try:
            load_embeddings(Settings(embedding_model="example-org/model-that-is-not-cached"))
        except EmbeddingError:
            return
        finally:
            for name, value in saved.items():
                os.environ.pop(name, None)
                if value is not None:
                    os.environ[name] = value
        raise AssertionError("a model that is not there loaded")

    return [("missing local model (first: imports torch)", median_seconds(missing_path, 1)),
            ("missing local model", median_seconds(missing_path, repeat)),
            ("uncached model, hub unreachable", median_seconds(unreachable_hub, repeat))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-dir", type=Path, default=None, help="default: the settings' index_dir")
    parser.add_argument("--timeout", type=float, default=1.0, help="llm_timeout of each call (s)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    settings = Settings(index_dir=args.index_dir) if args.index_dir else Settings()
    assistant = Assistant.load(settings)
    # Warm: the first answer loads the POS tagger, the first LLM call the client (both timed by bench_startup.py).
    assistant.ask(QUESTION, generator="openai", openai_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_timeout=1)
    print(f"LLM faults → extractive fallback (median of {args.repeat}; budget = llm_timeout per call)")
    print(f"  {'fault':<46}{'seconds':>9}{'budget':>9}{'ratio':>8}")
    for name, seconds, budget in llm_faults(assistant, args.timeout, args.repeat):
        print(f"  {name:<46}{seconds:>9.2f}{budget:>9.1f}{seconds / budget:>8.2f}")
    print("Embedding model that cannot be loaded → EmbeddingError")
    for name, seconds in model_failures(args.repeat):
        print(f"  {name:<46}{seconds:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
