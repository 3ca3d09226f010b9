"""kb's pack writer: git reads what it writes (objects, index, offsets past 2 GiB)."""

from __future__ import annotations

import os
import struct
import subprocess

from kb.consolidate import gitpack


def _git(cwd, *args, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, input=data, check=True, capture_output=True).stdout


def test_git_reads_every_object_kb_packs_and_duplicates_are_stored_once(tmp_path):
    _git(tmp_path, "init", "-q")
    contents = [b"", b"x", b"hello\n", b"hello\n", os.urandom(15), os.urandom(70_000), "é ✓\n".encode() * 500]
    blobs = [gitpack.blob(data) for data in contents]
    pack = gitpack.write_pack(tmp_path / ".git" / "objects" / "pack", blobs)
    assert pack is not None and pack.name.startswith("pack-") and pack.with_suffix(".idx").exists()
    for data, item in zip(contents, blobs):
        assert item.sha.hex() == _git(tmp_path, "hash-object", "--stdin", data=data).decode().strip()  # git's own id
        assert _git(tmp_path, "cat-file", "blob", item.sha.hex()) == data
    listing = _git(tmp_path, "verify-pack", "-v", str(pack.with_suffix(".idx"))).decode()
    assert "non delta: 6 objects" in listing  # seven blobs, two of them equal
    assert gitpack.write_pack(tmp_path / ".git" / "objects" / "pack", []) is None


def test_an_offset_past_2_gib_goes_to_the_64_bit_table():
    blobs = [gitpack.blob(b"a"), gitpack.blob(b"b")]
    offsets = [12, (1 << 31) + 5]
    index = gitpack._index(blobs, offsets, b"\0" * 20)
    count = 2
    assert index[:8] == b"\xfftOc" + struct.pack(">I", 2)
    fanout = struct.unpack(">256I", index[8 : 8 + 1024])
    assert fanout[-1] == count
    at = 8 + 1024
    shas = [index[at + 20 * i : at + 20 * (i + 1)] for i in range(count)]
    assert shas == sorted(b.sha for b in blobs)
    at += 20 * count + 4 * count  # past the names and the CRCs
    small = struct.unpack(f">{count}I", index[at : at + 4 * count])
    large = struct.unpack(">Q", index[at + 4 * count : at + 4 * count + 8])
    by_sha = {b.sha: off for b, off in zip(blobs, offsets)}
    assert sum(1 for entry in small if entry & 0x80000000) == 1  # only the big one is in the 64-bit table
    for sha, entry in zip(shas, small):
        offset = large[entry & 0x7FFFFFFF] if entry & 0x80000000 else entry
        assert offset == by_sha[sha]
