"""A retrieval corpus the project wrote itself: 30 topics from several conversation sessions.

Each topic holds the fact an agent stored (``fact``), two paraphrases of it (``same``: what a
later session would say in other words), a related but distinct fact (``other``: often a
contradiction or a neighbour, e.g. light vs dark themes), and two questions that the fact
answers, written without reusing its key words where that was natural.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    fact: str
    same: tuple[str, str]
    other: str
    questions: tuple[str, str]


TOPICS: tuple[Topic, ...] = (
    Topic(
        "The user prefers dark themes in every editor",
        ("She always switches her IDE to a dark colour scheme", "Dark mode is what the user wants in code editors"),
        "The user prefers light themes in every editor",
        ("what colour scheme does she like for coding?", "should the editor be set to night mode for her?"),
    ),
    Topic(
        "The user is allergic to peanuts",
        ("Peanuts give the user an allergic reaction", "She cannot eat anything containing peanuts"),
        "The user's son is allergic to shellfish",
        ("are there foods she must avoid?", "can I order her a satay dish?"),
    ),
    Topic(
        "The user's dog is a golden retriever called Biscuit",
        ("Biscuit, the family golden retriever, belongs to the user", "The user owns a golden retriever named Biscuit"),
        "The user's neighbour has a beagle called Max",
        ("what is the name of her pet?", "which breed is her dog?"),
    ),
    Topic(
        "The user works as a data engineer at a logistics company",
        ("Her job is data engineering for a shipping firm", "She builds data pipelines at a logistics business"),
        "The user's brother works as a nurse in a hospital",
        ("what does she do for a living?", "which industry is her employer in?"),
    ),
    Topic(
        "The user wants code reviews to be short and to the point",
        ("Keep review comments brief for this user", "She dislikes long, verbose pull request feedback"),
        "The user wants commit messages to explain the reason for a change",
        ("how should I write feedback on her pull requests?", "what review style does she appreciate?"),
    ),
    Topic(
        "The user lives in Lisbon, Portugal",
        ("Her home is in Lisbon", "She is based in the Portuguese capital"),
        "The user grew up in Porto",
        ("which city is she living in now?", "what time zone should meetings assume for her?"),
    ),
    Topic(
        "The user runs a marathon every spring",
        ("Each spring she competes in a 42 km race", "She does one full marathon a year, in the spring"),
        "The user swims twice a week in the winter",
        ("what endurance sport does she do?", "is she training for any long-distance race?"),
    ),
    Topic(
        "The user's favourite programming language is Rust",
        ("Rust is the language she enjoys most", "She likes writing Rust more than any other language"),
        "The user's least favourite programming language is PHP",
        ("which language should examples be written in for her?", "what does she like to code in?"),
    ),
    Topic(
        "Deployments to production happen only on Tuesdays",
        ("Production releases are shipped on Tuesdays", "The team deploys to prod once a week, on Tuesday"),
        "Deployments to staging happen every night",
        ("when can we release to live?", "which weekday are prod rollouts allowed?"),
    ),
    Topic(
        "The user is vegetarian",
        ("She does not eat meat", "The user follows a meat-free diet"),
        "The user is trying to eat less sugar",
        ("can I book her a steakhouse for dinner?", "what kind of restaurant suits her diet?"),
    ),
    Topic(
        "The user's manager is called Priya Raman",
        ("Priya Raman is the person she reports to", "She reports to Priya Raman"),
        "The user's mentor is called David Okafor",
        ("who is her boss?", "whom should I copy on her escalations?"),
    ),
    Topic(
        "The user prefers meetings after 10 in the morning",
        ("Don't schedule her calls before 10am", "She likes her meetings to start late morning or later"),
        "The user prefers to finish work by 6 in the evening",
        ("what is the earliest time I can book a call with her?", "is an 8:30 standup ok for her?"),
    ),
    Topic(
        "The user speaks German and Japanese fluently",
        ("She is fluent in both German and Japanese", "German and Japanese are languages she speaks well"),
        "The user is learning Korean at evening classes",
        ("which foreign languages can she use at work?", "can she read a document written in Japanese?"),
    ),
    Topic(
        "The user's laptop is a ThinkPad running Arch Linux",
        ("She works on a Lenovo ThinkPad with Arch installed", "Her machine is a ThinkPad on Arch Linux"),
        "The user's phone is an iPhone 15",
        ("what operating system is on her computer?", "will a macOS-only tool work for her?"),
    ),
    Topic(
        "The user likes answers with code examples rather than long explanations",
        ("Show her a snippet instead of paragraphs of text", "She prefers example code over prose explanations"),
        "The user likes answers with links to the official documentation",
        ("how should I format my replies to her?", "does she want detailed written explanations?"),
    ),
    Topic(
        "The project uses PostgreSQL 16 as its main database",
        ("The main datastore of the project is Postgres 16", "PostgreSQL version 16 is the project's primary database"),
        "The project uses Redis as a cache",
        ("which database does the project store data in?", "what SQL engine should queries target?"),
    ),
    Topic(
        "The user has two children, aged 4 and 7",
        ("She is a mother of two kids, 4 and 7 years old", "Her children are seven and four"),
        "The user's sister has three children",
        ("how many kids does she have?", "how old are her children?"),
    ),
    Topic(
        "The user drinks her coffee black with no sugar",
        ("She takes coffee without milk or sugar", "Black coffee, unsweetened, is how she likes it"),
        "The user drinks green tea in the afternoon",
        ("how does she take her coffee?", "should I add milk to her cup?"),
    ),
    Topic(
        "The user is afraid of flying and prefers trains",
        (
            "She avoids planes because flying scares her and takes the train",
            "Flying makes her anxious, so she travels by rail",
        ),
        "The user gets seasick on ferries",
        ("how should I book her trip to Madrid?", "is a flight a good option for her travel?"),
    ),
    Topic(
        "The user's birthday is on the 14th of March",
        ("She was born on March 14", "Her birthday falls on 14 March"),
        "The user's wedding anniversary is on the 2nd of June",
        ("when is her birthday?", "which day should I send her birthday wishes?"),
    ),
    Topic(
        "The user uses tabs for indentation, never spaces",
        ("She indents code with tab characters", "Tabs, not spaces, are her indentation style"),
        "The user uses spaces for indentation, never tabs",
        ("how should her code be indented?", "what whitespace style does she want in source files?"),
    ),
    Topic(
        "The team's on-call rotation changes every Monday at noon",
        ("On-call duty hands over each Monday at 12:00", "Every Monday at midday the pager passes to the next person"),
        "The team's sprint planning happens every other Wednesday",
        ("when does the pager handover happen?", "at what time does a new on-call shift start?"),
    ),
    Topic(
        "The user is saving money to buy a house next year",
        (
            "She is putting money aside for a home purchase next year",
            "Next year she plans to buy a house and is saving for it",
        ),
        "The user is paying off a car loan",
        ("what is her main financial goal?", "is she planning a big purchase soon?"),
    ),
    Topic(
        "The user plays the cello in an amateur orchestra",
        ("She is a cellist in a community orchestra", "In her free time she plays cello with an amateur ensemble"),
        "The user listens to jazz while working",
        ("which instrument does she play?", "does she make music as a hobby?"),
    ),
    Topic(
        "Invoices must be sent in euros, never in dollars",
        ("Always bill in EUR, not USD", "Invoices go out in euros only"),
        "Invoices must be paid within 30 days",
        ("which currency should the bill use?", "can I invoice the client in USD?"),
    ),
    Topic(
        "The user wants to be addressed as Sam",
        ("Call the user Sam", "She goes by Sam"),
        "The user's full name is Samantha Ortiz",
        ("what name should I use when greeting her?", "how does she like to be called?"),
    ),
    Topic(
        "The user's car is an electric Renault Zoe",
        ("She drives a Renault Zoe, which is electric", "Her vehicle is a battery-powered Renault Zoe"),
        "The user's partner drives a diesel Volvo",
        ("what car does she drive?", "does she need a charging station at the hotel?"),
    ),
    Topic(
        "The user prefers metric units in every answer",
        ("Use kilometres and kilograms with her", "She wants measurements in the metric system"),
        "The user prefers temperatures in Fahrenheit",
        ("should distances be in miles or kilometres for her?", "which measurement system does she use?"),
    ),
    Topic(
        "The integration tests are flaky because of a race in the job queue",
        (
            "A race condition in the job queue makes the integration suite unreliable",
            "Integration tests fail at random due to a queue race",
        ),
        "The unit tests are slow because of database fixtures",
        ("why do the integration tests fail intermittently?", "what causes the unreliable test runs?"),
    ),
    Topic(
        "The user is moving to Berlin in September",
        ("She relocates to Berlin this September", "In September she will move to Berlin"),
        "The user visited Berlin last September for a conference",
        ("where is she relocating?", "when is her move happening?"),
    ),
)


# Facts an agent finds by an exact token (an error code, a host, a ticket, a flag), asked about
# with that token and otherwise different words: the queries keyword search exists for.
IDENTIFIERS: tuple[tuple[str, str], ...] = (
    ("Error E4711 means the disk quota of the build cache is exhausted", "what does E4711 mean?"),
    ("The staging database runs on host db-stg-3.internal", "which machine is db-stg-3?"),
    ("Ticket OPS-2291 tracks the flaky login test", "what is OPS-2291 about?"),
    ("Set FEATURE_NEWCHECKOUT=1 to enable the new checkout flow", "what does FEATURE_NEWCHECKOUT do?"),
    ("The nightly export writes to bucket s3://acme-exports-eu", "where does acme-exports-eu get used?"),
    ("Invoice INV-88213 was paid twice by mistake", "anything odd with INV-88213?"),
    ("Port 5433 is the read replica of the main PostgreSQL", "what listens on 5433?"),
    ("The kubectl context prod-fra1 points at the Frankfurt cluster", "which cluster is prod-fra1?"),
    ("Library libfoo 2.3.1 breaks TLS on Alpine images", "problems with libfoo 2.3.1?"),
    ("The VPN profile corp-split only routes 10.20.0.0/16", "what does corp-split route?"),
    ("Cron job reindex-7 rebuilds the search index at 04:10", "when does reindex-7 run?"),
    ("Customer ACME-4410 is on the enterprise plan with SSO", "which plan is ACME-4410 on?"),
    ("Alert HighLatencyP99 fires when p99 exceeds 800 ms for 5 minutes", "when does HighLatencyP99 trigger?"),
    ("Branch release/2026.11 is frozen until the audit ends", "can I merge into release/2026.11?"),
    ("The GPU node gpu-a100-07 has a failing fan", "is gpu-a100-07 healthy?"),
    ("Secret rotation for key kms-alias-payments is due in March", "when is kms-alias-payments rotated?"),
    ("Model checkpoint ckpt-0412 had the best validation loss", "why keep ckpt-0412?"),
    ("Migration 20261103_add_index locks the orders table for minutes", "is 20261103_add_index safe to run?"),
    ("The printer PRN-3F-EAST jams with thick paper", "trouble with PRN-3F-EAST?"),
    ("Endpoint /v2/reports/export times out above 50k rows", "limits of /v2/reports/export?"),
)
