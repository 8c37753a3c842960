"""pgvector's binary form, read and written without its text parser.

``SELECT vector_send(embedding)`` returns the vector as ``bytea``: two big-endian int16s (the
dimension, then zero) and the big-endian float4s. Decoding that with numpy is about a hundred times
cheaper than parsing the text form (``[0.1,0.2,…]``) that a plain ``SELECT embedding`` returns, which
cost half of an export and most of a hybrid search's keyword rows. A parameter sent in the same
form is read by pgvector's ``vector_recv`` (``common/vectors.py``'s query vector).
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["from_vector_send", "to_vector_recv"]

# The SQL side, ``vector_send(column)``, is ``common/vectors.py``'s ``binary_vector``: this module
# stays free of SQL so that format code (export files, the Python client) can use it.


def from_vector_send(raw: bytes | memoryview) -> np.ndarray:
    """A little-endian float32 array from ``vector_send`` bytes."""
    return np.frombuffer(raw, dtype=">f4", offset=4).astype(np.float32)


def to_vector_recv(vector: object) -> bytes:
    """``vector`` as float32 in the binary form ``vector_recv`` reads (what ``vector_send`` writes)."""
    floats = np.asarray(vector, dtype=">f4")
    return struct.pack(">HH", floats.shape[0], 0) + floats.tobytes()
