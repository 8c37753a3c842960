"""``mosaic-memory oauth``: the applications you approved through OAuth (``docs/oauth.md``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mosaic_memory.cli.common import JsonOpt, call_api, console, listed_as_json_or_empty, settings

oauth_app = typer.Typer(help="OAuth: the applications (hosted MCP clients) you approved.", no_args_is_help=True)


@oauth_app.command("grants")
def oauth_grants(as_json: JsonOpt = False) -> None:
    """List the applications your user approved that still hold a usable token."""
    grants = call_api(settings(), lambda mm: mm.oauth_grants())
    if listed_as_json_or_empty(grants, as_json, "no applications approved"):
        return
    table = Table("application", "scopes", "resource", "access until", "grant id")
    table.columns[-1].no_wrap = True  # revoke needs the whole id
    for g in grants:
        until = g.access_expires_at.isoformat(timespec="minutes")
        table.add_row(g.client_name or g.client_id, " ".join(g.scopes), g.resource, until, str(g.grant_id))
    console.print(table)


@oauth_app.command("revoke")
def oauth_revoke(grant_id: Annotated[str, typer.Argument(metavar="GRANT_ID", help="from 'oauth grants'")]) -> None:
    """Revoke one approval: every token it gave stops working at once."""
    out = call_api(settings(), lambda mm: mm.revoke_oauth_grant(grant_id))
    console.print(f"revoked grant {out.grant_id} ({out.tokens} tokens)", highlight=False)
