"""Synthetic agent sessions on distinct topics."""

REPLICA = [
    "User asked how to set up a streaming replica for their PostgreSQL 16 primary",
    "Created a replication role with REPLICATION LOGIN on the primary database",
    "Edited pg_hba.conf to allow the replica host 10.0.0.12 to connect for replication",
    "Ran pg_basebackup -R against the primary to seed the standby's data directory",
    "The standby started and pg_stat_replication shows it streaming with no lag",
    "User decided to keep synchronous_commit off for the replica",
    "Checked the WAL sender status on the primary database",
    "Replication slot replica_1 was created to keep WAL for the standby",
]
FONT = [
    "User wants a new font for the code editor and the terminal",
    "Compared JetBrains Mono, Fira Code and Iosevka for legibility at small sizes",
    "User dislikes ligatures and prefers a monospaced font without them",
    "Set the editor font to Iosevka at 14 points with ligatures disabled",
    "The terminal now uses the same Iosevka typeface",
    "User said the font looks crisp on the 4K monitor",
]
TRIP = [
    "User is planning a trip to Lisbon in May with their partner",
    "Searched for direct flights from Berlin to Lisbon around May 12",
    "Booked a hotel in the Alfama district for five nights",
    "User wants to visit Sintra on a day trip by train",
    "Added a reminder to buy a Lisboa Card for public transport and museums",
    "User prefers restaurants serving seafood near the river",
]
CI = [
    "User's GitHub Actions pipeline fails on the integration tests job",
    "The failing step needs a Redis service container that was missing",
    "Added a redis:7 service to the workflow with a health check",
    "Cached the pip downloads between workflow runs to speed up the build",
    "The pipeline is green again and takes six minutes instead of eleven",
]
