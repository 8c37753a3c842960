# ruff: noqa: E501  (the trial data reads better on one line per skill)
"""Which text to embed for a skill: a trial with the real model.

Ranks 14 skills for 20 task phrasings (cosine, all-MiniLM-L6-v2) with four candidate texts and
prints top-1 hits and mean reciprocal rank. Run: python scripts/skill_embedding_trial.py
Result on 2026-11-25: "name: description" 17/20, MRR 0.900; with instructions appended 15/20,
MRR 0.858; description only 15/20, 0.858; name words + description 15/20, 0.850.
"""

import asyncio

import numpy as np

from embeddings import get_embedder

SKILLS = [
    (
        "deploy-to-staging",
        "Deploy the current branch to the staging environment",
        "1. Run the test suite. 2. Build the Docker image and tag it with the commit sha. 3. Push it to the registry. 4. Run `kubectl rollout` against the staging cluster. 5. Check the health endpoint.",
    ),
    (
        "write-release-notes",
        "Draft release notes from merged pull requests",
        "List PRs merged since the last tag with `gh pr list --state merged`. Group them into features, fixes and chores. Write one line per change, linking the PR.",
    ),
    (
        "rotate-api-keys",
        "Rotate expiring API credentials for third-party services",
        "Open the secrets manager, create a new key at the provider, update the secret, redeploy the consumers, then revoke the old key after 24 hours.",
    ),
    (
        "triage-bug-report",
        "Reproduce and label an incoming bug report",
        "Read the issue, try to reproduce it on main, add the labels bug/needs-repro/confirmed, estimate severity and assign an owner.",
    ),
    (
        "db-backup-restore",
        "Back up the PostgreSQL database and restore it to a new host",
        "Run pg_dump --format=custom, copy the file with rsync, create the database on the target, then pg_restore with --jobs=4 and verify row counts.",
    ),
    (
        "summarize-meeting",
        "Summarize a meeting transcript into decisions and action items",
        "Read the transcript, extract decisions, list action items with owners and due dates, keep it under 200 words.",
    ),
    (
        "code-review",
        "Review a pull request for correctness, tests and style",
        "Check out the branch, run the tests, read the diff file by file, comment on bugs first and style last, approve only when tests cover the change.",
    ),
    (
        "onboard-new-hire",
        "Set up accounts and access for a new team member",
        "Create the SSO account, add them to GitHub teams, grant VPN access, book the welcome meeting, share the onboarding doc.",
    ),
    (
        "profile-slow-endpoint",
        "Find why an HTTP endpoint is slow and fix it",
        "Reproduce with a load test, capture a flame graph with py-spy, look for N+1 queries with the SQL log, add indexes or caching, measure again.",
    ),
    (
        "translate-docs",
        "Translate product documentation into Spanish and German",
        "Export the markdown files, translate them keeping code blocks unchanged, have a native speaker review, publish to the localized site.",
    ),
    (
        "book-travel",
        "Book flights and hotel for a business trip",
        "Check the travel policy, compare fares, book refundable tickets, reserve a hotel near the office, add everything to the calendar.",
    ),
    (
        "incident-postmortem",
        "Write a blameless postmortem after a production outage",
        "Collect the timeline from the alerts and chat, identify root cause and contributing factors, list follow-up actions with owners.",
    ),
    (
        "upgrade-dependencies",
        "Upgrade the project's Python dependencies safely",
        "Run pip list --outdated, bump one major version at a time, read changelogs, run the full test suite, pin the new versions in the lock file.",
    ),
    (
        "send-invoice",
        "Create and email a monthly invoice to a client",
        "Export billable hours from the tracker, fill the invoice template, convert to PDF, email it to the client's accounts address.",
    ),
]
QUERIES = [
    ("push my branch to the test environment", "deploy-to-staging"),
    ("ship this build to pre-production so QA can try it", "deploy-to-staging"),
    ("what changed in this version? write it up for users", "write-release-notes"),
    ("our Stripe token expires next week", "rotate-api-keys"),
    ("a customer says the export button crashes", "triage-bug-report"),
    ("move the database to another server", "db-backup-restore"),
    ("make a copy of postgres before the migration", "db-backup-restore"),
    ("turn these call notes into a list of todos", "summarize-meeting"),
    ("look over my PR before I merge", "code-review"),
    ("a new engineer starts on Monday", "onboard-new-hire"),
    ("the /orders API takes 3 seconds to respond", "profile-slow-endpoint"),
    ("we need the manual in German", "translate-docs"),
    ("I have a conference in Berlin next month", "book-travel"),
    ("the site was down for an hour last night, write it up", "incident-postmortem"),
    ("bump numpy and pandas to the latest versions", "upgrade-dependencies"),
    ("bill the client for March", "send-invoice"),
    ("run kubectl rollout for staging", "deploy-to-staging"),
    ("use py-spy to find the bottleneck", "profile-slow-endpoint"),
    ("pg_restore the dump on the new machine", "db-backup-restore"),
    ("which skill fits: check that the tests cover the diff", "code-review"),
]


async def main() -> None:
    e = get_embedder("sentence-transformers")
    names = [s[0] for s in SKILLS]
    variants = {
        "name: description": [f"{n}: {d}" for n, d, i in SKILLS],
        "name: description\\ninstructions": [f"{n}: {d}\n{i}" for n, d, i in SKILLS],
        "description only": [d for n, d, i in SKILLS],
        "name words: description": [f"{n.replace('-', ' ')}: {d}" for n, d, i in SKILLS],
    }
    qv = np.stack([await e.embed_query(q) for q, _ in QUERIES])
    for label, texts in variants.items():
        dv = await e.embed_documents(texts)
        sims = qv @ dv.T
        rr = []
        top1 = 0
        for (_query, gold), row in zip(QUERIES, sims, strict=True):
            order = list(np.argsort(-row))
            r = order.index(names.index(gold)) + 1
            rr.append(1 / r)
            top1 += r == 1
        print(f"{label:40s} top1 {top1}/{len(QUERIES)}  MRR {np.mean(rr):.3f}")


asyncio.run(main())
