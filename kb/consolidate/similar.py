"""Near-duplicate knowledge files: one-permutation MinHash over byte shingles, LSH buckets.

Each file gets a small signature (64 bins of the minimum 32-bit shingle hash); files
are compared only when some band of their signatures is identical, so the check is
O(n) in the number of files rather than O(n^2). Signatures are cached by consolidate,
so an unchanged file is never hashed twice.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

BINS = 64
BANDS = 16  # 16 bands x 4 rows: pairs at 85% similarity collide with probability > 0.999
ROWS = BINS // BANDS
THRESHOLD = 0.85
SHINGLE = 16  # bytes per shingle (two overlapping 8-byte words)
MIN_BYTES = 64  # below this a file has too few shingles to compare meaningfully

_EMPTY = np.uint32(0xFFFFFFFF)
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x165667B19E3779F9)
# Whitespace of any kind becomes one space, so reflowed text still matches.
_WS = bytes.maketrans(b"\t\n\r\f\v", b"     ")


def signature(text: str) -> str | None:
    """The file's MinHash signature, base64 of 64 uint32 bin minima (None when the text is tiny)."""
    data = text.lower().encode("utf-8", "replace").translate(_WS)
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size:
        keep = np.ones(raw.size, dtype=bool)
        keep[1:] = ~((raw[1:] == 32) & (raw[:-1] == 32))
        raw = raw[keep]
    n = int(raw.size)
    if n < MIN_BYTES:
        return None
    buf = raw.tobytes()
    # Every 8-byte window as one little-endian uint64, read in place (stride 1).
    words = np.ndarray(shape=(n - 7,), dtype="<u8", buffer=buf, strides=(1,))
    h = (words[: n - 15] * _M1) ^ (words[8:] * _M2)
    h ^= h >> np.uint64(29)
    h *= _M3
    h ^= h >> np.uint64(32)
    bins = (h >> np.uint64(58)).astype(np.intp)
    values = (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    sig = np.full(BINS, _EMPTY, dtype=np.uint32)
    np.minimum.at(sig, bins, values)
    return base64.b64encode(sig.tobytes()).decode("ascii")


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
