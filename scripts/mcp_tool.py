"""Call one MCP tool the way an MCP client would, from that client's own configuration file.

    python scripts/mcp_tool.py .mcp.json mosaic get_context '{"query": "fix the tests"}'
    python scripts/mcp_tool.py .mcp.json mosaic --list

Reads ``mcpServers.<name>`` from a Claude Code / Cursor style JSON file, expands ``${VAR}`` and
``${env:VAR}`` from this process's environment as those clients do, connects with the MCP SDK's
client (streamable HTTP for a ``url`` entry, else stdio with the entry's command, args and env)
using the initialize handshake, as Claude Code does, and prints the tool's JSON result. Used to
record docs/agents-walkthrough.txt; handy to check a configuration without the client itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

_VARIABLE = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)\}")


def expand(value: Any) -> Any:
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [expand(v) for v in value]
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    return value


async def call(entry: dict[str, Any], tool: str | None, arguments: dict[str, Any]) -> Any:
    if "url" in entry:
        async with (
            create_mcp_http_client(headers=entry.get("headers", {})) as http,
            Client(streamable_http_client(entry["url"], http_client=http), mode="legacy") as client,
        ):
            return await _use(client, tool, arguments)
    env = {**os.environ, **entry.get("env", {})}
    params = StdioServerParameters(command=entry["command"], args=entry.get("args", []), env=env)
    async with Client(params, mode="legacy") as client:
        return await _use(client, tool, arguments)


async def _use(client: Client, tool: str | None, arguments: dict[str, Any]) -> Any:
    if tool is None:
        return {"protocol": client.protocol_version, "tools": [t.name for t in (await client.list_tools()).tools]}
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        return {"error": " ".join(getattr(block, "text", "") for block in result.content)}
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(getattr(result.content[0], "text", "null"))


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    config, name, tool = Path(argv[0]), argv[1], argv[2]
    entry = expand(json.loads(config.read_text())["mcpServers"][name])
    arguments = json.loads(argv[3]) if len(argv) > 3 else {}
    out = asyncio.run(call(entry, None if tool == "--list" else tool, arguments))
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 1 if isinstance(out, dict) and "error" in out else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
