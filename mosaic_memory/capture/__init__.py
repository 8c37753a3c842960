"""Capture: agents' own hooks and transcripts turned into agent logs.

A client of the service like any other: events go through ``POST /v1/logs`` with the Python
client (``mosaic_memory.client``), never into the database directly.

- ``text``: cleaning (injected memory, system reminders) and bounding of what is stored;
- ``hooks``: one hook payload (Claude Code, Codex ``notify``, generic) → log events;
- ``spool``: the local file where events wait while the service is unreachable;
- ``delivery``: spool first, then send, within the hook's time budget;
- ``install``: hook entries merged into (and removed from) each agent's settings file;
- ``mcp_config``: each MCP client's server entry for Mosaic Memory, printed or merged into its file;
- ``files``: the safe read and atomic replace of those files;
- ``transcripts`` and ``backfill``: session files on disk → one log per meaningful turn.

See ``docs/agents.md``.
"""
