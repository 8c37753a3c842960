"""The ``mosaic-memory`` command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from mosaic_memory import __version__
from mosaic_memory.cli import backup_cmd, context_cmd, doctor_cmd, embedded_cmd, mcp_cmd, tier_cmd
from mosaic_memory.cli import capture as capture_cli
from mosaic_memory.cli import insights as insights_cli
from mosaic_memory.cli import portability as portability_cli
from mosaic_memory.cli.common import (
    JsonOpt,
    call_api,
    call_db,
    console,
    embedding_dimensions,
    fail,
    listed_as_json_or_empty,
    note_redacted,
    print_json,
    redacted_settings,
    run,
    settings,
    short_id,
    shorten,
    shown_as_json_or_empty,
)
from mosaic_memory.cli.embeddings_cmd import embeddings_app
from mosaic_memory.cli.federation import federation_app
from mosaic_memory.cli.jobs import jobs_app
from mosaic_memory.cli.oauth_cmd import oauth_app
from mosaic_memory.cli.prefs import prefs_app
from mosaic_memory.cli.skills import skills_app

app = typer.Typer(
    name="mosaic-memory",
    help="Mosaic Memory: self-hosted memory and semantic search for AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations and the embedded server.", no_args_is_help=True)
users_app = typer.Typer(help="Users (admin).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (admin).", no_args_is_help=True)
teams_app = typer.Typer(help="Teams (admin).", no_args_is_help=True)
logs_app = typer.Typer(help="Agent logs in the running service.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(teams_app, name="teams")
app.add_typer(logs_app, name="logs")
app.add_typer(insights_cli.insights_app, name="insights")
app.add_typer(prefs_app, name="prefs")
app.add_typer(skills_app, name="skills")
app.add_typer(jobs_app, name="jobs")
app.add_typer(embeddings_app, name="embeddings")
portability_cli.register(app)  # export, import
app.add_typer(federation_app, name="federation")
app.add_typer(oauth_app, name="oauth")
capture_cli.register(app)  # hooks install|uninstall, capture, import-transcripts
mcp_cmd.register(app)  # mcp (stdio), mcp config


app.command("doctor")(doctor_cmd.doctor)
tier_cmd.register(app)  # migrate-tier
backup_cmd.register(app)  # backup, restore


@app.command()
def whoami(as_json: JsonOpt = False) -> None:
    """The running service's view of MOSAIC_API_KEY: its user, the owners it reads, its scopes."""
    me = call_api(settings(), lambda mm: mm.me())
    if as_json:
        print_json(me)
        return
    agent = f", bound to agent {me['agent_id']}" if me.get("agent_id") else ""
    console.print(f"{me['user']} ({', '.join(me['scopes'])}{agent}) reads {', '.join(me['owners'])}", highlight=False)


@app.command()
def tui() -> None:
    """Search, browse and correct memory in a terminal UI (a client of MOSAIC_URL with MOSAIC_API_KEY)."""
    from mosaic_memory.cli.common import client
    from mosaic_memory.tui import run_tui

    run_tui(client(settings()))


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8765)")] = None,
    migrate: Annotated[bool, typer.Option("--migrate/--no-migrate", help="upgrade the schema at start")] = True,
) -> None:
    """Run the service (REST API). On the local tier this starts the embedded PostgreSQL.

    The tier is probed first (as 'doctor' does): a problem stops it with one line and the doctor's
    exit code. Logs go to stderr, as JSON with MOSAIC_LOG_FORMAT=json."""
    import logging

    import uvicorn

    from mosaic_memory.api import create_app
    from mosaic_memory.observability.logs import configure_logging

    cfg, report = doctor_cmd.load_settings_or_report()
    if cfg is None:
        assert report is not None and report.first_failure is not None
        fail(report.first_failure.detail, report.exit_code)
    bind_host = host or cfg.host
    bind_port = port or cfg.port
    cfg = cfg.model_copy(update={"host": bind_host, "port": bind_port, "auto_migrate": cfg.auto_migrate and migrate})
    configure_logging(
        level=cfg.log_level,
        fmt=cfg.log_format,
        data_dir=cfg.data_dir if cfg.effective_tier == "local" else None,
    )
    held = None
    try:
        held = doctor_cmd.preflight(cfg)
        embedded_cmd.claim_serve_port(cfg, bind_host, bind_port)  # a second serve on the same port: one line
        # The probed database becomes the service's (the embedded server is not stopped and started
        # again); from here on the lifespan closes it.
        application, held = create_app(cfg, database=held), None
        logging.getLogger("uvicorn.error").addFilter(doctor_cmd.quiet_startup_failure(application))
        quiet = "debug" if cfg.log_level.upper() == "DEBUG" else "warning"
        try:
            uvicorn.run(
                application,
                host=bind_host,
                port=bind_port,
                log_level=quiet,
                log_config=None,
                access_log=False,
                # SIGTERM ends within this many seconds even while a client holds a request open.
                timeout_graceful_shutdown=10,
            )
        except SystemExit:
            problem = getattr(application.state, "startup_error", None)
            if problem:
                fail(problem)
            raise
    finally:
        if held is not None:
            held.close()
        embedded_cmd.release_serve_port(cfg)


