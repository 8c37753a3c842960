"""The cross-tenant probe suite again, with the application's owner filter off (what
MOSAIC_TEST_DISABLE_OWNER_FILTER=1 does): PostgreSQL row-level security alone must keep every
probe of the REST, MCP and web surfaces from another tenant's rows. That it is the wall that
holds, and not something else: ``test_row_security.py`` shows the same read leaking with the
filter off and the wall bypassed. Figures: docs/reliability.md."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mosaic_memory.common import repository as common_repository
from mosaic_memory.container import AppState
from tests.api import test_isolation as probes

# The same probes, fixtures and detector, collected again in this module (with a world of its
# own). The CLI's 80 probes are left out: the CLI is a client of these same REST routes, and its
# probes take a third as long as the other surfaces' 3,383.
world = probes.world
ledger = probes.ledger
test_rest_probes = probes.test_rest_probes
test_mcp_probes = probes.test_mcp_probes
test_web_probes = probes.test_web_probes
test_the_probes_would_see_a_leak = probes.test_the_probes_would_see_a_leak


def test_the_sample_is_large_and_clean(ledger: probes.Ledger) -> None:
    total = sum(ledger.probes.values())
    print(f"isolation probes with the owner filter off: {ledger.probes} = {total}, leaks: {len(ledger.leaks)}")
    assert ledger.leaks == []
    if set(ledger.probes) == {"rest", "mcp", "web"}:  # the whole module ran
        assert total >= 2000


@pytest.fixture(scope="module", autouse=True)
def owner_filter_off(state: AppState) -> Iterator[None]:
    """Before the world is seeded (autouse fixtures come first in their scope) and until it is gone."""
    assert state.row_security.up, state.row_security.why
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(common_repository, "OWNER_FILTER_DISABLED", True)
        yield
