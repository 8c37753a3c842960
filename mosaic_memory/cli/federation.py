"""``mosaic-memory federation``: identity, CA and certificates (files), peers, grants, audit, pull.

Identity and certificate commands work on files under the data directory and need no database;
peers, grants and audit go straight to the database like the other admin commands.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from mosaic_memory.cli.common import JsonOpt, call_db, console, fail, print_json, run, settings
from mosaic_memory.errors import MosaicError

if TYPE_CHECKING:
    from mosaic_memory.config import Settings

T = TypeVar("T")

federation_app = typer.Typer(
    help="Federation: identity, certificates, peers, grants, audit, pull.", no_args_is_help=True
)
ca_app = typer.Typer(help="The federation certificate authority.", no_args_is_help=True)
peer_app = typer.Typer(help="Peers: other instances this one talks to.", no_args_is_help=True)
grant_app = typer.Typer(help="Grants: what a peer may read.", no_args_is_help=True)
federation_app.add_typer(ca_app, name="ca")
federation_app.add_typer(peer_app, name="peer")
federation_app.add_typer(grant_app, name="grant")


def _paths(cfg: Settings) -> Any:
    from mosaic_memory.federation.identity import FederationPaths

    return FederationPaths.for_data_dir(cfg.data_dir)


def _files(work: Callable[[], T]) -> T:
    """Run a file-only command; domain errors become one line and exit 1."""
    try:
        return work()
    except MosaicError as exc:
        fail(exc.detail)
    except OSError as exc:
        fail(f"{type(exc).__name__}: {exc.strerror or exc}")


def _passphrase(cfg: Settings, *, confirm: bool = False) -> bytes:
    if cfg.federation.ca_passphrase is not None:
        return cfg.federation.ca_passphrase.get_secret_value().encode()
    value: str = typer.prompt("CA passphrase", hide_input=True, confirmation_prompt=confirm)
    return value.encode()


def _service(cfg: Settings) -> Any:
    from mosaic_memory.container import build_embedder
    from mosaic_memory.federation.service import FederationService
    from mosaic_memory.search.service import SearchService

    # The embedder is lazy: nothing loads unless a search runs (pull does not search).
    return FederationService(settings=cfg, search=SearchService(embedder=build_embedder(cfg), settings=cfg))


def _admin() -> Any:
    """The CLI speaks for whoever holds the database: an admin principal (no key)."""
    from mosaic_memory.owners.schemas import OwnerRef, Principal

    return Principal(
        user=OwnerRef(uuid.UUID(int=0), "user", "cli"), key_id=None, scopes=frozenset({"read", "write", "admin"})
    )


def _db(call: Callable[[Any, Any], Awaitable[T]]) -> T:
    cfg = settings()
    service = _service(cfg)
    return call_db(lambda session: call(service, session))


# identity and certificates ---------------------------------------------------------------------
@federation_app.command("init")
def init(
    name: Annotated[str, typer.Argument(help="this instance's name (a DNS label: laptop, home)")],
    force: Annotated[bool, typer.Option("--force", help="replace an existing identity")] = False,
) -> None:
    """Name this instance and make its key pair (private key mode 600)."""
    from mosaic_memory.federation.identity import init_identity

    cfg = settings()
    pub = _files(lambda: init_identity(_paths(cfg), name, force=force))
    console.print(f"instance [bold]{name}[/]; public key {pub} (give it to the CA: federation issue)", highlight=False)


@federation_app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """This instance's name, certificate and trust."""
    from mosaic_memory.federation.identity import cert_info, instance_name

    cfg = settings()
    paths = _paths(cfg)
    name = _files(lambda: instance_name(paths))
    cert = cert_info(paths.cert.read_bytes()).as_dict() if paths.cert.exists() else None
    data = {"name": name, "certificate": cert, "ca_here": paths.ca_key.exists(), "listener_port": cfg.federation.port}
    if as_json:
        print_json(data)
        return
    console.print(f"instance {name}; CA on this instance: {'yes' if data['ca_here'] else 'no'}", highlight=False)
    if cert is None:
        console.print("no certificate yet", highlight=False)
    else:
        console.print(f"certificate for {cert['names']} valid until {cert['not_after']}", highlight=False)


@ca_app.command("init")
def ca_init(
    name: Annotated[str, typer.Option(help="the CA's common name")] = "Mosaic Memory federation CA",
    days: Annotated[int, typer.Option(min=1, max=36500, help="CA validity in days")] = 3650,
) -> None:
    """Create the federation CA here; its key is encrypted with a passphrase (prompt or env), mode 600."""
    from mosaic_memory.federation.identity import init_ca

    cfg = settings()
    passphrase = _passphrase(cfg, confirm=True)
    cert = _files(lambda: init_ca(_paths(cfg), passphrase, name=name, days=days))
    console.print(f"CA created; its certificate (the trust bundle for peers): {cert}", highlight=False)


