"""The MCP edge: memory tools for agents, as an adapter onto the REST API.

``build_server`` makes the tools; ``McpHttp`` serves them at ``/mcp`` on the service;
``run_stdio`` serves them over stdio as a client of a running service.
"""

from mosaic_memory.mcp_server.http import McpHttp, bearer_key
from mosaic_memory.mcp_server.stdio import run_stdio
from mosaic_memory.mcp_server.tools import TOOL_NAMES, ClientSource, build_server

__all__ = ["TOOL_NAMES", "ClientSource", "McpHttp", "bearer_key", "build_server", "run_stdio"]
