"""Federation: the peers this instance talks to, the grants it gives them, and the audit of their reads.

The instance's own identity (name, key pair, certificates) lives in files under the data
directory (``federation/``), not here: the TLS listener needs it before the database is open.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from mosaic_memory.models.base import Base, new_id, utc_now


class FederationPeer(Base):
    """Another instance, known by the name in its certificate's SAN and reached at ``url``."""

    __tablename__ = "federation_peers"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_contact_at: Mapped[datetime | None]
    last_latency_ms: Mapped[float | None] = mapped_column(Float)
    cert_not_after: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class FederationGrant(Base):
    """Read access for ``peer`` to ``owner``'s memory of ``kinds`` (optionally only rows with ``tags``),
    usable on the peer only by the owner labelled ``recipient`` there, until expiry or revocation."""

    __tablename__ = "federation_grants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    peer: Mapped[str] = mapped_column(ForeignKey("federation_peers.name", ondelete="CASCADE"), index=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(String(140))
    kinds: Mapped[list[str]] = mapped_column(ARRAY(Text))
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class FederationAudit(Base):
    """One federated read served to a peer under one grant."""

    __tablename__ = "federation_audit"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    peer: Mapped[str] = mapped_column(String(63))
    grant_id: Mapped[uuid.UUID | None]
    owner_id: Mapped[uuid.UUID | None]
    recipient: Mapped[str] = mapped_column(String(140))
    operation: Mapped[str] = mapped_column(String(16))  # "search" | "export"
    query_hash: Mapped[str | None] = mapped_column(String(64))
    query_text: Mapped[str | None] = mapped_column(Text)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
