"""Do summaries keep every fact? Sessions with known facts, summarized, then asked about each fact.

Each session mixes a few facts (a preference, a decision, an outcome…), one working line beside
each fact on the same topic, and boilerplate (acknowledgements, tool chatter). All sessions belong
to one user. After one ``summarize`` run, each fact's question is searched (default mode):

- ``insight_cited_at_5``: the share of facts whose source log is cited (``insight_sources``) by one
  of the top 5 insights — the issue's measure;
- ``insight_kept_at_5``: the same, and that insight's text still carries the fact (its key phrase),
  since a link alone does not say the fact survived summarization;
- ``raw_log_at_10``: the share of facts whose log is among the top 10 logs for the same question.

    python benchmarks/summary_recall.py            # about a minute after the model loads
    python benchmarks/summary_recall.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

# Run from a checkout: import this tree's packages, not an installed copy.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MOSAIC_CONFIG_FILE", "")

from jobs import build_runner
from mosaic_memory.config import Settings
from mosaic_memory.container import build_state
from mosaic_memory.models import AgentLog, InsightSource, utc_now
from mosaic_memory.search.schemas import SearchRequest


@dataclass(frozen=True)
class Fact:
    line: str  # the log line that states it
    support: str  # a working line on the same topic, logged just before it
    question: str
    key: str  # a phrase an insight must still hold to count as keeping the fact


FACTS = [
    Fact("User said they want all deploy notifications in #ops-alerts, not #general",
         "Opened the Slack integration settings of the deploy bot",
         "where should deploy notifications go?", "#ops-alerts"),
    Fact("Ran the migration 0042 on staging; it took 14 minutes and locked the orders table",
         "Checked the migration plan for the orders schema change",
         "how long did migration 0042 take on staging?", "14 minutes"),
    Fact("User prefers tabs over spaces, with a width of 4, in all Go code",
         "Ran gofmt on the handlers package",
         "does the user want tabs or spaces in Go?", "tabs"),
    Fact("Decided to move the nightly backups from 02:00 to 04:30 UTC to avoid the batch window",
         "Listed the cron entries on the backup host",
         "when do the nightly backups run now?", "04:30"),
    Fact("The user's manager is Priya Raman, who approves all production access requests",
         "Drafted an email asking for production database access",
         "who approves production access requests?", "Priya"),
    Fact("Load test result: the checkout API handled 1,800 requests per second at p95 120 ms",
         "Started k6 with 200 virtual users against the checkout endpoint",
         "what throughput did the checkout API reach in the load test?", "1,800"),
    Fact("User is allergic to peanuts; never suggest recipes with nuts",
         "Looked up dinner recipes for the weekend",
         "what food allergy does the user have?", "peanuts"),
    Fact("Chose Redis Streams over Kafka for the event bus because the team is small",
         "Compared managed Kafka pricing tiers",
         "which technology was picked for the event bus?", "Redis Streams"),
    Fact("The flaky test test_refund_webhook fails because of a timezone assumption in its fixture",
         "Re-ran the payments test suite three times",
         "why does the refund webhook test fail intermittently?", "timezone"),
    Fact("User wants code reviews to focus on security issues first and style last",
         "Opened pull request 318 for review",
         "how does the user want their code reviewed?", "security"),
    Fact("The staging database password rotates every 30 days through Vault",
         "Queried Vault for the staging secret path",
         "how often is the staging database password rotated?", "30 days"),
    Fact("User's daughter has a piano recital on March 14 at 6 pm",
         "Added an entry to the family calendar",
         "when is the piano recital?", "March 14"),
    Fact("Upgraded the cluster to Kubernetes 1.31; the ingress controller needed a new Helm chart",
         "Drained node pool A before the upgrade",
         "which Kubernetes version does the cluster run?", "1.31"),
    Fact("User prefers answers in British English with metric units",
         "Rewrote the summary paragraph of the report",
         "which spelling and units does the user like?", "British"),
    Fact("The invoice service is owned by the billing team; page them in #billing-oncall",
         "Searched the service catalogue for invoice-service",
         "who owns the invoice service?", "billing team"),
    Fact("Disk on build-runner-3 filled up because Docker images were never pruned; added a weekly prune job",
         "Ran df -h on build-runner-3",
         "why did the build runner run out of disk space?", "prune"),
    Fact("User decided to cancel the Figma subscription at the end of the quarter",
         "Checked the SaaS spend dashboard",
         "what will happen to the Figma subscription?", "cancel"),
    Fact("The partner API rate limit is 600 requests per minute per key",
         "Read the API gateway configuration file",
         "what is the rate limit for partner API keys?", "600"),
    Fact("User likes to get the weekly status report on Friday mornings as a PDF",
         "Generated the status report from the project tracker",
         "when and how does the user want the status report?", "Friday"),
    Fact("The production web servers run Ubuntu 24.04 behind an HAProxy load balancer",
         "Logged in to web-1 over SSH",
         "which operating system do the production web servers use?", "Ubuntu 24.04"),
    Fact("Fixed the memory leak in the image resizer: a cache of decoded frames was never evicted",
         "Took a heap snapshot of the image resizer process",
         "what caused the memory leak in the image resizer?", "never evicted"),
    Fact("User's preferred airline is KLM and they always want an aisle seat",
         "Searched flights from Amsterdam to Boston",
         "which seat does the user want on flights?", "aisle"),
    Fact("Agreed with the user to freeze new features from December 15 until the January release",
         "Reviewed the release calendar with the user",
         "when does the feature freeze start?", "December 15"),
    Fact("The mobile app crash on login was caused by an expired TLS certificate pinned in version 5.2",
         "Pulled the crash reports from the mobile dashboard",
         "why did the mobile app crash on login?", "certificate"),
]  # fmt: skip

BOILERPLATE = [
    "ok",
    "done",
    "Running tests…",
    "Thanks!",
    "Sure, on it.",
    "Acknowledged.",
    "tool call: read_file src/app/main.py",
    "tool call: list_dir .",
    "exit code 0",
    "Let me check that.",
    "Working on it",
    "tool result: 42 lines",
]

SESSION_SIZES = (3, 2, 4, 3, 2, 3, 4, 3)  # facts per session; sums to len(FACTS)


def build_sessions(rng: random.Random) -> list[list[tuple[str, int | None]]]:
    """Per session, its lines in order: (text, index of the fact it states or None)."""
    assert sum(SESSION_SIZES) == len(FACTS)
    order = list(range(len(FACTS)))
    sessions = []
    start = 0
    for size in SESSION_SIZES:
        lines: list[tuple[str, int | None]] = []
        for f in order[start : start + size]:
            lines.append((rng.choice(BOILERPLATE), None))
            lines.append((FACTS[f].support, None))
            lines.append((rng.choice(BOILERPLATE), None))
            lines.append((FACTS[f].line, f))
        lines.append((rng.choice(["done", "ok", "Thanks!"]), None))
        sessions.append(lines)
        start += size
    return sessions


async def main(seed: int, out_json: Path | None) -> dict[str, Any]:
    rng = random.Random(seed)
    url = os.environ.get("MOSAIC_DATABASE_URL")
    tmp = Path(tempfile.mkdtemp(prefix="mosaic-bench-", dir="/tmp"))
    tmp.chmod(0o755)
    settings = (
        Settings(tier="standalone", database_url=url, data_dir=tmp) if url else Settings(tier="local", data_dir=tmp)
    )
    state = await build_state(settings)
    try:
        async with state.sessionmaker() as session, session.begin():
            _, token = await state.owners.create_user(session, f"bench-facts-{uuid.uuid4().hex[:8]}")
            principal = await state.owners.authenticate(session, token)
        owner = principal.owner_ids[0]
        sessions = build_sessions(rng)
        texts = [t for lines in sessions for t, _ in lines]
        vectors = await state.embedder.embed_documents(texts)
        fact_log: dict[int, uuid.UUID] = {}
        rows = []
        start = utc_now() - timedelta(hours=3)
        n = 0
        for s, lines in enumerate(sessions):
            for text, stated in lines:
                log_id = uuid.uuid4()
                if stated is not None:
                    fact_log[stated] = log_id
                when = start + timedelta(minutes=n)
                rows.append(
                    {
                        "owner_id": owner,
                        "id": log_id,
                        "session_id": f"facts-{s}",
                        "agent_id": "helper",
                        "level": "info",
                        "content": text,
                        "metadata_": {},
                        "occurred_at": when,
                        "created_at": when,
                        "content_hash": uuid.uuid4().hex,
                        "embedding": vectors[n],
                        "embedding_model": state.embedder.model_id,
                        "tier": "hot",
                    }
                )
                n += 1
        async with state.sessionmaker() as session, session.begin():
            await session.execute(insert(AgentLog), rows)

        t0 = time.perf_counter()
        run = await build_runner(state).run("summarize", trigger="cli")
        summarize_s = time.perf_counter() - t0
        async with state.sessionmaker() as session:
            links = (await session.execute(select(InsightSource).where(InsightSource.owner_id == owner))).scalars()
            cites: dict[uuid.UUID, set[uuid.UUID]] = {}
            for link in links:
                cites.setdefault(link.insight_id, set()).add(link.log_id)

        cited = kept = raw = 0
        misses = []
        for f, fact in enumerate(FACTS):
            async with state.sessionmaker() as session, session.begin():
                ins = await state.search.search(
                    session, principal, SearchRequest(query=fact.question, k=5, kinds=["insights"])
                )
                logs = await state.search.search(
                    session, principal, SearchRequest(query=fact.question, k=10, kinds=["logs"])
                )
            citing = [h for h in ins.hits if fact_log[f] in cites.get(h.id, set())]
            cited += bool(citing)
            ok = any(fact.key.lower() in h.content.lower() for h in citing)
            kept += ok
            raw += any(h.id == fact_log[f] for h in logs.hits)
            if not ok:
                misses.append(fact.question)
        n_facts = len(FACTS)
        result = {
            "sessions": len(sessions),
            "logs": len(rows),
            "facts": n_facts,
            "status": run.status,
            "counts": run.counts,
            "insights": len(cites),
            "links": sum(len(v) for v in cites.values()),
            "insight_cited_at_5": round(cited / n_facts, 3),
            "insight_kept_at_5": round(kept / n_facts, 3),
            "raw_log_at_10": round(raw / n_facts, 3),
            "summarize_s": round(summarize_s, 2),
            "missed_questions": misses,
        }
        print(json.dumps(result, indent=2))
        if out_json:
            out_json.write_text(json.dumps(result, indent=2))
        return result
    finally:
        await state.aclose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    asyncio.run(main(args.seed, args.json))
