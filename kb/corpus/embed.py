"""Dense sentence vectors for relevance, from a static-embedding model that ships inside its wheel.

WordLlama (``pip install wordllama``, 16 MB of weights in the wheel) maps each token to a
256-dimensional vector and averages them: no network, no GPU, about a millisecond for a
hundred passages. kb reads the wheel's files directly (the package's own loader looks for
its tokenizer in the wrong folder and then tries the network). Without the package the
researcher falls back to lexical relevance alone (``load_embedder`` returns None).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

WEIGHTS = ("weights", "l2_supercat_256.safetensors")
TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
MAX_TOKENS = 256  # a passage's subject is its name and summary; the rest dilutes the average

_LOCK = threading.Lock()
_CACHE: dict[str, "Embedder | None"] = {}


class Embedder:
    """Unit-length average token embeddings; ``similarity`` is the cosine of two texts' vectors."""

    name = "wordllama l2_supercat_256"

    def __init__(self, matrix: np.ndarray, tokenizer):
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.tokenizer = tokenizer
        self._lock = threading.Lock()  # a tokenizers.Tokenizer is not safe to share across threads

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text (a zero vector for a text with no known token)."""
        out = np.zeros((len(texts), self.matrix.shape[1]), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        for row, enc in enumerate(encoded):
            ids = np.asarray(enc.ids[:MAX_TOKENS], dtype=np.int64)
            ids = ids[(ids >= 0) & (ids < self.matrix.shape[0])]
            if ids.size:
                vector = self.matrix[ids].mean(axis=0)
                norm = float(np.linalg.norm(vector))
                if norm > 0:
                    out[row] = vector / norm
        return out

    def similarity(self, query: str, texts: list[str]) -> np.ndarray:
        """Cosine similarity of ``query`` with each of ``texts``."""
        vectors = self.embed([query, *texts])
        return vectors[1:] @ vectors[0]


def _files() -> tuple[Path, Path] | None:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    weights, tokenizer = root.joinpath(*WEIGHTS), root.joinpath(*TOKENIZER)
    return (weights, tokenizer) if weights.is_file() and tokenizer.is_file() else None


def load_embedder() -> Embedder | None:
    """The packaged WordLlama model (loaded once per process), or None where it is not installed."""
    with _LOCK:
        if "default" not in _CACHE:
            _CACHE["default"] = _load()
        return _CACHE["default"]


def _load() -> Embedder | None:
    files = _files()
    if files is None:
        return None
    try:
        from safetensors import safe_open
        from tokenizers import Tokenizer
    except ImportError:
        return None
    weights, tokenizer_file = files
    with safe_open(str(weights), framework="np", device="cpu") as handle:
        matrix = handle.get_tensor("embedding.weight")
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return Embedder(matrix, tokenizer)
