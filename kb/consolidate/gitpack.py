"""Git blob objects made where consolidate reads the files anyway, stored as packs.

A first consolidation of thousands of files leaves git to hash, compress and store every
one of them (`git add`): on a slow filesystem that costs more than the rest of the run,
and one loose object file each makes it worse. Here each blob is compressed by the
worker process that reads the file (ISA-L's zlib-format deflate, several times faster
than zlib's) and written as a pack + index in git's own format (gitformat-pack: pack
version 2, index version 2): by that worker, one pack per batch of files, when git holds
none of the files yet; else by the parent, leaving out what git already holds at each
path. The `git add` that follows finds every object present and only updates the index.
A later `git gc` repacks the packs like any other. SHA-1 repositories only: elsewhere the
caller leaves everything to git.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from kb.fsutil import fsync_folder

try:  # ISA-L writes standard zlib streams; plain zlib where its wheel is missing
    from isal import isal_zlib as _deflate_module

    # ISA-L levels run 0-3. 0 is 4x faster than zlib's level 1 at a slightly worse ratio
    # (0.46 against 0.40 on kb's Markdown; 1: 0.37, but 40% slower); `git gc` repacks anyway.
    _LEVEL = 0
except ImportError:  # pragma: no cover - exercised only without the isal wheel
    import zlib as _deflate_module

    _LEVEL = 1

import zlib

BLOB = 3  # the pack's object type number for a blob
_LARGE = 0x80000000  # index v2: an offset this large goes to the 64-bit table


@dataclass(frozen=True)
class PackedBlob:
    """One blob, ready to be appended to a pack."""

    sha: bytes  # SHA-1 of the blob object, 20 bytes
    entry: bytes  # the pack entry: the type/size header, then the deflated content
    crc: int  # CRC-32 of ``entry``, which the index records


def _entry_header(kind: int, size: int) -> bytes:
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def blob(data: bytes) -> PackedBlob:
    """``data`` as a git blob: its object id and its pack entry."""
    sha = hashlib.sha1(b"blob %d\0" % len(data))
    sha.update(data)
    entry = _entry_header(BLOB, len(data)) + _deflate_module.compress(data, _LEVEL)
    return PackedBlob(sha.digest(), entry, zlib.crc32(entry))


def _index(blobs: list[PackedBlob], offsets: list[int], pack_sha: bytes) -> bytes:
    order = sorted(range(len(blobs)), key=lambda i: blobs[i].sha)
    fanout = [0] * 256
    for blob_ in blobs:
        fanout[blob_.sha[0]] += 1
    total = 0
    for i in range(256):
        total += fanout[i]
        fanout[i] = total
    small, large = [], []
    for i in order:
        offset = offsets[i]
        if offset < _LARGE:
            small.append(offset)
        else:
            small.append(_LARGE | len(large))
            large.append(offset)
    count = len(order)
    body = b"".join([
        b"\xfftOc", struct.pack(">I", 2), struct.pack(">256I", *fanout),
        b"".join(blobs[i].sha for i in order),
        struct.pack(f">{count}I", *(blobs[i].crc for i in order)),
        struct.pack(f">{count}I", *small),
        struct.pack(f">{len(large)}Q", *large),
        pack_sha,
    ])
    return body + hashlib.sha1(body).digest()


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"tmp_{path.name}")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o444)  # as git leaves its packs
    os.replace(tmp, path)


def write_pack(pack_dir: Path, blobs: Iterable[PackedBlob]) -> Path | None:
    """Store ``blobs`` (duplicates dropped) as one pack in ``pack_dir`` (``objects/pack``);
    returns the pack's path, or None when there was nothing to store.

    The pack is durable before its index appears (git looks for packs by their index), so a
    commit that names these objects never outlives them.
    """
    unique: dict[bytes, PackedBlob] = {}
    for item in blobs:
        unique.setdefault(item.sha, item)
    if not unique:
        return None
    items = list(unique.values())
    header = b"PACK" + struct.pack(">II", 2, len(items))
    offsets, at = [], len(header)
    for item in items:
        offsets.append(at)
        at += len(item.entry)
    digest = hashlib.sha1(header)
    for item in items:
        digest.update(item.entry)
    pack_sha = digest.digest()
    name = f"pack-{pack_sha.hex()}"
    pack_dir.mkdir(parents=True, exist_ok=True)
    pack, index = pack_dir / f"{name}.pack", pack_dir / f"{name}.idx"
    if not index.exists():  # the same objects in the same order: already stored
        _write_durably(pack, b"".join([header, *(item.entry for item in items), pack_sha]))
        _write_durably(index, _index(items, offsets, pack_sha))
        fsync_folder(pack_dir)
    return pack
