"""Words for BM25: identifiers split as readers search for them, English words stemmed.

``max_memory_allocated`` is indexed as itself and as ``max memory allocated``;
``DataLoader`` as ``dataloader`` and ``data loader``; every word is stemmed
(Snowball English), so "checkpointing" finds "checkpoint" and "workers" "worker".
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import snowballstemmer
from bm25s.stopwords import STOPWORDS_EN

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*|\d+[A-Za-z]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
STOPWORDS = frozenset(STOPWORDS_EN) | {
    "also", "can", "may", "must", "should", "would", "could", "use", "used", "using", "e", "g", "eg", "ie", "etc",
    "default", "optional", "true", "false", "none", "self", "see", "one", "two", "via", "within", "however",
}
_STEMMER = snowballstemmer.stemmer("english")
# The Snowball stemmer keeps its word in instance state: two threads stemming at once corrupt each other
# (IndexError deep inside it). Researchers rank PARTs in parallel threads, so stemming takes a lock.
_STEM_LOCK = threading.Lock()


# Stems that would merge different things: a transformer is not a transform, an optimizer not an optimization.
_PROTECTED = {"transformer": "transformer", "transformers": "transformer", "optimizer": "optimizer",
              "optimizers": "optimizer", "dataloader": "dataloader", "dataloaders": "dataloader"}


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    protected = _PROTECTED.get(word)
    if protected:
        return protected
    with _STEM_LOCK:
        return _STEMMER.stemWord(word)


@lru_cache(maxsize=200_000)
def _word_tokens(word: str) -> tuple[str, ...]:
    out: list[str] = []
    whole = word.lower().strip("_")
    if len(whole) >= 2 and whole not in STOPWORDS:
        out.append(stem(whole))
    pieces = [p for chunk in word.split("_") for p in _CAMEL.findall(chunk)]
    if len(pieces) > 1:
        for piece in pieces:
            low = piece.lower()
            if len(low) >= 2 and low not in STOPWORDS:
                out.append(stem(low))
    return tuple(out)


def tokenize(text: str) -> list[str]:
    """The BM25 terms of a text, in order (repeats kept: they are term frequency)."""
    out: list[str] = []
    for word in _WORD.findall(text):
        out.extend(_word_tokens(word))
    return out


def terms(text: str) -> list[str]:
    """The distinct terms of a text, in first-seen order."""
    return list(dict.fromkeys(tokenize(text)))