@config_app.command("show")
def config_show(as_json: JsonOpt = False) -> None:
    """Print the effective configuration, secrets redacted."""
    data = redacted_settings(settings())
    if as_json:
        print_json(data)
        return
    table = Table("setting", "value", show_header=True)

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            table.add_row(prefix, "" if value is None else str(value))

    walk("", data)
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default head)."""
    from mosaic_memory.db import run_migrations
    from mosaic_memory.tiers import open_database

    cfg = settings()

    async def go() -> None:
        database = open_database(cfg)
        try:
            await run_migrations(database.url, revision=revision, dimensions=await embedding_dimensions(cfg))
        finally:
            database.close()

    run(go())
    console.print(f"database upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target revision, e.g. base")]) -> None:
    """Revert migrations down to REVISION (``base`` drops every table)."""
    from mosaic_memory.db import run_migrations
    from mosaic_memory.tiers import open_database

    cfg = settings()

    async def go() -> None:
        database = open_database(cfg)
        try:
            await run_migrations(database.url, revision=revision, direction="down")
        finally:
            database.close()

    run(go())
    console.print(f"database downgraded to {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database and the head this version expects."""
    from mosaic_memory.db import current_revision, head_revision
    from mosaic_memory.tiers import open_database

    cfg = settings()

    async def go() -> str | None:
        database = open_database(cfg)
        try:
            return await current_revision(database.url)
        finally:
            database.close()

    console.print(f"current: {run(go()) or 'none'}  head: {head_revision()}")


db_app.command("status")(embedded_cmd.db_status)
db_app.command("stop")(embedded_cmd.db_stop)


