"""Decode plan bytes and undo whole-file mojibake.

Plans travel through editors and chat tools that read UTF-8 as Mac Roman or
cp1252 (``✓`` becomes ``‚úì`` or ``âœ“``). A legitimate non-ASCII text almost
never survives "encode as the wrong codec, decode as UTF-8", so a successful
round trip that changes the text is strong evidence of mojibake.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass
class DecodedText:
    text: str
    repairs: list[str]


def _c1_as_bytes(exc: UnicodeEncodeError) -> tuple[bytes, int]:
    # Lenient decoders keep the five bytes cp1252 leaves undefined as C1 control
    # characters, which Python's strict codec refuses to encode back: those (any
    # character below U+0100) are their own byte; anything else is not cp1252.
    chunk = exc.object[exc.start : exc.end]
    if all(ord(ch) < 0x100 for ch in chunk):
        return bytes(ord(ch) for ch in chunk), exc.end
    try:
        raise exc
    finally:
        # The traceback holds this frame; were ``exc`` still in it, exception and frame would
        # hold each other, and with them every caller's frame up the stack (consolidate's
        # whole run) until the cycle collector came by.
        del exc


codecs.register_error("kb-cp1252-lenient", _c1_as_bytes)


def _encode_cp1252_lenient(text: str) -> bytes:
    return text.encode("cp1252", errors="kb-cp1252-lenient")


def _round_trip(text: str, codec: str) -> str | None:
    try:
        raw = _encode_cp1252_lenient(text) if codec == "cp1252" else text.encode(codec)
        fixed = raw.decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return fixed if fixed != text else None


def repair_mojibake(text: str) -> DecodedText:
    """Undo a whole-file Mac Roman or cp1252 misreading of UTF-8, reporting what was done."""
    if text.isascii():
        return DecodedText(text, [])
    for codec, label in (("mac_roman", "Mac Roman"), ("cp1252", "cp1252")):
        fixed = _round_trip(text, codec)
        if fixed is not None:
            changed = sum(1 for a in set(text) if not a.isascii())
            return DecodedText(
                fixed,
                [f"repaired mojibake: the file was UTF-8 read as {label} ({changed} distinct garbled characters)"],
            )
    return DecodedText(text, [])


def decode_plan_bytes(raw: bytes) -> DecodedText:
    """Bytes -> text: strip a BOM, decode UTF-8 (or cp1252 as a fallback), repair mojibake."""
    repairs: list[str] = []
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        repairs.append("removed a UTF-8 byte-order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw.decode("cp1252", errors="replace")
        repairs.append(f"the file is not UTF-8 (byte {exc.start}); decoded it as cp1252")
    decoded = repair_mojibake(text)
    return DecodedText(decoded.text, repairs + decoded.repairs)
