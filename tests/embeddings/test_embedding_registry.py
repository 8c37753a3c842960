"""The provider registry: built-ins, register(), and plugins found through entry points."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from embeddings import (
    ENTRY_POINT_GROUP,
    EmbeddingConfigError,
    OnnxEmbedder,
    OpenAICompatibleEmbedder,
    SentenceTransformersEmbedder,
    UnknownProviderError,
    available_providers,
    get_embedder,
    register,
)
from embeddings import registry as registry_module

BUILT_INS = {
    "sentence-transformers": SentenceTransformersEmbedder,
    "openai-compatible": OpenAICompatibleEmbedder,
    "onnx": OnnxEmbedder,
}


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Registrations made by a test vanish after it."""
    monkeypatch.setattr(registry_module, "_factories", dict(registry_module._factories))
    yield


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real installed distribution on sys.path declaring two embedder entry points."""
    (tmp_path / "fake_embedder_plugin.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            class HashEmbedder:
                name = "hash"
                model_id = "hash/v1"

                def __init__(self, dimensions: int = 8) -> None:
                    self.dimensions = dimensions

                async def embed_documents(self, texts):
                    return np.ones((len(texts), self.dimensions), dtype=np.float32) / np.sqrt(self.dimensions)

                async def embed_query(self, text):
                    return (await self.embed_documents([text]))[0]

                async def warm_up(self):
                    pass

                async def aclose(self):
                    pass
            """
        )
    )
    dist_info = tmp_path / "fake_embedder_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-embedder-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nhash = fake_embedder_plugin:HashEmbedder\nbroken = no_such_module_xyz:Thing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_built_ins_are_available() -> None:
    assert set(BUILT_INS) <= set(available_providers())


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_installed_entry_points_point_at_the_built_ins(name: str) -> None:
    (entry_point,) = entry_points(group=ENTRY_POINT_GROUP, name=name)

    assert entry_point.load() is BUILT_INS[name]


def test_get_embedder_builds_a_lazy_provider() -> None:
    embedder = get_embedder("sentence-transformers", batch_size=8)

    assert isinstance(embedder, SentenceTransformersEmbedder)
    assert embedder.model_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownProviderError) as caught:
        get_embedder("word2vec")

    message = str(caught.value)
    assert "'word2vec'" in message
    for name in BUILT_INS:
        assert name in message
    assert caught.value.known == available_providers()


@pytest.mark.usefixtures("isolated_registry")
async def test_plugin_from_an_entry_point_is_discovered(plugin_dist: Path) -> None:
    assert {"hash", "broken"} <= set(available_providers())

    embedder = get_embedder("hash", dimensions=4)

    assert embedder.model_id == "hash/v1"
    assert (await embedder.embed_documents(["a", "b"])).shape == (2, 4)


@pytest.mark.usefixtures("isolated_registry")
def test_a_broken_plugin_fails_with_a_config_error(plugin_dist: Path) -> None:
    with pytest.raises(EmbeddingConfigError, match=r"'broken'.*no_such_module_xyz"):
        get_embedder("broken")


@pytest.mark.usefixtures("isolated_registry")
def test_register_adds_and_replaces_providers() -> None:
    register("tiny", lambda **options: OnnxEmbedder(**options))
    register("sentence-transformers", lambda **options: OnnxEmbedder(**options))

    assert "tiny" in available_providers()
    assert isinstance(get_embedder("tiny"), OnnxEmbedder)
    assert isinstance(get_embedder("sentence-transformers"), OnnxEmbedder)


def test_blank_name_cannot_be_registered() -> None:
    with pytest.raises(EmbeddingConfigError):
        register("  ", SentenceTransformersEmbedder)


def test_options_the_provider_does_not_take_are_a_config_error() -> None:
    with pytest.raises(EmbeddingConfigError, match=r"'onnx'.*'model'"):
        get_embedder("onnx", model="all-MiniLM-L6-v2")


def test_missing_required_options_are_a_config_error() -> None:
    with pytest.raises(EmbeddingConfigError, match=r"'openai-compatible'.*base_url"):
        get_embedder("openai-compatible", model="m", api_key="sk-secret")


def test_invalid_option_values_are_a_config_error() -> None:
    with pytest.raises(EmbeddingConfigError, match="batch_size"):
        get_embedder("sentence-transformers", batch_size=0)
