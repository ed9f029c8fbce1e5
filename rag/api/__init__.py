"""Serving the knowledge bases to other tools: an OpenAI-compatible HTTP API and an MCP server.

Needs ``fastapi`` and ``mcp``; ``import rag`` does not import this package.
"""

from .app import create_api
from .provider import DEFAULT_KB, AssistantProvider, SingleAssistant

__all__ = ["DEFAULT_KB", "AssistantProvider", "SingleAssistant", "create_api"]
