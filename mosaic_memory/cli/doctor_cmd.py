"""``mosaic-memory doctor``: every probe of the tier detector, with status, timing and remedy.

Exit codes (docs/operations.md): 0 healthy (warnings allowed), 3 configuration, 4 database
(unreachable, authentication, missing), 5 pgvector, 6 migrations, 7 embedding model, 8 data
directory, 9 federation; the code of the first failed probe. ``--json`` prints the report for
scripts (schema 1). ``serve`` runs the same probes (but the model's, which it loads anyway) before
it starts and stops with the same code and one line.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from mosaic_memory import __version__
from mosaic_memory.cli.common import JsonOpt, console, fail, print_json, run

if TYPE_CHECKING:
    from mosaic_memory.config import Settings
    from mosaic_memory.health import Report
    from mosaic_memory.tiers import Database

__all__ = ["doctor", "load_settings_or_report", "preflight", "quiet_startup_failure", "render"]

log = logging.getLogger("mosaic_memory")

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def load_settings_or_report() -> tuple[Settings | None, Report | None]:
    """The settings, or (when they do not load) a report whose ``config`` probe says why."""
    from mosaic_memory.config import load_settings
    from mosaic_memory.errors import MosaicError
    from mosaic_memory.health import ProbeResult, Report

    try:
        return load_settings(), None
    except MosaicError as exc:
        detail = exc.detail
    except Exception as exc:  # pydantic's ValidationError: name the setting, not its value
        detail = "invalid configuration: " + " ".join(line.strip() for line in str(exc).splitlines()[:3])
    report = Report(tier="unknown", database=None)
    report.probes.append(
        ProbeResult("config", "fail", detail, "correct the MOSAIC_* variable or the config file it names")
    )
    return None, report


def render(report: Report) -> None:
    """The report for a person: one line per probe, the remedy under each that is not ok."""
    where = f", database {report.database}" if report.database else ""
    console.print(
        f"Mosaic Memory {__version__} doctor: tier {report.tier}{where}", highlight=False, markup=False, soft_wrap=True
    )
    width = max((len(p.name) for p in report.probes), default=10)
    for probe in report.probes:
        status = probe.status.upper() if probe.status == "fail" else probe.status
        timing = f"{probe.duration_ms:7.1f} ms" if probe.status != "skip" else " " * 10
        name = escape(probe.name)
        console.print(
            f"  [{_STYLE[probe.status]}]{status:<4}[/]  {name:<{width}}  {timing}  {escape(probe.detail)}",
            highlight=False,
            soft_wrap=True,
        )
        if probe.remedy and probe.status in ("fail", "warn"):
            console.print(
                f"  {'':<4}  {'':<{width}}  {'':10}  remedy: {escape(probe.remedy)}", highlight=False, soft_wrap=True
            )
    failed = report.first_failure
    if failed is None:
        warned = sum(p.status == "warn" for p in report.probes)
        console.print(f"healthy{f' ({warned} warning' + ('s' if warned != 1 else '') + ')' if warned else ''}")
    else:
        console.print(f"unhealthy: {failed.name} failed (exit code {report.exit_code})", highlight=False)


def doctor(
    as_json: JsonOpt = False,
    timeout: Annotated[float, typer.Option(min=0.1, max=120.0, help="seconds each network probe may wait")] = 5.0,
    model: Annotated[
        bool, typer.Option("--model/--no-model", help="load the embedding model and compare it with the stored vectors")
    ] = True,
) -> None:
    """Check the configured tier: database, pgvector, schema, model, data directory, federation.

    Exit 0 when healthy (warnings allowed); otherwise the code of the first failed probe's area:
    3 configuration, 4 database, 5 pgvector, 6 migrations, 7 embedding model, 8 data directory,
    9 federation (see docs/operations.md)."""
    from mosaic_memory.health import Detector

    cfg, report = load_settings_or_report()
    if cfg is not None:
        report = run(Detector(cfg, timeout=timeout, check_model=model).run())
    assert report is not None
    if as_json:
        print_json(report.as_dict(__version__))
    else:
        render(report)
    raise typer.Exit(report.exit_code)


def preflight(cfg: Settings) -> Database | None:
    """``serve``'s probes before it starts: on a failure one line on stderr and the doctor's exit
    code; warnings that matter once running are logged. Returns the resolved database, kept open
    (the embedded server is then not restarted by the service); the caller closes it."""
    from mosaic_memory.health import Detector

    detector = Detector(cfg, timeout=cfg.probe_timeout, check_model=False, keep_database=True)
    report = run(detector.run())
    # Federation is an extra: an expired certificate or a peer that is down must not keep this
    # instance's own memory from serving. They are logged, and doctor reports them as failures.
    for probe in report.probes:
        if probe.name.startswith("federation.") and probe.status == "fail":
            log.warning("%s: %s (%s)", probe.name, probe.detail, probe.remedy)
            probe.status = "warn"
    failed = report.first_failure
    if failed is not None:
        if detector.database is not None:
            detector.database.close()
        remedy = f": {failed.remedy}" if failed.remedy else ""
        fail(f"{failed.name}: {failed.detail}{remedy}", report.exit_code)
    for probe in report.probes:
        first_start = probe.name == "migrations" or (probe.name == "pgvector" and not probe.facts.get("installed"))
        if probe.status == "warn" and not first_start and not probe.name.startswith("federation."):
            log.warning("%s: %s (%s)", probe.name, probe.detail, probe.remedy)
    return detector.database


def quiet_startup_failure(app: object) -> logging.Filter:
    """A filter for uvicorn's error log that drops the traceback of a start-up failure ``serve``
    reports itself in one line (the app's ``startup_error``)."""

    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            if getattr(getattr(app, "state", None), "startup_error", None) is None:
                return True
            message = record.getMessage()
            return not (message.startswith("Traceback") or message.startswith("Application startup failed"))

    return _Drop()
