"""The MCP edge: memory tools for agents, one definition served over two transports.

``build_server`` makes the tools over a ``Backend``; ``McpHttp`` serves them at ``/mcp`` on the
service, calling the services in-process; ``run_stdio`` serves them over stdio as a client of a
running service's REST API.
"""

from mosaic_memory.mcp_server.http import McpHttp, bearer_key
from mosaic_memory.mcp_server.stdio import run_stdio
from mosaic_memory.mcp_server.tools import TOOL_NAMES, Backend, build_server

__all__ = ["TOOL_NAMES", "Backend", "McpHttp", "bearer_key", "build_server", "run_stdio"]
