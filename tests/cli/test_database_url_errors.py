"""A bad or unreachable MOSAIC_DATABASE_URL: one line on stderr, exit 1, and never the password."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SECRET = "S3cretPW-do-not-print"


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(MOSAIC_CONFIG_FILE="", MOSAIC_DATABASE_URL=url, MOSAIC_PORT="1")
    return subprocess.run(
        [sys.executable, "-m", "mosaic_memory", *args], capture_output=True, text=True, env=env, timeout=120
    )


BAD_PORT = f"postgresql://bob:{SECRET}@db:notaport/mosaic"
NOT_A_URL = SECRET
UNREACHABLE = f"postgresql://bob:{SECRET}@127.0.0.1:1/mosaic"  # nothing listens there


@pytest.mark.parametrize(
    ("url", "args", "code"),
    [
        *[
            (url, args, 1)
            for url in (BAD_PORT, NOT_A_URL, UNREACHABLE)
            for args in (("db", "current"), ("db", "upgrade"), ("users", "list"))
        ],
        # serve probes the tier before it starts, and exits with doctor's code (3 config, 4 database)
        (BAD_PORT, ("serve",), 3),
        (NOT_A_URL, ("serve",), 3),
        (UNREACHABLE, ("serve",), 4),
    ],
)
def test_bad_database_url_is_one_line_without_the_password(url: str, args: tuple[str, ...], code: int) -> None:
    result = _cli(*args, url=url)
    assert result.returncode == code, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert SECRET not in out
    assert "Traceback" not in out, out
    assert result.stderr.startswith("error:"), result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr


def test_the_resolved_database_repr_hides_the_password() -> None:
    """AppState holds the Database; a logged or traceback-printed repr must not carry the password."""
    from mosaic_memory.config import Settings
    from mosaic_memory.tiers import open_database

    url = f"postgresql://bob:{SECRET}@db.example:5432/mosaic"
    database = open_database(Settings(database_url=url, tier="standalone"))
    assert database.url == url
    assert SECRET not in repr(database)
