"""What scanning memory text for credentials costs, and what it catches: this project's pattern table
(``mosaic_memory/common/secret_scan.py``) beside ``detect-secrets``' plugins when that package is
importable (``pip install detect-secrets==1.5.0``; it is not a dependency).

``python -m benchmarks.secret_scan [--repeat 20] [--chunk 4096]``

Texts: the project's own documentation (``README.md``, ``docs/*.md``: technical prose that talks of
passwords, keys, tokens and database URLs) cut into chunks of ``--chunk`` bytes, as memory writes
arrive; and the same chunks with one canary credential spliced into each. Prints JSON: for each
scanner, microseconds per KB on each text (best of ``--repeat`` passes), each canary found whole,
in part or missed, and what it flagged in the documentation.

detect-secrets is driven as its file scan is (every plugin, the default heuristic filters, no
network verification), line by line: see :func:`detect_secrets_scanner`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import machine
from mosaic_memory.common.secret_scan import find_secrets

ROOT = Path(__file__).resolve().parent.parent

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM_BODY = "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0\nAK8ue2YJvSXbHnIvR"
# (name, the text an agent would store, the secret in it)
CANARIES: list[tuple[str, str, str]] = [
    ("aws access key id", "export AWS_ACCESS_KEY_ID=AKIAZ4Q7XKPL2M9RTB3W", "AKIAZ4Q7XKPL2M9RTB3W"),
    (
        "github classic token",
        "git push https with ghp_R8f2Kq9ZtL4mWx7Vb1Nc6Hy3Pd0Js5Ge2Ua8 today",
        "ghp_R8f2Kq9ZtL4mWx7Vb1Nc6Hy3Pd0Js5Ge2Ua8",
    ),
    (
        "github fine-grained token",
        "token github_pat_11AB2CD3E0fGhIjKlMnOpQ_rStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUv",
        "github_pat_11AB2CD3E0fGhIjKlMnOpQ_rStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUv",
    ),
    ("gitlab token", "CI uses glpat-Zx8Kq2Lm9Np4Rt7Vw1Yb", "glpat-Zx8Kq2Lm9Np4Rt7Vw1Yb"),
    (
        "slack bot token",
        "bot token xoxb-263594206564-2343594206574-FGqddMF8t08v8N7Oq4i57vs1",
        "xoxb-263594206564-2343594206574-FGqddMF8t08v8N7Oq4i57vs1",
    ),
    ("stripe live key", "charge with sk_live_51HqLyjWDarjtT1zdp7dc4eC3", "sk_live_51HqLyjWDarjtT1zdp7dc4eC3"),
    ("stripe test key", "tests use sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "openai legacy key",
        "OPENAI key 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",
        "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",
    ),
    (
        "openai project key",
        "use sk-proj-Xq7Lm2Np9Rt4Vw8Yb1Zc6Kd3Fg5Hj0Ls2Qa9Ws4Ed7Rf1Tg in the client",
        "sk-proj-Xq7Lm2Np9Rt4Vw8Yb1Zc6Kd3Fg5Hj0Ls2Qa9Ws4Ed7Rf1Tg",
    ),
    ("jwt", f"Authorization: Bearer {JWT}", JWT),
    (
        "pem private key",
        f"the deploy key:\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
        f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
    ),
    ("url password", "connect to postgresql://app:Wq7-vLp2xZ@db.internal:5432/app", "Wq7-vLp2xZ"),
    ("password assignment", "set password=Tr0ub4dor&3x in the vault", "Tr0ub4dor&3x"),
    ("quoted api key", 'config {"api_key": "9f8e7d6c5b4a39281706aa"}', "9f8e7d6c5b4a39281706aa"),
]


def documentation() -> str:
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(p.read_text() for p in paths if p.exists())


def chunks(text: str, size: int) -> list[str]:
    """Cut at line ends into pieces of about ``size`` bytes."""
    out: list[str] = []
    current: list[str] = []
    length = 0
    for line in text.splitlines(keepends=True):
        current.append(line)
        length += len(line.encode())
        if length >= size:
            out.append("".join(current))
            current, length = [], 0
    if current:
        out.append("".join(current))
    return out


Scanner = Callable[[str], list[str]]  # the secret values found in a text


def ours(text: str) -> list[str]:
    return [text[f.start : f.end] for f in find_secrets(text)]


def detect_secrets_scanner() -> Scanner | None:
    """Its file scan's line loop (every plugin, the default filters), on the text's lines.

    Its public call for a string, ``scan_line``, searches "eagerly" (every word of prose is a
    candidate: on the documentation it flagged about 2,000 distinct words) and changes the
    process-wide settings; the file path (``scan_file``) needs a file. So this calls the loop
    ``scan_file`` runs, a private function, under ``default_settings()``."""
    try:
        from detect_secrets.core.scan import _process_line_based_plugins
        from detect_secrets.settings import default_settings
    except ImportError:
        return None

    def scan(text: str) -> list[str]:
        with default_settings():
            lines = list(enumerate(text.splitlines(), start=1))
            return [s.secret_value or "" for s in _process_line_based_plugins(lines, filename="memory.txt")]

    return scan


def per_kb_us(scan: Scanner, texts: list[str], repeat: int) -> float:
    size_kb = sum(len(t.encode()) for t in texts) / 1024
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            scan(text)
        best = min(best, time.perf_counter() - started)
    return round(best / size_kb * 1e6, 1)


def coverage(scan: Scanner) -> dict[str, str]:
    """Per canary: "whole" (the secret is covered), "part" (something of it), or "missed"."""
    out: dict[str, str] = {}
    for name, text, secret in CANARIES:
        found = [value for value in scan(text) if value]
        if any(secret in value for value in found) or "".join(found).replace("\n", "") == secret.replace("\n", ""):
            out[name] = "whole"
        elif any(value in secret for value in found):
            out[name] = "part"
        else:
            out[name] = "missed"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=4096)
    args = parser.parse_args()
    prose = chunks(documentation(), args.chunk)
    leaky = [f"{chunk}\n{CANARIES[i % len(CANARIES)][1]}\n" for i, chunk in enumerate(prose)]
    scanners: dict[str, Scanner] = {"mosaic secret_scan": ours}
    other = detect_secrets_scanner()
    if other is not None:
        scanners["detect-secrets 1.5.0 (file scan loop, default settings)"] = other
    report: dict[str, Any] = {
        "machine": machine(),
        "texts": {"chunks": len(prose), "chunk_bytes": args.chunk, "kb": round(sum(map(len, prose)) / 1024, 1)},
        "scanners": {},
    }
    for name, scan in scanners.items():
        scan(prose[0])  # load and compile once
        flagged = sorted({value[:40] for chunk in prose for value in scan(chunk)})
        report["scanners"][name] = {
            "us_per_kb_prose": per_kb_us(scan, prose, args.repeat),
            "us_per_kb_with_secrets": per_kb_us(scan, leaky, args.repeat),
            "canaries": coverage(scan),
            "flagged_in_docs": flagged,
        }
    if other is None:
        report["note"] = "detect-secrets is not installed: pip install detect-secrets==1.5.0 to compare"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
