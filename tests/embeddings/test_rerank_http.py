"""The http-rerank provider against a stand-in speaking TEI's and Cohere's /rerank over a real socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from embeddings.base import EmbeddingProviderUnavailable, UnknownProviderError
from embeddings.rerank import get_reranker


async def _serve(reply: object, seen: list[dict]) -> tuple[asyncio.Server, str]:  # type: ignore[type-arg]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(v)
            for k, v in (ln.split(b":", 1) for ln in head.split(b"\r\n")[1:] if b":" in ln)
            if k.lower() == b"content-length"
        )
        seen.append(json.loads(await reader.readexactly(length)))
        body = json.dumps(reply).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
async def seen() -> AsyncIterator[list[dict]]:  # type: ignore[type-arg]
    yield []


async def test_tei_protocol_scores_in_text_order(seen: list[dict]) -> None:  # type: ignore[type-arg]
    server, url = await _serve([{"index": 1, "score": 0.9}, {"index": 0, "score": 0.2}], seen)
    async with server:
        rr = get_reranker("http-rerank", base_url=url)
        assert await rr.rerank("colour scheme?", ["cats", "dark themes"]) == [0.2, 0.9]
        await rr.aclose()
    assert seen[0]["query"] == "colour scheme?" and seen[0]["texts"] == ["cats", "dark themes"]


async def test_cohere_protocol_and_raw_logits(seen: list[dict]) -> None:  # type: ignore[type-arg]
    reply = {"results": [{"index": 0, "relevance_score": -3.0}, {"index": 1, "relevance_score": 4.0}]}
    server, url = await _serve(reply, seen)
    async with server:
        rr = get_reranker("http-rerank", base_url=url + "/v1", protocol="cohere", model="rerank-x")
        scores = await rr.rerank("q", ["a", "b"])
        await rr.aclose()
    assert scores[0] < 0.5 < scores[1] and all(0 <= s <= 1 for s in scores)
    assert seen[0]["documents"] == ["a", "b"] and seen[0]["model"] == "rerank-x"


async def test_malformed_reply_and_unknown_name(seen: list[dict]) -> None:  # type: ignore[type-arg]
    server, url = await _serve([{"index": 0, "score": 0.5}], seen)
    async with server:
        rr = get_reranker("http-rerank", base_url=url, api_key="sekret-key")
        with pytest.raises(EmbeddingProviderUnavailable) as err:
            await rr.rerank("q", ["a", "b"])
        await rr.aclose()
    assert "sekret" not in str(err.value)
    with pytest.raises(UnknownProviderError):
        get_reranker("no-such-reranker")
