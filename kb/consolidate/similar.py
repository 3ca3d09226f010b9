"""Near-duplicate knowledge files: one-permutation MinHash over word-pair shingles, LSH buckets.

Each file gets a small signature (64 bins of the minimum 32-bit shingle hash); files
are compared only when some band of their signatures is identical, so the check is
O(n) in the number of files rather than O(n^2). Signatures are cached by consolidate,
so an unchanged file is never hashed twice.

A shingle is two consecutive words, each word read as its first and last 8 bytes, with
bit 0x20 set in every byte (lowercase ASCII; a few punctuation pairs merge too, which a
similarity estimate does not mind). Any run of bytes up to 0x20 (spaces, line breaks,
control characters) separates words, so reflowed text still matches.
Signatures are computed for many files at once: numpy's cost per call, not per byte,
is what a file of a few KB pays, so a batch of 500 files costs little more than one.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

BINS = 64
BANDS = 16  # 16 bands x 4 rows: pairs at 85% similarity collide with probability > 0.999
ROWS = BINS // BANDS
THRESHOLD = 0.85
MIN_BYTES = 64  # below this a file has too few shingles to compare meaningfully

_EMPTY = np.uint32(0xFFFFFFFF)
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x165667B19E3779F9)
_CASE = np.uint64(0x2020202020202020)
# The low n bytes of a little-endian word (n = 0..8): a word shorter than 8 bytes.
_KEEP = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_PAD = b" " * 8  # after the last file, so every 8-byte read stays inside the buffer


def signature(text: str) -> str | None:
    """The file's MinHash signature, base64 of 64 uint32 bin minima (None when the text is tiny)."""
    return signatures([text])[0]


def signatures(texts: list[str]) -> list[str | None]:
    """:func:`signature` of each text, computed together (each text's own result is the same)."""
    out: list[str | None] = [None] * len(texts)
    pieces: list[bytes] = []
    owners: list[int] = []
    for i, text in enumerate(texts):
        data = text.encode("utf-8", "replace")
        if len(data.strip()) >= MIN_BYTES:
            pieces.append(b" " + data + b" ")  # words never run from one text into the next
            owners.append(i)
    if not pieces:
        return out
    buf = b"".join(pieces) + _PAD
    raw = np.frombuffer(buf, dtype=np.uint8)
    space = raw <= 32
    # Every text starts and ends with a space: the edges alternate, a word's first byte
    # (after an edge) then its last (at the next one). Few passes over the bytes: each
    # costs as much as the rest of the work on a text.
    edges = np.flatnonzero(space[:-1] != space[1:])
    starts, ends = edges[0::2] + 1, edges[1::2]
    # Which text each word is in: its first word's place, by where each text starts.
    offsets = np.cumsum([0] + [len(piece) for piece in pieces[:-1]])
    first_word = np.searchsorted(starts, offsets)
    counts = np.diff(np.append(first_word, starts.size))
    base = np.repeat(np.arange(0, len(pieces) * BINS, BINS), counts)  # each word's text's first bin
    read = np.ndarray(shape=(raw.size - 7,), dtype="<u8", buffer=buf, strides=(1,))
    keep = _KEEP[np.minimum(ends - starts + 1, 8)]
    head = read[starts]
    head |= _CASE
    head &= keep
    tail = read[np.maximum(ends - 7, starts)]
    tail |= _CASE
    tail &= keep
    word = (head * _M1) ^ tail
    h = (word[:-1] * _M2) ^ word[1:]
    h ^= h >> np.uint64(29)
    h *= _M3
    h ^= h >> np.uint64(32)
    # A pair of words from two texts belongs to neither: all ones makes it the value _EMPTY,
    # which lowers no bin (cheaper than routing every pair by its two words' texts).
    # (A text may hold no word at all, every byte a separator: only pairs that exist count.)
    boundary = first_word[1:]
    h[boundary[(boundary > 0) & (boundary < starts.size)] - 1] = np.uint64(0xFFFFFFFFFFFFFFFF)
    sig = np.full(len(pieces) * BINS, _EMPTY, dtype=np.uint32)
    np.minimum.at(sig, base[:-1] + (h >> np.uint64(58)).astype(np.intp), (h & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    raw = sig.tobytes()
    size = BINS * 4
    for k, i in enumerate(owners):
        if counts[k] >= 2:  # one word makes no pair
            out[i] = base64.b64encode(raw[k * size : (k + 1) * size]).decode("ascii")
    return out


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity: equal bins over bins that are filled in either."""
    filled = (a != _EMPTY) | (b != _EMPTY)
    total = int(filled.sum())
    if total == 0:
        return 0.0
    return float(((a == b) & filled).sum()) / total


@dataclass
class Pair:
    a: str
    b: str
    similarity: float


def near_duplicates(signatures: dict[str, str | None], threshold: float = THRESHOLD) -> list[Pair]:
    """Pairs of keys whose signatures are at least ``threshold`` similar, found through LSH bands.

    Each band (4 bins) of every signature is hashed; only files sharing a band hash are
    compared, so 10,000 files cost 16 sorts of 10,000 numbers, not 50 million comparisons.
    """
    keys: list[str] = []
    rows: list[bytes] = []
    for key in sorted(signatures):
        sig = signatures[key]
        if not sig:
            continue
        try:
            raw = base64.b64decode(sig)
        except (ValueError, TypeError):
            continue
        if len(raw) != BINS * 4:
            continue
        keys.append(key)
        rows.append(raw)
    if len(keys) < 2:
        return []
    matrix = np.frombuffer(b"".join(rows), dtype=np.uint32).reshape(len(keys), BINS)
    candidates: set[tuple[int, int]] = set()
    for band in range(BANDS):
        block = matrix[:, band * ROWS : (band + 1) * ROWS].astype(np.uint64)
        filled = np.flatnonzero(~(block == np.uint64(_EMPTY)).all(axis=1))  # empty bins agree by accident
        if filled.size < 2:
            continue
        hashed = np.zeros(filled.size, dtype=np.uint64)
        for column in range(ROWS):
            hashed = (hashed ^ block[filled, column]) * _M1
            hashed ^= hashed >> np.uint64(31)
        order = np.argsort(hashed, kind="stable")
        ordered = hashed[order]
        same = np.flatnonzero(ordered[1:] == ordered[:-1])
        if same.size == 0:
            continue
        # Runs of equal hashes (contiguous once sorted): every pair inside a run is a candidate.
        marks = same.tolist()
        k = 0
        while k < len(marks):
            start = end = marks[k]
            while k + 1 < len(marks) and marks[k + 1] == end + 1:
                k += 1
                end += 1
            members = sorted(int(m) for m in filled[order[start : end + 2]])
            for i, a in enumerate(members):
                for b in members[i + 1 :]:
                    candidates.add((a, b))
            k += 1
    pairs: list[Pair] = []
    for a, b in sorted(candidates):
        score = similarity(matrix[a], matrix[b])
        if score >= threshold:
            pairs.append(Pair(keys[a], keys[b], round(score, 3)))
    return pairs
