"""Each MCP client's own configuration for Mosaic Memory: the entry, where it goes, and the merge.

One server entry per client and transport, in the client's own format, with the API key taken
from the ``MOSAIC_API_KEY`` environment variable wherever the client can read one:

======================  ==========================================  ===================================
client                  file                                        the key
======================  ==========================================  ===================================
Claude Code             ``.mcp.json`` at the project root           ``${MOSAIC_API_KEY}`` (expanded by
                                                                    Claude Code in url, headers, env)
Cursor                  ``~/.cursor/mcp.json`` or                   ``${env:MOSAIC_API_KEY}``
                        ``<project>/.cursor/mcp.json``
Codex                   ``~/.codex/config.toml`` (``$CODEX_HOME``)  ``bearer_token_env_var`` (HTTP),
                        ``[mcp_servers.<name>]``                    ``env_vars`` forwarding (stdio)
Claude Desktop          ``claude_desktop_config.json``              no expansion: ``mosaic-memory mcp``
                        (stdio only)                                reads Mosaic's own config file
======================  ==========================================  ===================================

A write merges: only ``mcpServers.<name>`` (``mcp_servers.<name>`` for Codex) is set, every other
server and setting stays as it was, the file is replaced atomically and the previous text is kept
in ``<file>.mosaic-backup``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from mosaic_memory.capture.files import Change, InstallError, mosaic_program, read_config, write_config

__all__ = [
    "CLIENTS",
    "KEY_VARIABLE",
    "Target",
    "config_path",
    "default_transport",
    "install",
    "notes",
    "server_entry",
    "service_url",
    "snippet",
]

CLIENTS = ("claude-code", "cursor", "codex", "claude-desktop")
KEY_VARIABLE = "MOSAIC_API_KEY"
Transport = Literal["http", "stdio"]


@dataclass(frozen=True)
class Target:
    """One client's entry for one service: ``url`` is the service's base URL (``/mcp`` is added)."""

    client: str
    transport: Transport
    url: str
    name: str = "mosaic"
    program: str = field(default_factory=mosaic_program)

    @property
    def endpoint(self) -> str:
        return f"{self.url}/mcp"


def service_url(url: str) -> str:
    """The service's base URL from what a person typed (``/mcp`` and trailing slashes dropped).

    Raises InstallError for anything but an http(s) URL with a host, or one carrying credentials
    (they would end up in a configuration file)."""
    base = url.strip().rstrip("/")
    base = base.removesuffix("/mcp").rstrip("/")
    parts = urlsplit(base)
    if "@" in parts.netloc:  # checked first: the URL is echoed below
        raise InstallError("--url must not carry credentials; the key comes from MOSAIC_API_KEY")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InstallError(f"--url must be the service's http(s) URL, e.g. http://127.0.0.1:8765 (got {url!r})")
    return base


def default_transport(client: str) -> Transport:
    """HTTP where the client speaks it to a URL; Claude Desktop reads only stdio servers from its file."""
    return "stdio" if client == "claude-desktop" else "http"


def _stdio(target: Target, key: str | None) -> dict[str, Any]:
    env = {"MOSAIC_URL": target.url}
    if key is not None:
        env[KEY_VARIABLE] = key
    return {"command": target.program, "args": ["mcp"], "env": env}


def server_entry(target: Target) -> dict[str, Any]:
    """The client's entry for the server (the value under ``mcpServers.<name>``, or the Codex table)."""
    client, http = target.client, target.transport == "http"
    if client == "claude-code":
        if http:
            return {"type": "http", "url": target.endpoint, "headers": {"Authorization": f"Bearer ${{{KEY_VARIABLE}}}"}}
        return {"type": "stdio", **_stdio(target, f"${{{KEY_VARIABLE}}}")}
    if client == "cursor":
        if http:
            return {"url": target.endpoint, "headers": {"Authorization": f"Bearer ${{env:{KEY_VARIABLE}}}"}}
        return _stdio(target, f"${{env:{KEY_VARIABLE}}}")
    if client == "codex":
        if http:
            return {"url": target.endpoint, "bearer_token_env_var": KEY_VARIABLE}
        # Codex starts stdio servers with a short list of variables; env_vars forwards ours by name.
        return {**_stdio(target, None), "env_vars": [KEY_VARIABLE]}
    if client == "claude-desktop":
        if http:
            # Claude Desktop reads only stdio servers from its file: mcp-remote bridges to HTTP. It
            # expands ${VAR} in its own arguments from its environment, which only this file sets.
            return {
                "command": "npx",
                "args": ["-y", "mcp-remote", target.endpoint, "--header", "Authorization:${MOSAIC_AUTH_HEADER}"],
                "env": {"MOSAIC_AUTH_HEADER": "Bearer <your API key>"},
            }
        return _stdio(target, None)
    raise InstallError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")


def snippet(target: Target) -> str:
    """The configuration to print: what the client's file must contain for this server."""
    entry = server_entry(target)
    if target.client == "codex":
        import tomlkit

        document = tomlkit.document()
        servers = tomlkit.table(is_super_table=True)
        servers[target.name] = _toml_table(entry)
        document["mcp_servers"] = servers
        return tomlkit.dumps(document).rstrip("\n") + "\n"
    return json.dumps({"mcpServers": {target.name: entry}}, indent=2) + "\n"


