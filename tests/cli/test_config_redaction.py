"""'config show' prints no credential, wherever it sits: key settings, or the user info and
query of a URL setting (an OpenAI-compatible endpoint may take its key as ?api-key=)."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_config_show_hides_credentials_inside_urls() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env.update(
        MOSAIC_CONFIG_FILE="",
        MOSAIC_URL="https://svc:UrlPw-1@memory.example:8443/",
        MOSAIC_EMBEDDINGS__BASE_URL="http://emb:EmbPw-2@emb.example/v1?key=EmbQuery-3",
        MOSAIC_JOBS__LLM__BASE_URL="https://llm.example/openai/v1?api-version=1&api-key=LlmQuery-4",
        MOSAIC_JOBS__LLM__API_KEY="sk-LlmKey-5",
        MOSAIC_DATABASE_URL="postgresql://bob:DbPw-6@db.example/mosaic",
    )
    outputs = {}
    for args in (["config", "show", "--json"], ["config", "show"]):
        result = subprocess.run(
            [sys.executable, "-m", "mosaic_memory", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 0, result.stderr
        for secret in ("UrlPw-1", "EmbPw-2", "EmbQuery-3", "LlmQuery-4", "sk-LlmKey-5", "DbPw-6"):
            assert secret not in result.stdout + result.stderr, (secret, result.stdout)
        outputs[args[-1]] = result.stdout
    # What is not secret stays readable: where each endpoint is.
    data = json.loads(outputs["--json"])
    assert data["url"] == "https://svc:***@memory.example:8443/"
    assert data["embeddings"]["base_url"] == "http://emb:***@emb.example/v1?key=***"
    assert data["jobs"]["llm"]["base_url"] == "https://llm.example/openai/v1?api-version=***&api-key=***"
