"""A scope's owner ids as a value that writes its text once (no database import: clients hold
principals too)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from functools import cached_property

__all__ = ["OwnerIdList"]


class OwnerIdList(tuple[uuid.UUID, ...]):
    """A principal's owner ids that write their text once, however many statements bind them.

    A user in 100 teams is 100 ``str(uuid)`` calls each time the list is written: a search wrote
    it for the wall's scope, the plan count and each kind's query, and hashed and compared the
    100 ids again for every remembered plan it looked up (~1,000 Python calls a request, a tenth
    of a search). Written once, the text also serves as the scope's key (one string to hash).
    """

    @classmethod
    def of(cls, owner_ids: Iterable[uuid.UUID]) -> OwnerIdList:
        return owner_ids if isinstance(owner_ids, OwnerIdList) else cls(owner_ids)

    @cached_property
    def text(self) -> str:
        """The ids joined by commas: the wall's ``mosaic.owner_ids`` setting, and the scope's key."""
        return ",".join([str(owner) for owner in self])

    @cached_property
    def literal(self) -> str:
        """The ``uuid[]`` array literal."""
        return "{" + self.text + "}"
