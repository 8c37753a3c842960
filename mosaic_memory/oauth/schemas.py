"""The bodies of the OAuth routes of the REST API (a person's grants)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

GRANT_EXAMPLE: dict[str, Any] = {
    "grant_id": "5b1f0c2e-7d3a-4e9b-8c6f-1a2b3c4d5e6f",
    "client_id": "mmc_Zk3vQ9rT1xWb7YpL2mN8sHc4JdF6gKa0",
    "client_name": "Claude",
    "scopes": ["read", "write"],
    "resource": "https://memory.example.com/mcp",
    "issued_at": "2026-12-06T09:00:00Z",
    "access_expires_at": "2026-12-06T10:00:00Z",
    "refresh_expires_at": "2027-01-05T09:00:00Z",
}


class GrantOut(BaseModel):
    """One approval of a client: its newest tokens' scopes, resource and lifetimes."""

    model_config = ConfigDict(json_schema_extra={"examples": [GRANT_EXAMPLE]})

    grant_id: uuid.UUID
    client_id: str
    client_name: str
    scopes: list[str]
    resource: str
    issued_at: datetime
    access_expires_at: datetime
    refresh_expires_at: datetime | None


class GrantRevoked(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"grant_id": GRANT_EXAMPLE["grant_id"], "tokens": 2}]})

    grant_id: uuid.UUID
    tokens: int
