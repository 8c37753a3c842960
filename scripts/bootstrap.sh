#!/usr/bin/env bash
# Create .venv (if missing) and install Mosaic Memory into it, CPU-only torch first, every
# dependency at the exact version of requirements.lock (pip constraints; pyproject.toml keeps the
# ranges for library users). Refreshing the lock: docs/security.md.
# Usage: scripts/bootstrap.sh [extras]   e.g. scripts/bootstrap.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${MOSAIC_VENV:-.venv}"
EXTRAS="${1:-}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: Python 3.11 or newer is required (found $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# A bare 'torch' requirement would pull a multi-GB CUDA build: install the CPU build first.
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    echo "==> installing torch (CPU build)"
    "${PIP[@]}" install "torch==2.13.0"
fi
SPEC="."
[ -n "$EXTRAS" ] && SPEC=".[$EXTRAS]"
echo "==> installing mosaic-memory $SPEC"
"${PIP[@]}" install -c requirements.lock -e "$SPEC"
