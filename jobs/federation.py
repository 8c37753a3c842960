"""Certificate renewal: when the federation CA is on this instance, renew our certificate before it expires.

A running listener notices the new files and uses them for new handshakes (federation/listener.py).
"""

from __future__ import annotations

from jobs.registry import JobContext
from mosaic_memory.federation.identity import FederationPaths, cert_info, needs_renewal, renew

__all__ = ["renew_certificate"]


async def renew_certificate(ctx: JobContext) -> str | None:
    cfg = ctx.settings.federation
    paths = FederationPaths.for_data_dir(ctx.settings.data_dir)
    if not paths.identity.exists() or not paths.ca_key.exists():
        return "nothing to do: no federation identity or no CA on this instance"
    if not needs_renewal(paths, cfg.renew_before_share, ctx.now):
        ctx.report.add(renewed=0)
        return f"valid until {cert_info(paths.cert.read_bytes()).not_after.isoformat()}"
    if cfg.ca_passphrase is None:
        raise RuntimeError("the certificate is due for renewal but MOSAIC_FEDERATION__CA_PASSPHRASE is not set")
    if ctx.dry_run:
        ctx.report.add(renewed=0, due=1)
        return "due for renewal (dry run)"
    info = renew(paths, cfg.ca_passphrase.get_secret_value().encode(), hours=cfg.cert_hours)
    ctx.report.add(renewed=1)
    await ctx.report.set_changes("certificate", {"not_after": info.not_after.isoformat(), "sha256": info.fingerprint})
    return f"renewed: valid until {info.not_after.isoformat()}"
