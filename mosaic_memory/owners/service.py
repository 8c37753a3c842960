"""Users, teams, API keys and authentication.

Keys look like ``mm_1a2b3c4d_<secret>``; only the SHA-256 of the whole key and its visible
prefix are stored. Keys are 192-bit random, so a fast hash is enough (no password stretching).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mosaic_memory.db import enter_owner_scope
from mosaic_memory.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    OwnerNotFound,
    PermissionDenied,
)
from mosaic_memory.models import ApiKey, Owner, new_id, utc_now
from mosaic_memory.owners.repository import ApiKeyRepository, OwnerRepository
from mosaic_memory.owners.schemas import NAME_PATTERN, SCOPES, KeyOut, OwnerOut, OwnerRef, Principal, TeamOut

__all__ = ["OwnerService", "hash_key", "key_prefix"]

_KEY_RE = re.compile(r"^(mm_[0-9a-f]{8})_[A-Za-z0-9_-]{16,}$")
ADMIN_USER = "admin"


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_prefix(token: str) -> str:
    """The visible, non-secret part used to find a key; derived for keys of a foreign format."""
    match = _KEY_RE.match(token)
    if match:
        return match.group(1)
    return "mx_" + hash_key(token)[:12]


def _new_token() -> str:
    return f"mm_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"


def _ref(owner: Owner) -> OwnerRef:
    return OwnerRef(id=owner.id, kind=owner.kind, name=owner.name)


def owner_out(owner: Owner) -> OwnerOut:
    return OwnerOut(id=owner.id, kind=owner.kind, name=owner.name, is_admin=owner.is_admin, created_at=owner.created_at)


class OwnerService:
    """Creates users, teams and keys; turns a bearer token into a :class:`Principal`."""

    def __init__(self, clock: Callable[[], datetime] = utc_now) -> None:
        self.clock = clock

    # users and teams -------------------------------------------------------------------------
    async def create_user(self, session: AsyncSession, name: str, *, admin: bool = False) -> tuple[OwnerOut, str]:
        """Create a user and its first key (read, write; admin too for an admin). Raises Conflict."""
        repo = OwnerRepository(session)
        if await repo.get_by_name("user", name) is not None:
            raise Conflict(f"user {name!r} already exists")
        user = await repo.add(Owner(id=new_id(), kind="user", name=name, is_admin=admin, created_at=self.clock()))
        scopes = ["read", "write", "admin"] if admin else ["read", "write"]
        _, token = await self._issue_key(session, user, name="default", scopes=scopes, agent_id=None)
        return owner_out(user), token

    async def create_team(self, session: AsyncSession, name: str, members: Sequence[str] = ()) -> TeamOut:
        repo = OwnerRepository(session)
        if await repo.get_by_name("team", name) is not None:
            raise Conflict(f"team {name!r} already exists")
        await repo.add(Owner(id=new_id(), kind="team", name=name, created_at=self.clock()))
        for member in members:
            await self.add_member(session, name, member)
        return await self.get_team(session, name)

    async def get_team(self, session: AsyncSession, name: str) -> TeamOut:
        repo = OwnerRepository(session)
        team = await repo.get_by_name("team", name)
        if team is None:
            raise NotFound(f"team {name!r} not found")
        members = [m.name for m in await repo.members_of(team.id)]
        return TeamOut(**owner_out(team).model_dump(), members=members)

    async def list_users(self, session: AsyncSession) -> list[OwnerOut]:
        return [owner_out(o) for o in await OwnerRepository(session).list("user")]

    async def list_teams(self, session: AsyncSession) -> list[TeamOut]:
        return [await self.get_team(session, o.name) for o in await OwnerRepository(session).list("team")]

    async def add_member(self, session: AsyncSession, team: str, user: str, role: str = "member") -> TeamOut:
        repo = OwnerRepository(session)
        team_row = await repo.get_by_name("team", team)
        if team_row is None:
            raise NotFound(f"team {team!r} not found")
        user_row = await repo.get_by_name("user", user)
        if user_row is None:
            raise NotFound(f"user {user!r} not found")
        await repo.add_member(team_row.id, user_row.id, role)
        return await self.get_team(session, team)

    async def remove_member(self, session: AsyncSession, team: str, user: str) -> TeamOut:
        """Take ``user`` out of ``team``: its keys stop reading and writing the team's memory at
        once; the memory stays the team's. NotFound when the team, the user or the membership is not."""
        repo = OwnerRepository(session)
        team_row = await repo.get_by_name("team", team)
        if team_row is None:
            raise NotFound(f"team {team!r} not found")
        user_row = await repo.get_by_name("user", user)
        if user_row is None or not await repo.remove_member(team_row.id, user_row.id):
            raise NotFound(f"user {user!r} is not a member of team {team!r}")
        return await self.get_team(session, team)

    # keys ------------------------------------------------------------------------------------
    async def _issue_key(
        self,
        session: AsyncSession,
        user: Owner,
        *,
        name: str,
        scopes: Sequence[str],
        agent_id: str | None,
        token: str | None = None,
    ) -> tuple[ApiKey, str]:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise InvalidInput(f"unknown scopes {unknown}; known: {list(SCOPES)}")
        if "admin" in scopes and not user.is_admin:
            raise PermissionDenied(f"user {user.name!r} is not an administrator; an admin-scoped key needs one")
        token = token or _new_token()
        key = ApiKey(
            id=new_id(),
            user_id=user.id,
            name=name,
            prefix=key_prefix(token),
            key_hash=hash_key(token),
            scopes=sorted(set(scopes)),
            agent_id=agent_id,
            created_at=self.clock(),
        )
        await ApiKeyRepository(session).add(key)
        return key, token

    async def create_key(
        self,
        session: AsyncSession,
        user: str,
        *,
        name: str = "",
        scopes: Sequence[str] = ("read", "write"),
        agent_id: str | None = None,
    ) -> tuple[KeyOut, str]:
        owner = await OwnerRepository(session).get_by_name("user", user)
        if owner is None:
            raise NotFound(f"user {user!r} not found")
        key, token = await self._issue_key(session, owner, name=name, scopes=scopes, agent_id=agent_id)
        return self._key_out(key, owner.name), token

    async def list_keys(self, session: AsyncSession, user: str | None = None) -> list[KeyOut]:
        owners = OwnerRepository(session)
        user_id = None
        if user is not None:
            owner = await owners.get_by_name("user", user)
            if owner is None:
                raise NotFound(f"user {user!r} not found")
            user_id = owner.id
        names = {o.id: o.name for o in await owners.list("user")}
        return [self._key_out(k, names.get(k.user_id, "?")) for k in await ApiKeyRepository(session).list(user_id)]

    async def revoke_key(self, session: AsyncSession, prefix_or_id: str) -> KeyOut:
        repo = ApiKeyRepository(session)
        key = await repo.by_prefix(prefix_or_id)
        if key is None:
            try:
                key = await session.get(ApiKey, uuid.UUID(prefix_or_id))
            except ValueError:
                key = None
        if key is None:
            raise NotFound(f"API key {prefix_or_id!r} not found")
        if key.revoked_at is None:
            key.revoked_at = self.clock()
            await session.flush()
        owner = await OwnerRepository(session).get(key.user_id)
        return self._key_out(key, owner.name if owner else "?")

    @staticmethod
    def _key_out(key: ApiKey, user: str) -> KeyOut:
        return KeyOut(
            id=key.id,
            user=user,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            agent_id=key.agent_id,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )

    async def ensure_admin(self, session: AsyncSession, configured_key: str | None) -> str | None:
        """Make sure an admin key exists. Returns a newly generated key (to print once), else None.

        A key given in ``MOSAIC_ADMIN_KEY`` is registered if it is not known yet.
        """
        owners = OwnerRepository(session)
        await owners.lock_bootstrap()
        admin = await owners.get_by_name("user", ADMIN_USER)
        if admin is None:
            admin = await owners.add(
                Owner(id=new_id(), kind="user", name=ADMIN_USER, is_admin=True, created_at=self.clock())
            )
        if configured_key:
            if len(configured_key) < 16:
                raise InvalidInput("MOSAIC_ADMIN_KEY must be at least 16 characters long")
            existing = await ApiKeyRepository(session).by_prefix(key_prefix(configured_key))
            if existing is None:
                await self._issue_key(
                    session, admin, name="MOSAIC_ADMIN_KEY", scopes=SCOPES, agent_id=None, token=configured_key
                )
            elif not hmac.compare_digest(existing.key_hash, hash_key(configured_key)):
                raise Conflict("MOSAIC_ADMIN_KEY collides with the prefix of another key; choose another value")
            return None
        if await owners.admin_exists():
            return None
        _, token = await self._issue_key(session, admin, name="bootstrap", scopes=SCOPES, agent_id=None)
        return token

    # authentication --------------------------------------------------------------------------
    async def authenticate(self, session: AsyncSession, token: str) -> Principal:
        """Resolve a bearer token. Raises AuthenticationFailed for unknown or revoked keys."""
        if not token or len(token) > 512:
            raise AuthenticationFailed()
        repo = ApiKeyRepository(session)
        key, user, teams = await repo.by_prefix_with_owners(key_prefix(token))
        if key is None or not hmac.compare_digest(key.key_hash, hash_key(token)):
            raise AuthenticationFailed("the API key is not valid")
        if key.revoked_at is not None:
            raise AuthenticationFailed("the API key has been revoked")
        principal = self._principal(key, None, user, teams)
        now = self.clock()
        # Record use at most once a minute, so reads do not each turn into a write.
        if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
            await repo.touch(key.id, now)
        return principal

    async def principal_of_key(
        self, session: AsyncSession, key_id: uuid.UUID, scopes: Sequence[str] | None = None
    ) -> Principal:
        """The principal of a stored key, for credentials made with it (an OAuth token, a browser
        session): the key's user, teams and agent binding, its scopes narrowed to ``scopes``.

        Raises AuthenticationFailed when the key has been revoked or is gone, so revoking a key
        ends everything made with it."""
        key = await ApiKeyRepository(session).get(key_id)
        if key is None or key.revoked_at is not None:
            raise AuthenticationFailed("the API key this access was approved with has been revoked")
        user, teams = await OwnerRepository(session).user_and_teams(key.user_id)
        return self._principal(key, scopes, user, teams)

    @staticmethod
    def _principal(
        key: ApiKey, scopes: Sequence[str] | None, user: OwnerRef | None, teams: tuple[OwnerRef, ...]
    ) -> Principal:
        if user is None:
            raise AuthenticationFailed("the API key's user no longer exists")
        granted = frozenset(key.scopes) if scopes is None else frozenset(key.scopes) & frozenset(scopes)
        return Principal(user=user, key_id=key.id, scopes=granted, agent_id=key.agent_id, teams=teams)

    @staticmethod
    def require_scope(principal: Principal, scope: str) -> None:
        if scope not in principal.scopes:
            raise PermissionDenied(f"this API key lacks the {scope!r} scope")

    @staticmethod
    async def enter_scope(session: AsyncSession, principal: Principal) -> None:
        """Run the rest of ``session`` on behalf of ``principal``: under row-level security,
        it reaches only the rows of the principal's owners (``db.enter_owner_scope``).

        A key with the admin scope acts across owners by design (users, keys, teams, a team's
        federation grants, everyone's export), so its work keeps the connecting role: for it the
        owner filter of the services and repositories is the only wall."""
        if "admin" in principal.scopes:
            return
        await enter_owner_scope(session, principal.owner_ids)

    @staticmethod
    def resolve_owner(principal: Principal, owner: str | None) -> OwnerRef:
        """The owner a write goes to: the key's user, or ``team:NAME`` of a team the user is in."""
        if owner is None or owner in ("", "me", principal.user.label, principal.user.name):
            return principal.user
        for candidate in principal.owners:
            if owner == candidate.label:
                return candidate
        if ":" not in owner:
            raise InvalidInput(f"owner must look like 'team:NAME' or 'user:NAME', got {owner!r}")
        raise OwnerNotFound(owner)

    @staticmethod
    def resolve_read_owners(principal: Principal, owner: str | None) -> list[OwnerRef]:
        if owner is None:
            return list(principal.owners)
        return [OwnerService.resolve_owner(principal, owner)]

    # import (portability) -------------------------------------------------------------------
    async def ensure_owner(self, session: AsyncSession, label: str) -> OwnerRef:
        """The owner ``user:NAME`` / ``team:NAME``, created (without any key) when missing.

        For imports by an admin or a system caller. Raises InvalidInput for a malformed label."""
        kind, _, name = label.partition(":")
        if kind not in ("user", "team") or not re.match(NAME_PATTERN, name):
            raise InvalidInput(f"owner must look like 'user:NAME' or 'team:NAME', got {label!r}")
        repo = OwnerRepository(session)
        owner = await repo.get_by_name(kind, name)
        if owner is None:
            owner = await repo.add(Owner(id=new_id(), kind=kind, name=name, created_at=self.clock()))
        return _ref(owner)

    async def owner_by_label(self, session: AsyncSession, label: str) -> OwnerRef | None:
        """The owner ``user:NAME`` / ``team:NAME`` if it exists."""
        kind, _, name = label.partition(":")
        owner = await OwnerRepository(session).get_by_name(kind, name)
        return None if owner is None else _ref(owner)

    async def owner_by_id(self, session: AsyncSession, owner_id: uuid.UUID) -> OwnerRef | None:
        """The owner with this id if it exists."""
        owner = await OwnerRepository(session).get(owner_id)
        return None if owner is None else _ref(owner)

    async def all_owners(self, session: AsyncSession) -> list[OwnerRef]:
        """Every user and team (an admin's export default)."""
        repo = OwnerRepository(session)
        return [_ref(o) for kind in ("user", "team") for o in await repo.list(kind)]
