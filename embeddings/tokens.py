"""Counting tokens with a real tokenizer: the bundled all-MiniLM-L6-v2's own (WordPiece, ``tokenizer.json``).

Used to pack text into a token budget. It counts what this model's tokenizer produces, with no
special tokens and no truncation. A chat model's tokenizer gives a count of the same order, not
the same number: measured here, WordPiece makes 1.14 tokens per word of the plain-English facts of
``benchmarks/corpus.py`` and 2.1 per word of ``docs/architecture.md`` (identifiers and paths split
finely). ``tiktoken`` would need to download its encodings, so it is not used. Counting takes about
0.8 ms per KB of text on one core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from embeddings._shared import BUNDLED_MODEL_NAME, MODEL_CACHE, bundled_model_path

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["BundledTokenCounter", "TokenCounter"]


class TokenCounter(Protocol):
    """Counts the tokens of texts; ``name`` says which tokenizer."""

    @property
    def name(self) -> str: ...

    def count(self, texts: Sequence[str]) -> list[int]:
        """The number of tokens of each text, in order (CPU work: call it off the event loop)."""
        ...


class BundledTokenCounter:
    """The bundled model's WordPiece tokenizer, loaded once per process on first use."""

    name = f"{BUNDLED_MODEL_NAME} WordPiece"

    def _tokenizer(self) -> Tokenizer:
        return MODEL_CACHE.get_or_load(("tokenizer", BUNDLED_MODEL_NAME), _load)

    def count(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encodings = self._tokenizer().encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]


def _load() -> Tokenizer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer
