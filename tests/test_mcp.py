"""The MCP server driven by the official ``mcp`` client: over stdio (``rag mcp`` in a subprocess) and
over streamable HTTP (``/mcp`` on the API, behind the API keys)."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import httpx
from api_serving import API_KEYS, RO_KEY, serve_api
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from pydantic import SecretStr

from rag import Assistant, Settings
from rag.api import SingleAssistant, create_api

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "黑龙江的边境线有多长？"
TOOLS = {"search", "ask", "list_documents", "list_knowledge_bases"}


async def _exercise(session: ClientSession, assistant: Assistant) -> None:
    """List the tools, call each one, check what comes back against the library."""
    await session.initialize()
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    for name in ("search", "ask"):
        schema = tools[name].input_schema
        assert schema["required"] == ["question"] and {"question", "kb", "k"} <= set(schema["properties"])
        assert schema["properties"]["question"]["description"]
    assert "citations" in tools["ask"].output_schema["properties"]
    assert "passages" in tools["search"].output_schema["properties"]

    expected = assistant.ask(QUESTION)
    asked = await session.call_tool("ask", {"question": QUESTION})
    assert not asked.is_error, asked.content
    result = asked.structured_content
    assert result["text"] == expected.text and "[1]" in result["text"] and not result["refused"]
    assert result["citations"] == [c.to_dict() for c in expected.citations]

    searched = await session.call_tool("search", {"question": QUESTION, "k": 2})
    assert not searched.is_error, searched.content
    hits = assistant.knowledge.search(QUESTION, k=2)
    assert [p["chunk_id"] for p in searched.structured_content["passages"]] == [h.chunk.id for h in hits]
    assert searched.structured_content["passages"][0]["source"] == hits[0].chunk.source

    documents = (await session.call_tool("list_documents", {})).structured_content["documents"]
    assert {d["id"] for d in documents} == {r.document.id for r in assistant.knowledge.documents}
    bases = (await session.call_tool("list_knowledge_bases", {})).structured_content["knowledge_bases"]
    assert bases == [{"name": "default", "documents": len(assistant.knowledge.documents)}]

    for arguments, message in (
        ({"question": "   "}, "问题不能为空"),
        ({"question": "长" * 1001}, "问题太长"),
        ({"question": QUESTION, "k": 0}, "k 必须"),
        ({"question": QUESTION, "kb": "nope"}, "unknown knowledge base 'nope'"),
    ):
        failed = await session.call_tool("ask", arguments)
        assert failed.is_error and message in failed.content[0].text, failed.content
    assert (await session.call_tool("search", {"question": ""})).is_error


def test_stdio(seed_index_dir: Path, seed_assistant: Assistant, tmp_path: Path) -> None:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rag", "mcp"],
        env={"RAG_INDEX_DIR": str(seed_index_dir), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
        cwd=str(ROOT),
    )

    async def main(errors) -> None:
        async with stdio_client(server, errlog=errors) as (read, write), ClientSession(read, write) as session:
            await _exercise(session, seed_assistant)

    with (tmp_path / "mcp.log").open("w") as errors:  # the server's log, kept out of the test's output
        anyio.run(main, errors)


def test_streamable_http_behind_the_keys(seed_knowledge, seed_assistant: Assistant) -> None:
    settings = seed_knowledge.settings.with_overrides(api_keys=SecretStr(API_KEYS))
    api = create_api(SingleAssistant(Assistant(seed_knowledge, settings)), settings)

    async def main(url: str) -> None:
        headers = {"Authorization": f"Bearer {RO_KEY}"}  # a read-only key may use every (reading) tool
        async with (
            create_mcp_http_client(headers=headers) as http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await _exercise(session, seed_assistant)

    with serve_api(api) as url:
        anyio.run(main, url)
        for headers in ({}, {"Authorization": "Bearer not-a-key-0123456789abcdef"}):
            response = httpx.post(
                f"{url}/mcp",
                headers={**headers, "Accept": "application/json, text/event-stream"},
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            )
            assert response.status_code == 401 and response.json()["error"]["code"] in (
                "missing_api_key",
                "invalid_api_key",
            )


def test_settings_field_is_secret() -> None:
    settings = Settings(api_keys=SecretStr(API_KEYS))
    assert RO_KEY not in repr(settings) and RO_KEY not in str(settings.model_dump())
