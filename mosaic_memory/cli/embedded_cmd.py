"""``db status`` / ``db stop`` for the embedded PostgreSQL, and ``serve``'s claim on its port."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mosaic_memory.cli.common import JsonOpt, console, fail, print_json, settings

if TYPE_CHECKING:
    from mosaic_memory.config import Settings

__all__ = ["claim_serve_port", "db_status", "db_stop", "release_serve_port"]


def say(text: str) -> None:
    """One plain line: no colour guesses, no wrapping (paths stay whole for copy and grep)."""
    console.print(text, highlight=False, soft_wrap=True)


def _paths(cfg: Settings) -> tuple[Path, Path]:
    data_dir = cfg.data_dir.expanduser()
    return data_dir, (data_dir / "pg").resolve()


def claim_serve_port(cfg: Settings, host: str, port: int) -> None:
    """Record this ``serve`` on ``host:port`` for the local tier; one line and exit 1 if taken."""
    if cfg.effective_tier != "local":
        return
    from mosaic_memory import embedded  # psutil: only on the local tier

    data_dir, pgdata = _paths(cfg)
    try:
        others = embedded.announce_serve(data_dir, pgdata, host, port)
    except embedded.PortTaken as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot record this service in {data_dir}: {exc.strerror or exc}")
    if others:
        listed = ", ".join(h.describe() for h in others)
        say(f"sharing the embedded PostgreSQL in {pgdata} with {listed}")


def release_serve_port(cfg: Settings) -> None:
    if cfg.effective_tier == "local":
        from mosaic_memory import embedded

        data_dir, _ = _paths(cfg)
        embedded.withdraw_serve(data_dir)


def db_status(as_json: JsonOpt = False) -> None:
    """Show the embedded PostgreSQL: running or not, its pid, binaries, and the processes using it."""
    from mosaic_memory import embedded
    from mosaic_memory.tiers import redact_database_url

    cfg = settings()
    if cfg.effective_tier != "local":
        url = cfg.database_url.get_secret_value() if cfg.database_url is not None else ""
        if as_json:
            print_json({"tier": cfg.effective_tier, "embedded": False, "database_url": redact_database_url(url)})
            return
        say(f"tier {cfg.effective_tier}: no embedded server; database at {redact_database_url(url)}")
        return
    data_dir, pgdata = _paths(cfg)
    state = embedded.read_status(data_dir, pgdata)
    if as_json:
        print_json({"tier": "local", "embedded": True, **state.as_dict()})
        return
    say(f"data dir: {state.data_dir}")
    say(f"pgdata:   {state.pgdata}{'' if state.initialized else ' (not initialised yet)'}")
    if not state.running:
        say("server:   not running")
    else:
        say(f"server:   running, pid {state.pid}, socket in {state.socket_dir}")
        which = {True: "this install's", False: "OTHER binaries than this install's", None: "unknown"}
        say(f"binary:   {state.binary} ({which[state.same_binaries]})")
    if state.holders:
        for holder in state.holders:
            note = "" if holder.holds_database else " (starting, not connected yet)"
            say(f"used by:  {holder.describe()}{note}")
    elif state.running:
        say("used by:  no live process (the next one to start owns it; 'db stop' stops it)")
    if state.stale_pids:
        listed = ", ".join(str(p) for p in state.stale_pids)
        say(f"stale:    process {listed} exited without releasing it (ignored)")


def db_stop(
    force: Annotated[bool, typer.Option("--force", help="stop it even while processes still use it")] = False,
) -> None:
    """Stop the embedded PostgreSQL cleanly (fast shutdown: no acknowledged write is lost)."""
    from mosaic_memory import embedded

    cfg = settings()
    if cfg.effective_tier != "local":
        fail(f"tier {cfg.effective_tier} has no embedded server to stop")
    data_dir, pgdata = _paths(cfg)
    with embedded.data_dir_lock(data_dir):
        embedded.prune(data_dir, pgdata)
        state = embedded.read_status(data_dir, pgdata)
        if not state.running:
            say(f"the embedded PostgreSQL in {pgdata} is not running")
            return
        users = [h for h in state.holders if h.holds_database]
        if users and not force:
            listed = ", ".join(h.describe() for h in users)
            fail(f"the embedded PostgreSQL (pid {state.pid}) is in use by {listed}; stop those, or pass --force")
        proc = embedded.postmaster(pgdata)
        if proc is not None:
            embedded.stop_postmaster(proc)
        embedded.prune(data_dir, pgdata)
    say(f"stopped the embedded PostgreSQL (pid {state.pid}) in {pgdata}")
