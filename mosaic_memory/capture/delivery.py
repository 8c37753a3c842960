"""Send captured events: into the spool first, then from the spool to the service, oldest first.

Every event carries a stable id (``text.log_event``) and ``POST /v1/logs`` stores an id it
already holds only once, so the order "send, then remove from the spool" never doubles an event:
if the process dies between the two, the next sender re-sends the batch and the service answers
``duplicates``. Nothing is removed before the service has taken it (or refused it as invalid:
then it is set aside in the rejected file, never retried forever).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from mosaic_memory.capture.spool import Spool, SpoolBusy
from mosaic_memory.client_core import MosaicClientError, RestClient

__all__ = ["BATCH", "Delivery", "deliver"]

BATCH = 200
# Refusals that name the events themselves (bad field, too large, id clash): set those aside.
# Any other failure (unreachable, 5xx, key refused, rate limit) leaves them waiting.
_INVALID = {400, 409, 413, 422}


@dataclass
class Delivery:
    """What one call did: events captured into the spool, stored, already stored, set aside."""

    captured: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    drained: bool = False  # the spool was empty when this call finished
    sender: bool = True  # False: another process was sending; our events wait for it
    problem: str | None = None  # why events are still waiting, in one line


async def deliver(
    spool: Spool,
    events: list[dict[str, Any]],
    *,
    url: str,
    api_key: str | None,
    timeout: float,
    owner: str | None = None,
) -> Delivery:
    """Spool ``events`` (fsync'd), then send the spool within ``timeout`` seconds in all.

    Never raises for an unreachable or refusing service: the answer's ``problem`` says why
    events wait. Raises SpoolBusy only when the spool stayed locked for the whole budget."""
    deadline = time.monotonic() + timeout
    report = Delivery(captured=len(events))
    spool.append(events, deadline=deadline)
    if not api_key:
        report.problem = "no API key: set MOSAIC_API_KEY (events wait in the spool)"
        return report
    with spool.sender() as mine:
        if not mine:
            report.sender = False
            return report
        try:
            await _send(spool, report, url, api_key, deadline, owner)
        except SpoolBusy:
            report.problem = "the capture spool stayed locked by another process"
    return report


async def _send(spool: Spool, report: Delivery, url: str, key: str, deadline: float, owner: str | None) -> None:
    size = BATCH
    # The bare REST client: a hook does not load the schemas of every route (RESULTS.md, capture).
    async with RestClient(url, key, timeout=max(0.05, deadline - time.monotonic())) as mm:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                report.problem = "the time budget ran out before the spool was empty"
                return
            batch, used = spool.peek(size, deadline=deadline)
            if used == 0:
                report.drained = True
                return
            if not batch:  # only unreadable lines: set them aside
                spool.drop(used, deadline=deadline)
                continue
            try:
                body = {"events": batch, **({"owner": owner} if owner else {})}
                out = await asyncio.wait_for(mm.request("POST", "/v1/logs", json=body), timeout=left)
            except TimeoutError:
                report.problem = f"the service at {url} did not answer in time"
                return
            except MosaicClientError as exc:
                if exc.status not in _INVALID:
                    report.problem = exc.detail if exc.status == 0 else f"{exc.error}: {exc.detail}"
                    return
                if len(batch) > 1:
                    size = 1  # find the event it refuses: one at a time until it is set aside
                    continue
                spool.reject(batch, f"{exc.error}: {exc.detail}", used, deadline=deadline)
                report.rejected += 1
                size = BATCH
                continue
            spool.drop(used, deadline=deadline)
            report.sent += int(out["count"])  # LogBatchOut's fields
            report.duplicates += int(out["duplicates"])
