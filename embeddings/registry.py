"""Find embedding providers by name: the built-ins, `register()` calls, and installed plugins.

Plugins declare an entry point in the group "mosaic_memory.embedders" whose name is the provider
name and whose object is a callable (usually the class) returning an Embedder.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from embeddings.base import Embedder, EmbeddingConfigError, UnknownProviderError
from embeddings.onnx import OnnxEmbedder
from embeddings.openai_compatible import OpenAICompatibleEmbedder
from embeddings.sentence_transformers import SentenceTransformersEmbedder

ENTRY_POINT_GROUP = "mosaic_memory.embedders"

EmbedderFactory = Callable[..., Embedder]

# The built-ins are also declared as entry points; registering them directly keeps them working
# when the package metadata is missing (e.g. running from a source tree that was never installed).
_factories: dict[str, EmbedderFactory] = {
    SentenceTransformersEmbedder.name: SentenceTransformersEmbedder,
    OpenAICompatibleEmbedder.name: OpenAICompatibleEmbedder,
    OnnxEmbedder.name: OnnxEmbedder,
}


def register(name: str, factory: EmbedderFactory) -> None:
    """Make `factory(**options)` available as provider `name`, replacing any earlier one."""
    if not name.strip():
        raise EmbeddingConfigError("a provider name must not be blank")
    _factories[name] = factory


def available_providers() -> list[str]:
    """Names of every registered and installed provider, sorted."""
    return sorted({*_factories, *_plugins()})


def get_embedder(name: str, **options: Any) -> Embedder:
    """A new, not yet loaded embedder from provider `name`, built with `options`.

    Raises UnknownProviderError (listing the known names) for an unknown name, and
    EmbeddingConfigError when a plugin fails to import or the options do not fit the provider.
    """
    factory = _factories.get(name)
    if factory is None:
        plugin = _plugins().get(name)
        if plugin is None:
            raise UnknownProviderError(name, available_providers())
        try:
            factory = plugin.load()
        except Exception as exc:  # a broken plugin can fail in any way while importing
            raise EmbeddingConfigError(f"embedding provider {name!r} ({plugin.value}) failed to load: {exc}") from exc
        register(name, factory)
    _check_options(name, factory, options)
    return factory(**options)


def _plugins() -> dict[str, EntryPoint]:
    """Installed entry points not shadowed by a registered provider (read afresh on each call)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in _factories}


def _check_options(name: str, factory: EmbedderFactory, options: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # some callables have no introspectable signature
        return
    try:
        signature.bind(**options)
    except TypeError as exc:
        raise EmbeddingConfigError(f"embedding provider {name!r}: {exc}") from None
