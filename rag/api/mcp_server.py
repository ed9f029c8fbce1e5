"""The MCP server (official ``mcp`` SDK): tools ``search``, ``ask``, ``list_documents`` and
``list_knowledge_bases``, over stdio (``rag mcp``) or streamable HTTP (``/mcp`` on the API).

Tool arguments and results are typed, so clients get JSON schemas for both; ``ask`` and ``search``
results carry the citations/passages with their sources, line numbers and offsets. A bad argument
(empty or overlong question, k out of range, unknown knowledge base) is a tool error with a message.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from starlette.routing import Route

from ..settings import MAX_K, Settings
from ..startup import NotReadyError
from ..validation import InputError
from .context import Context
from .keys import RequireKey
from .library import document_rows
from .library import search as search_passages
from .provider import DEFAULT_KB, SingleAssistant

#: Where the streamable-HTTP transport is served on the API.
MCP_PATH = "/mcp"

KB = Annotated[str, Field(description="Knowledge base name (see list_knowledge_bases).")]
Question = Annotated[str, Field(description="The question, in Chinese or English.", min_length=1)]
K = Annotated[int | None, Field(description=f"Passages to retrieve (1-{MAX_K}); default: the server's setting.")]


class PageBox(BaseModel):
    """Where part of a scanned page's text is printed."""

    start: int = Field(description="Character offset in the document where this line's text starts.")
    end: int
    page: int = Field(description="Page number, 1-based.")
    box: tuple[float, float, float, float] | None = Field(
        description="(x0, y0, x1, y1) as fractions of the page's width and height; null for a PDF's text layer."
    )
    vertical: bool = False


class Passage(BaseModel):
    """A retrieved passage: its text and where it is in its source document."""

    rank: int
    score: float
    text: str = Field(description="The passage as it reads in the document.")
    clean: str = Field(description="The passage with line breaks and noise removed.")
    source: str
    title: str
    doc_id: str
    chunk_id: str
    start: int = Field(description="Character offset of the passage in the document.")
    end: int
    line_start: int
    line_end: int
    page: int = Field(0, description="Page number (1-based) in a paged source (PDF, scan); 0 otherwise.")
    boxes: list[PageBox] = Field(default_factory=list, description="The boxes of its lines on a scanned page.")


class Citation(BaseModel):
    """What ``[n]`` in an answer points at: the passage and the sentence quoted from it."""

    n: int
    text: str
    clean: str
    source: str
    title: str
    doc_id: str
    chunk_id: str
    start: int
    end: int
    line_start: int
    line_end: int
    page: int = Field(0, description="Page number (1-based) in a paged source (PDF, scan); 0 otherwise.")
    boxes: list[PageBox] = Field(default_factory=list, description="The boxes of its lines on a scanned page.")
    quote: str = Field(description="The supporting sentence.")
    quote_start: int = Field(description="Offset of the quote in the document (-1 when unknown).")
    quote_end: int


class SearchResult(BaseModel):
    kb: str
    passages: list[Passage]


class AskResult(BaseModel):
    kb: str
    text: str = Field(description="The answer with [n] citation markers (or the refusal).")
    refused: bool = Field(description="True when the documents do not answer the question.")
    citations: list[Citation]
    note: str | None = None


class DocumentInfo(BaseModel):
    id: str
    source: str
    name: str
    title: str
    chunks: int
    added_at: str


class DocumentList(BaseModel):
    kb: str
    documents: list[DocumentInfo]


class KnowledgeBaseInfo(BaseModel):
    name: str
    documents: int


class KnowledgeBaseList(BaseModel):
    knowledge_bases: list[KnowledgeBaseInfo]


def build_mcp(context: Context) -> MCPServer:
    server = MCPServer(
        "rag-news-zh",
        instructions="Chinese news question answering with citations. Use `search` for passages, `ask` for a cited "
        "answer; cite sources as [n] with the returned citations.",
        log_level="WARNING",
    )
    workers = context.workers

    def knowledge_base(name: str):
        try:
            return context.provider.get(name)
        except NotReadyError as error:  # the server is still opening its knowledge base (or failed to)
            raise ToolError(str(error)) from None
        except KeyError:
            raise ToolError(
                f"unknown knowledge base {name!r}; available: {', '.join(context.provider.names())}"
            ) from None

    @server.tool()
    async def search(question: Question, kb: KB = DEFAULT_KB, k: K = None) -> SearchResult:
        """Retrieve the passages of a knowledge base that best match the question, best first."""
        knowledge = knowledge_base(kb).knowledge
        try:
            hits = await workers.run(workers.cpu, search_passages, knowledge, question, k, None)
        except InputError as error:
            raise ToolError(str(error)) from error
        return SearchResult(kb=kb, passages=[Passage.model_validate(hit) for hit in hits])

    @server.tool()
    async def ask(question: Question, kb: KB = DEFAULT_KB, k: K = None) -> AskResult:
        """Answer a question from a knowledge base's documents, citing them as [n]; refuses when they do not say."""
        assistant = knowledge_base(kb)
        try:
            answer = await workers.run(workers.for_answers(assistant), assistant.ask, question, None, k=k)
        except InputError as error:
            raise ToolError(str(error)) from error
        return AskResult(
            kb=kb,
            text=answer.text,
            refused=answer.refused,
            citations=[Citation.model_validate(c.to_dict()) for c in answer.citations],
            note=answer.note,
        )

    @server.tool()
    async def list_documents(kb: KB = DEFAULT_KB) -> DocumentList:
        """The documents in a knowledge base, newest first."""
        knowledge = knowledge_base(kb).knowledge
        rows = await workers.run(workers.cpu, document_rows, knowledge)
        return DocumentList(kb=kb, documents=[DocumentInfo.model_validate(row) for row in rows])

    @server.tool()
    async def list_knowledge_bases() -> KnowledgeBaseList:
        """The knowledge bases this server answers from, with their document counts."""
        infos = []
        try:
            names = context.provider.names()
        except NotReadyError as error:
            raise ToolError(str(error)) from None
        for name in names:
            knowledge = knowledge_base(name).knowledge
            infos.append(KnowledgeBaseInfo(name=name, documents=len(knowledge.documents)))
        return KnowledgeBaseList(knowledge_bases=infos)

    return server


def mcp_routes(server: MCPServer, context: Context) -> tuple[list[Route], Any]:
    """Routes serving ``server`` over streamable HTTP at :data:`MCP_PATH`, behind the API keys, and
    the session manager, whose ``run()`` must be entered in the serving app's lifespan."""
    transport = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,  # each call stands alone: nothing to keep per client, any worker can answer
        json_response=True,
        host=context.settings.host,  # on loopback the SDK also checks Host/Origin (DNS rebinding)
    )
    routes = [
        Route(route.path, RequireKey(route.endpoint, context.keys), methods=route.methods)
        for route in transport.routes
        if isinstance(route, Route)
    ]
    return routes, server.session_manager


def serve_stdio(settings: Settings) -> None:
    """Serve the knowledge base at ``settings.index_dir`` over stdio until the client closes it (``rag mcp``)."""
    context = Context.create(SingleAssistant.load(settings), settings, with_keys=False)
    build_mcp(context).run("stdio")
