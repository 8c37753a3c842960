"""Every table, on one metadata for Alembic."""

from mosaic_memory.models.base import Base, new_id, utc_now
from mosaic_memory.models.federation import FederationAudit, FederationGrant, FederationPeer
from mosaic_memory.models.memory import (
    AgentLog,
    Insight,
    InsightSource,
    Preference,
    PreferenceHistory,
    Skill,
)
from mosaic_memory.models.oauth import OAuthClient, OAuthCode, OAuthToken
from mosaic_memory.models.ops import InstanceMeta, JobRun
from mosaic_memory.models.owners import ApiKey, Owner, TeamMember

__all__ = [
    "AgentLog",
    "ApiKey",
    "Base",
    "FederationAudit",
    "FederationGrant",
    "FederationPeer",
    "Insight",
    "InsightSource",
    "InstanceMeta",
    "JobRun",
    "OAuthClient",
    "OAuthCode",
    "OAuthToken",
    "Owner",
    "Preference",
    "PreferenceHistory",
    "Skill",
    "TeamMember",
    "new_id",
    "utc_now",
]