def config_path(client: str, *, project: Path | None = None) -> Path:
    """Where ``client`` reads its MCP servers: the project's file with ``project``, else the user's."""
    home = Path.home()
    if client == "claude-code":
        # Claude Code documents ${VAR} expansion for the project's .mcp.json: the key stays out of it.
        return (project or Path.cwd()).expanduser() / ".mcp.json"
    if client == "cursor":
        return (project.expanduser() if project else home) / ".cursor" / "mcp.json"
    if client == "codex":
        if project is not None:
            return project.expanduser() / ".codex" / "config.toml"  # read for trusted projects only
        return Path(os.environ.get("CODEX_HOME") or home / ".codex").expanduser() / "config.toml"
    if client == "claude-desktop":
        if project is not None:
            raise InstallError("Claude Desktop has no project configuration; leave out --project")
        if sys.platform == "darwin":
            folder = home / "Library" / "Application Support" / "Claude"
        elif sys.platform == "win32":
            folder = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / "Claude"
        else:
            folder = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "Claude"
        return folder / "claude_desktop_config.json"
    raise InstallError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")


def notes(target: Target, mosaic_config: Path) -> list[str]:
    """What a person must know beside the entry: where it goes and where the key comes from."""
    client, url, key = target.client, target.endpoint, KEY_VARIABLE
    if client == "claude-code":
        lines = [
            f"Claude Code reads this from .mcp.json at the project root and expands ${{{key}}} from its "
            f"environment: export {key}=<your key> in the shell that starts claude.",
        ]
        if target.transport == "http":
            lines.append(
                f"The same with Claude Code's CLI: claude mcp add --scope project --transport http {target.name} "
                f"{url} --header 'Authorization: Bearer ${{{key}}}'  (single quotes: the file gets the variable)"
            )
        return lines
    if client == "cursor":
        return [
            "Cursor reads ~/.cursor/mcp.json (every project) or .cursor/mcp.json (one project) and resolves "
            f"${{env:{key}}} from its own environment: start Cursor where {key} is set.",
        ]
    if client == "codex":
        if target.transport == "http":
            return [
                f"Codex reads the key from {key} (bearer_token_env_var). The same with Codex's CLI: "
                f"codex mcp add {target.name} --url {url} --bearer-token-env-var {key}",
            ]
        return [f"Codex starts the server with {key} forwarded from its environment (env_vars)."]
    if target.transport == "http":
        return [
            "Claude Desktop reads only stdio servers from this file; this entry bridges with mcp-remote (Node.js), "
            "and Claude Desktop cannot read the key from your environment, so it must be pasted into the file. "
            "Prefer the default --stdio entry, which keeps the key out of it.",
        ]
    return [
        "Claude Desktop expands no variables in its file and does not see your shell's environment: "
        f"mosaic-memory mcp reads the key from api_key in {mosaic_config} (chmod 600 that file).",
    ]


def _toml_table(entry: dict[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key, value in entry.items():
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            inline.update(value)
            table[key] = inline
        else:
            table[key] = value
    table.add(tomlkit.nl())
    return table


def _merge_json(path: Path, before: str, name: str, entry: dict[str, Any]) -> tuple[str, list[str], bool]:
    try:
        data = json.loads(before) if before.strip() else {}
    except ValueError as exc:
        raise InstallError(f"{path} is not valid JSON ({exc}); fix it first, nothing was changed") from None
    if not isinstance(data, dict) or not isinstance(data.setdefault("mcpServers", {}), dict):
        raise InstallError(f"{path} has no mcpServers object where one belongs; nothing was changed")
    servers: dict[str, Any] = data["mcpServers"]
    existed = name in servers
    if servers.get(name) == entry:
        return before, sorted(set(servers) - {name}), existed
    servers[name] = entry
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n", sorted(set(servers) - {name}), existed


def _merge_toml(path: Path, before: str, name: str, entry: dict[str, Any]) -> tuple[str, list[str], bool]:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        document = tomlkit.parse(before)
    except TOMLKitError as exc:
        raise InstallError(f"{path} is not valid TOML ({exc}); fix it first, nothing was changed") from None
    servers = document.get("mcp_servers")
    if servers is None:
        servers = tomlkit.table(is_super_table=True)
        document["mcp_servers"] = servers
    elif not isinstance(servers, dict):
        raise InstallError(f"{path}: mcp_servers is not a table; nothing was changed")
    existed = name in servers
    current = servers.get(name)
    if getattr(current, "unwrap", lambda: current)() == entry:
        return before, sorted(set(servers) - {name}), existed
    servers[name] = _toml_table(entry)
    return tomlkit.dumps(document), sorted(set(servers) - {name}), existed


def install(target: Target, path: Path) -> Change:
    """Set the server's entry in the client's file at ``path``, keeping everything else in it.

    Raises InstallError when the file cannot be read or parsed (nothing is written then), or for
    Claude Desktop over HTTP, whose entry would have to hold the key itself."""
    if target.client == "claude-desktop" and target.transport == "http":
        raise InstallError(
            "Claude Desktop over HTTP needs the key pasted into its file (mcp-remote); "
            "--write writes only --stdio for Claude Desktop (print the HTTP entry without --write)"
        )
    entry = server_entry(target)
    before = read_config(path)
    merge = _merge_toml if target.client == "codex" else _merge_json
    after, others, existed = merge(path, before, target.name, entry)
    if after == before:
        return Change(path, before, after, f"server {target.name!r} is already configured")
    backup = write_config(path, after, backup=True)
    done = "replaced" if existed else "added"
    kept = f"; kept {len(others)} other servers ({', '.join(others)})" if others else ""
    return Change(path, before, after, f"{done} server {target.name!r} ({target.transport}){kept}", backup)