@federation_app.command("issue")
def issue(
    name: Annotated[str, typer.Argument(help="the instance the certificate is for")],
    out: Annotated[Path, typer.Option("--out", help="folder for NAME.crt, ca.crt (and NAME.key)")],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="that instance's instance.pub (its key stays there)")
    ] = None,
    hours: Annotated[float | None, typer.Option(min=0.01, help="validity (default federation.cert_hours, 24)")] = None,
) -> None:
    """Issue an instance certificate signed by this instance's CA (name in the SAN)."""
    from mosaic_memory.federation.identity import issue_to_dir

    cfg = settings()
    passphrase = _passphrase(cfg)
    pem = _files(lambda: public_key.read_bytes()) if public_key is not None else None
    written = _files(
        lambda: issue_to_dir(
            _paths(cfg), passphrase, name, out, public_key_pem=pem, hours=hours or cfg.federation.cert_hours
        )
    )
    console.print("wrote " + ", ".join(str(p) for p in written), highlight=False)


@federation_app.command("install")
def install(
    cert: Annotated[Path, typer.Argument(help="this instance's NAME.crt")],
    key: Annotated[Path | None, typer.Option("--key", help="NAME.key, when the CA made the key pair")] = None,
) -> None:
    """Install this instance's certificate (checked: our name, our key, a trusted CA)."""
    from mosaic_memory.federation.identity import install_certificate

    cfg = settings()
    info = _files(
        lambda: install_certificate(_paths(cfg), cert.read_bytes(), key.read_bytes() if key is not None else None)
    )
    console.print(f"installed certificate for {info.names}, valid until {info.not_after.isoformat()}", highlight=False)


@federation_app.command("renew")
def renew(
    hours: Annotated[float | None, typer.Option(min=0.01, help="validity (default federation.cert_hours)")] = None,
) -> None:
    """Renew this instance's certificate with the CA on this instance (a running service picks it up)."""
    from mosaic_memory.federation.identity import renew as renew_cert

    cfg = settings()
    passphrase = _passphrase(cfg)
    info = _files(lambda: renew_cert(_paths(cfg), passphrase, hours=hours or cfg.federation.cert_hours))
    console.print(f"renewed: valid until {info.not_after.isoformat()}", highlight=False)


@federation_app.command("trust")
def trust(bundle: Annotated[Path, typer.Argument(help="a CA certificate bundle (ca.crt)")]) -> None:
    """Trust another federation CA: peers with certificates it signed may connect."""
    from mosaic_memory.federation.identity import trust_bundle

    cfg = settings()
    added = _files(lambda: trust_bundle(_paths(cfg), bundle.read_bytes()))
    console.print(f"trusted {len(added)} new CA certificate(s)", highlight=False)


