"""pgvector's binary form, read without its text parser.

``SELECT vector_send(embedding)`` returns the vector as ``bytea``: two big-endian int16s (the
dimension, then zero) and the big-endian float4s. Decoding that with numpy is about a hundred times
cheaper than parsing the text form (``[0.1,0.2,…]``) that a plain ``SELECT embedding`` returns, which
cost half of an export and most of a hybrid search's keyword rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import func

__all__ = ["binary_vector", "from_vector_send"]


def binary_vector(column: Any) -> Any:
    """The SQL expression selecting ``column`` in binary form (label it as needed)."""
    return func.vector_send(column)


def from_vector_send(raw: bytes | memoryview) -> np.ndarray:
    """A little-endian float32 array from ``vector_send`` bytes."""
    return np.frombuffer(raw, dtype=">f4", offset=4).astype(np.float32)
