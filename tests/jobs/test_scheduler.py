"""The scheduler: stable ids, replace-on-conflict, cron in the configured zone, off per process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from jobs import JobSpec, build_registry
from jobs.scheduler import JobScheduler, cron_trigger, due_fire_time
from mosaic_memory.api.app import create_app
from mosaic_memory.config import JobsSettings, load_settings
from mosaic_memory.container import AppState
from tests.conftest import own_lifespan_settings
from tests.jobs.conftest import runner_for


async def test_jobs_scheduled_under_stable_ids_in_the_time_zone(state: AppState) -> None:
    runner = runner_for(state, timezone="Europe/Berlin")
    scheduler = JobScheduler(runner.registry, runner, timezone="Europe/Berlin")
    scheduler.start()
    try:
        when = scheduler.scheduled()
        assert set(when) == {"summarize", "expire-decay", "log-tiers"}
        nightly = when["summarize"]
        assert nightly is not None
        local = nightly.astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.hour, local.minute) == (2, 0)

        spec = runner.registry.get("summarize")
        assert spec is not None
        runner.registry.register(JobSpec(spec.id, spec.description, spec.function, trigger="15 4 * * *"))
        scheduler.add_all()  # the same id again replaces the earlier job
        again = scheduler.scheduled()
        assert set(again) == {"summarize", "expire-decay", "log-tiers"}
        moved = again["summarize"]
        assert moved is not None and moved.astimezone(ZoneInfo("Europe/Berlin")).hour == 4
    finally:
        scheduler.shutdown()


def test_cron_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAIC_JOBS__SUMMARIZE_CRON", "30 1 * * *")
    monkeypatch.setenv("MOSAIC_JOBS__ENABLED", "false")
    settings = load_settings()
    assert settings.jobs.enabled is False
    spec = build_registry(settings).get("summarize")
    assert spec is not None and spec.trigger == "30 1 * * *"


@pytest.mark.parametrize("enabled", [True, False])
async def test_service_lifespan_starts_the_scheduler_unless_disabled(
    state: AppState, data_dir: Path, enabled: bool
) -> None:
    app = create_app(own_lifespan_settings(state, data_dir, jobs=enabled))
    async with app.router.lifespan_context(app):
        scheduler = app.state.scheduler
        assert (scheduler is not None) is enabled
        if enabled:
            assert set(scheduler.scheduled()) == {"summarize", "expire-decay", "log-tiers"}
        assert app.state.mosaic.jobs is not None


def test_unknown_time_zone_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        JobsSettings(timezone="Mars/Olympus")


def test_fire_time_is_the_same_for_every_replica() -> None:
    """Each replica computes the fire a late call belongs to from the trigger, not its own clock."""
    daily = cron_trigger("0 2 * * *", "UTC")
    fire = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    for delay in (timedelta(0), timedelta(milliseconds=300), timedelta(minutes=20)):
        assert due_fire_time(daily, fire + delay) == fire
    assert due_fire_time(daily, fire - timedelta(seconds=1)) is None  # no fire within the grace
    every_two = cron_trigger("*/2 * * * * *", "UTC")  # six fields: seconds first
    assert due_fire_time(every_two, datetime(2026, 12, 7, 3, 0, 5, 700_000, tzinfo=UTC)) == datetime(
        2026, 12, 7, 3, 0, 4, tzinfo=UTC
    )