# admin: users, keys, teams (straight to the database, like a manage command) -----------------
@users_app.command("create")
def users_create(
    name: str, admin: Annotated[bool, typer.Option(help="an administrator")] = False, as_json: JsonOpt = False
) -> None:
    """Create a user and print its first API key (shown once)."""
    from mosaic_memory.owners.service import OwnerService

    user, token = call_db(lambda session: OwnerService().create_user(session, name, admin=admin))
    if as_json:
        print_json({"user": user.model_dump(mode="json"), "api_key": token})
        return
    console.print(f"created user [bold]{user.name}[/]. API key (shown once):\n{token}", highlight=False)


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """List users."""
    from mosaic_memory.owners.service import OwnerService

    users = call_db(lambda session: OwnerService().list_users(session))
    if as_json:
        print_json([u.model_dump(mode="json") for u in users])
        return
    table = Table("name", "admin", "created")
    for u in users:
        table.add_row(u.name, "yes" if u.is_admin else "", u.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option("--user", "-u", help="the key's user")],
    scope: Annotated[list[str] | None, typer.Option("--scope", "-s", help="read, write, admin")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="bind the key to an agent id")] = None,
    name: Annotated[str, typer.Option(help="a label")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Issue an API key (shown once)."""
    from mosaic_memory.owners.service import OwnerService

    key, token = call_db(
        lambda session: OwnerService().create_key(
            session, user, name=name, scopes=scope or ["read", "write"], agent_id=agent
        )
    )
    if as_json:
        print_json({"key": key.model_dump(mode="json"), "api_key": token})
        return
    console.print(f"key {key.prefix} for {key.user} ({', '.join(key.scopes)}). Shown once:\n{token}", highlight=False)


@keys_app.command("list")
def keys_list(user: Annotated[str | None, typer.Option("--user", "-u")] = None, as_json: JsonOpt = False) -> None:
    """List keys (prefixes only; secrets are never stored)."""
    from mosaic_memory.owners.service import OwnerService

    keys = call_db(lambda session: OwnerService().list_keys(session, user))
    if as_json:
        print_json([k.model_dump(mode="json") for k in keys])
        return
    table = Table("prefix", "user", "scopes", "agent", "name", "status")
    for k in keys:
        table.add_row(
            k.prefix, k.user, ",".join(k.scopes), k.agent_id or "", k.name, "revoked" if k.revoked_at else "active"
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(prefix: str) -> None:
    """Revoke a key by prefix; it stops working at once."""
    from mosaic_memory.owners.service import OwnerService

    key = call_db(lambda session: OwnerService().revoke_key(session, prefix))
    console.print(f"revoked {key.prefix} ({key.user})", highlight=False)


@teams_app.command("create")
def teams_create(
    name: str,
    member: Annotated[list[str] | None, typer.Option("--member", "-m", help="a user to add")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a team."""
    from mosaic_memory.owners.service import OwnerService

    team = call_db(lambda session: OwnerService().create_team(session, name, member or []))
    if as_json:
        print_json(team.model_dump(mode="json"))
        return
    console.print(f"created team [bold]{team.name}[/] members: {', '.join(team.members) or '-'}", highlight=False)


@teams_app.command("add-member")
def teams_add_member(
    team: str, user: str, role: Annotated[str, typer.Option(help="member or maintainer")] = "member"
) -> None:
    """Add USER to TEAM."""
    from mosaic_memory.owners.service import OwnerService

    result = call_db(lambda session: OwnerService().add_member(session, team, user, role))
    console.print(f"team {result.name}: {', '.join(result.members)}", highlight=False)


@teams_app.command("remove-member")
def teams_remove_member(team: str, user: str) -> None:
    """Take USER out of TEAM (the team's memory stays the team's)."""
    from mosaic_memory.owners.service import OwnerService

    result = call_db(lambda session: OwnerService().remove_member(session, team, user))
    console.print(f"team {result.name}: {', '.join(result.members) or '-'}", highlight=False)


@teams_app.command("list")
def teams_list(as_json: JsonOpt = False) -> None:
    """List teams and their members."""
    from mosaic_memory.owners.service import OwnerService

    teams = call_db(lambda session: OwnerService().list_teams(session))
    if as_json:
        print_json([t.model_dump(mode="json") for t in teams])
        return
    table = Table("team", "members")
    for t in teams:
        table.add_row(t.name, ", ".join(t.members))
    console.print(table)


# against a running service -------------------------------------------------------------------
app.command("remember", help="Store an insight (same as 'insights add').")(insights_cli.add)
app.command("search")(insights_cli.search)
app.command("recall", help="Search memory (same as 'search').")(insights_cli.search)
app.command("context")(context_cmd.context)


@logs_app.command("add")
def logs_add(
    content: str,
    session: Annotated[str, typer.Option("--session", "-s", help="the agent session id")],
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="the agent id")] = None,
    level: Annotated[str, typer.Option("--level", "-l", help="debug, info, warning or error")] = "info",
    owner: Annotated[str | None, typer.Option(help="'team:NAME' to write to a team")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Append one event to an agent session's log."""
    cfg = settings()
    event = {"session_id": session, "content": content, "agent_id": agent, "level": level}

    out = call_api(cfg, lambda mm: mm.log_events([{k: v for k, v in event.items() if v is not None}], owner=owner))
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    note = " (searchable by meaning shortly)" if out.pending else ""
    console.print(f"logged {out.ids[0]}{note}", highlight=False)
    note_redacted(out.secrets_redacted)


@logs_app.command("list")
def logs_list(
    session: Annotated[str | None, typer.Option("--session", "-s", help="the agent session id")] = None,
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="the agent id")] = None,
    level: Annotated[str | None, typer.Option("--level", "-l", help="only this level")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="events per page")] = 100,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List events oldest first."""
    cfg = settings()

    page = call_api(
        cfg, lambda mm: mm.list_logs(session_id=session, agent_id=agent, level=level, limit=limit, cursor=cursor)
    )
    if shown_as_json_or_empty(page, page.items, as_json, "no events"):
        return
    table = Table("occurred", "session", "agent", "level", "content", "id")
    for e in page.items:
        content = shorten(e.content)
        table.add_row(
            e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.session_id or "",
            e.agent_id or "",
            e.level,
            content,
            short_id(e.id),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@logs_app.command("sessions")
def logs_sessions(
    owner: Annotated[
        str | None, typer.Option(help="user:NAME or team:NAME (default: every owner the key reads)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="sessions to show")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The agent sessions, latest activity first, with their event counts."""
    found = call_api(settings(), lambda mm: mm.log_sessions(owner=owner, limit=limit))
    if listed_as_json_or_empty(found, as_json, "no sessions"):
        return
    table = Table("session", "events", "first", "last", "owner")
    for s in found:
        table.add_row(
            s.session_id or "(none)",
            str(s.events),
            s.first_at.strftime("%Y-%m-%d %H:%M:%S"),
            s.last_at.strftime("%Y-%m-%d %H:%M:%S"),
            s.owner,
        )
    console.print(table)


@logs_app.command("search")
def logs_search(
    query: str,
    session: Annotated[str | None, typer.Option("--session", "-s", help="only this session")] = None,
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="only this agent")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="how many hits")] = 10,
    mode: Annotated[str, typer.Option(help="semantic, keyword or hybrid")] = "hybrid",
    as_json: JsonOpt = False,
) -> None:
    """Search agent logs by meaning and keyword."""
    cfg = settings()

    out = call_api(cfg, lambda mm: mm.search_logs(query, session_id=session, agent_id=agent, k=k, mode=mode))
    if shown_as_json_or_empty(out, out.hits, as_json, "no matches"):
        return
    table = Table("score", "occurred", "content", "owner", "id")
    for hit in out.hits:
        content = shorten(hit.content)
        table.add_row(
            f"{hit.score:.3f}", hit.created_at.strftime("%Y-%m-%d %H:%M:%S"), content, hit.owner, short_id(hit.id)
        )
    console.print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        fail("interrupted", 130)


if __name__ == "__main__":
    main()