# peers -------------------------------------------------------------------------------------------
@peer_app.command("add")
def peer_add(
    name: Annotated[str, typer.Argument(help="the name in the peer's certificate")],
    url: Annotated[str, typer.Argument(help="its federation listener, https://host:port")],
) -> None:
    """Add a peer (or change its URL)."""
    from pydantic import ValidationError

    from mosaic_memory.federation.schemas import PeerCreate

    try:
        data = PeerCreate(name=name, url=url)
    except ValidationError as exc:
        fail("invalid peer: " + "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors()))
    out = _db(lambda svc, s: svc.add_peer(s, data))
    console.print(f"peer {out.name} at {out.url}", highlight=False)


@peer_app.command("list")
def peer_list(as_json: JsonOpt = False) -> None:
    """Peers with last contact, latency and certificate expiry."""
    peers = _db(lambda svc, s: svc.list_peers(s))
    if as_json:
        print_json([p.model_dump(mode="json") for p in peers])
        return
    table = Table("name", "url", "last contact", "latency ms", "cert expires", "last error")
    for p in peers:
        table.add_row(
            p.name,
            p.url,
            p.last_contact_at.strftime("%Y-%m-%d %H:%M:%S") if p.last_contact_at else "never",
            f"{p.last_latency_ms:.1f}" if p.last_latency_ms is not None else "",
            p.cert_not_after.strftime("%Y-%m-%d %H:%M") if p.cert_not_after else "",
            p.last_error or "",
        )
    console.print(table)


@peer_app.command("remove")
def peer_remove(name: str) -> None:
    """Remove a peer and every grant it held."""
    _db(lambda svc, s: svc.remove_peer(s, name))
    console.print(f"removed peer {name}", highlight=False)


# grants ------------------------------------------------------------------------------------------
@grant_app.command("create")
def grant_create(
    peer: Annotated[str, typer.Option("--peer", help="the peer that may read")],
    owner: Annotated[str, typer.Option("--owner", help="whose memory: user:NAME or team:NAME")],
    kinds: Annotated[str, typer.Option("--kinds", help="comma-separated: insights,preferences,skills,logs")],
    tags: Annotated[str | None, typer.Option("--tags", help="only rows with any of these (comma-separated)")] = None,
    expires: Annotated[str, typer.Option("--expires", help="30d, 12h, 2w")] = "30d",
    recipient: Annotated[
        str | None, typer.Option("--recipient", help="who may use it there, user:alice@home (default: the owner)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Grant a peer read access to chosen kinds of one owner's memory."""
    from pydantic import ValidationError

    from mosaic_memory.federation.schemas import GrantCreate

    try:
        data = GrantCreate(
            peer=peer,
            owner=owner,
            kinds=[k.strip() for k in kinds.split(",") if k.strip()],
            tags=[t.strip() for t in tags.split(",") if t.strip()] if tags else None,
            expires_in=expires,
            recipient=recipient,
        )
    except ValidationError as exc:
        fail("invalid grant: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    out = _db(lambda svc, s: svc.create_grant(s, _admin(), data))
    if as_json:
        print_json(out.model_dump(mode="json"))
        return
    console.print(
        f"grant {out.id}: {out.peer} may read {','.join(out.kinds)} of {out.owner} for {out.recipient} "
        f"until {out.expires_at.isoformat()}",
        highlight=False,
    )


@grant_app.command("list")
def grant_list(peer: Annotated[str | None, typer.Option("--peer")] = None, as_json: JsonOpt = False) -> None:
    """Every grant, active or not."""
    grants = _db(lambda svc, s: svc.list_grants(s, _admin(), peer))
    if as_json:
        print_json([g.model_dump(mode="json") for g in grants])
        return
    table = Table("peer", "owner", "recipient", "kinds", "tags", "expires", "state", "id")
    table.columns[-1].no_wrap = True  # grant revoke needs the whole id
    table.columns[-1].min_width = 36
    for g in grants:
        state = "active" if g.active else ("revoked" if g.revoked_at else "expired")
        table.add_row(
            g.peer,
            g.owner,
            g.recipient,
            ",".join(g.kinds),
            ",".join(g.tags or []),
            g.expires_at.strftime("%Y-%m-%d %H:%M"),
            state,
            str(g.id),
        )
    console.print(table)


@grant_app.command("revoke")
def grant_revoke(grant_id: Annotated[uuid.UUID, typer.Argument(help="the grant's id")]) -> None:
    """Revoke a grant; the peer's next request sees nothing through it."""
    out = _db(lambda svc, s: svc.revoke_grant(s, _admin(), grant_id))
    console.print(f"revoked grant {out.id} ({out.peer}, {out.owner})", highlight=False)


# audit -------------------------------------------------------------------------------------------
@federation_app.command("audit")
def audit(
    peer: Annotated[str | None, typer.Option("--peer")] = None,
    since: Annotated[datetime | None, typer.Option("--since", help="ISO 8601; naive means UTC")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Federated reads this instance served, newest first."""
    when = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    rows = _db(lambda svc, s: svc.list_audit(s, _admin(), peer=peer, since=when, limit=limit))
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    table = Table("at", "peer", "operation", "owner", "recipient", "hits", "ms", "query sha256")
    for r in rows:
        table.add_row(
            r.at.strftime("%Y-%m-%d %H:%M:%S"),
            r.peer,
            r.operation,
            r.owner or "",
            r.recipient,
            str(r.hits),
            f"{r.latency_ms:.1f}",
            (r.query_hash or "")[:16],
        )
    console.print(table)


# consolidation -----------------------------------------------------------------------------------
@federation_app.command("pull")
def pull(
    peer: Annotated[str, typer.Argument(help="the peer to copy from")],
    owner: Annotated[str, typer.Option("--owner", help="the local owner who receives (user:NAME or team:NAME)")],
    kinds: Annotated[str | None, typer.Option("--kinds", help="comma-separated; default all granted")] = None,
    remote_owner: Annotated[
        str | None, typer.Option("--from-owner", help="only the grants of this owner on the peer")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy the memory a peer granted us into this instance (deduplicated, idempotent)."""
    from mosaic_memory.cli.portability import show_import_report
    from mosaic_memory.container import build_state
    from mosaic_memory.federation.consolidate import pull_from_peer
    from mosaic_memory.portability.schemas import ImportReportOut

    cfg = settings()
    kind_list = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None

    async def pull_with_state() -> dict[str, Any]:
        state = await build_state(cfg)
        try:
            return await pull_from_peer(state, peer, owner=owner, kinds=kind_list, remote_owner=remote_owner)
        finally:
            await state.aclose()

    report = run(pull_with_state())
    if as_json:
        print_json(report)
        return
    if not report["grants"]:
        console.print(f"{peer} holds no grant for {owner}: nothing to pull", highlight=False)
    for grant in report["grants"]:
        console.print(f"grant {grant['grant']} of {grant['from_owner']} on {peer}:", highlight=False)
        show_import_report(ImportReportOut.model_validate(grant))
