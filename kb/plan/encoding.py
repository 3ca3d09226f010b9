"""Decode plan bytes line by line, undo mojibake, and encode edited lines back losslessly.

Plans travel through editors and chat tools that read UTF-8 as Mac Roman or
cp1252 (``✓`` becomes ``‚úì`` or ``âœ“``), or that save one pasted line in a
legacy encoding. Each line is decoded on its own (UTF-8, else cp1252), so one
stray byte costs one line, not the file. A legitimate non-ASCII text almost
never survives "encode as the wrong codec, decode as UTF-8", so a successful
round trip that changes the text is strong evidence of mojibake.

Writing back (:meth:`PlanText.encode`) keeps every line that did not change
byte for byte, and refuses any result that does not decode to exactly the text
meant: kb never writes what it could not read back.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass, field

from kb.errors import PlanError

BOM = b"\xef\xbb\xbf"
REPLACEMENT = "\ufffd"
# Only \r\n, \r and \n end a line: str.splitlines() also splits on form feeds and
# U+2028, which would shift line numbers against markdown-it's.
_RAW_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_TEXT_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")

UTF8 = "utf-8"
CP1252 = "cp1252"
MOJIBAKE_CODECS = (("mac_roman", "Mac Roman"), ("cp1252", "cp1252"))


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


def _bytes_as_c1(exc: UnicodeDecodeError) -> tuple[str, int]:
    # The reverse: a byte cp1252 leaves undefined decodes to the C1 character of the same value,
    # so every byte string decodes and encodes back to itself.
    return "".join(chr(b) for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error("kb-cp1252-lenient", _c1_as_bytes)
codecs.register_error("kb-cp1252-lenient-decode", _bytes_as_c1)


def _encode(text: str, codec: str) -> bytes:
    return text.encode(codec, errors="kb-cp1252-lenient") if codec == CP1252 else text.encode(codec)


def _decode(raw: bytes, codec: str) -> str:
    return raw.decode(codec, errors="kb-cp1252-lenient-decode") if codec == CP1252 else raw.decode(codec)


def _unmojibake(text: str, codec: str) -> str | None:
    """``text`` read back as the UTF-8 it was before ``codec`` garbled it, or None."""
    try:
        return _encode(text, codec).decode(UTF8)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def _remojibake(text: str, codec: str) -> str:
    """The inverse of :func:`_unmojibake`: how ``codec`` garbles ``text``'s UTF-8."""
    return _decode(text.encode(UTF8), codec)


@dataclass
class DecodedText:
    """Mojibake repair of a str (see :func:`repair_mojibake`)."""

    text: str
    repairs: list[str]


def repair_mojibake(text: str) -> DecodedText:
    """Undo a whole-text Mac Roman or cp1252 misreading of UTF-8, reporting what was done."""
    if text.isascii():
        return DecodedText(text, [])
    for codec, label in MOJIBAKE_CODECS:
        fixed = _unmojibake(text, codec)
        if fixed is not None and fixed != text and _remojibake(fixed, codec) == text:
            changed = sum(1 for a in set(text) if not a.isascii())
            return DecodedText(
                fixed,
                [f"repaired mojibake: the file was UTF-8 read as {label} ({changed} distinct garbled characters)"],
            )
    return DecodedText(text, [])


@dataclass
class PlanText:
    """A plan file as lines: the bytes of each, how they were read, and the text kb works on."""

    bom: bytes
    body: bytes  # the file's bytes after the BOM
    lines: list[str]  # decoded (and repaired) text of each line, its line ending included
    codecs: list[str]  # how each raw line was decoded: utf-8 or cp1252
    mojibake: str | None = None  # the codec whose misreading was undone on the UTF-8 lines
    repaired_lines: set[int] = field(default_factory=set)  # indexes of the lines that repair changed
    repairs: list[str] = field(default_factory=list)

    @functools.cached_property
    def raw_lines(self) -> list[bytes]:
        """Each line's bytes, its line ending included (split only when an edit needs them)."""
        return _RAW_LINE.findall(self.body)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def lost_characters(self) -> list[int]:
        """1-based lines holding U+FFFD: characters an earlier tool lost to a wrong decoding."""
        return [i + 1 for i, line in enumerate(self.lines) if REPLACEMENT in line]

    def _line_bytes(self, index: int, text: str, *, repaired: bool) -> bytes:
        if self.codecs[index] == CP1252:
            try:
                return _encode(text, CP1252)
            except UnicodeEncodeError:
                return text.encode(UTF8)  # a mark cp1252 has no byte for: the line becomes UTF-8
        if self.mojibake and not repaired and index in self.repaired_lines:
            return _remojibake(text, self.mojibake).encode(UTF8)
        return text.encode(UTF8)

    def encode(self, new_lines: list[str], changed: set[int]) -> tuple[bytes, list[str]]:
        """The file's bytes with ``new_lines`` (only indexes in ``changed`` differ), and the repairs
        the bytes carry (a mojibake file is written back repaired where every line round-trips).

        Lines not changed keep their bytes; the result is decoded again and refused (PlanError)
        unless it reads as exactly ``new_lines``."""
        attempts = [True, False] if self.mojibake else [False]
        for repaired in attempts:
            out = [self.bom]
            for index, raw in enumerate(self.raw_lines):
                rewrite = index in changed or (repaired and self.codecs[index] == UTF8)
                out.append(self._line_bytes(index, new_lines[index], repaired=repaired) if rewrite else raw)
            data = b"".join(out)
            if decode_plan_bytes(data).lines == new_lines:
                return data, ([r for r in self.repairs if r.startswith("repaired mojibake")] if repaired else [])
        raise PlanError("the edited plan would not read back as written (mixed encodings); nothing was written")


def decode_plan_bytes(raw: bytes) -> PlanText:
    """Bytes -> lines: skip a BOM, decode each line as UTF-8 (else cp1252), repair mojibake."""
    repairs: list[str] = []
    bom = b""
    if raw.startswith(BOM):
        bom, raw = BOM, raw[len(BOM):]
        repairs.append("read past a UTF-8 byte-order mark (kept in the file)")
    try:
        whole = raw.decode(UTF8)
    except UnicodeDecodeError:
        whole = None
    if whole is not None:  # the usual case: one decode, and the lines split as text
        lines = _TEXT_LINE.findall(whole)
        line_codecs = [UTF8] * len(lines)
    else:
        lines, line_codecs, legacy = [], [], []
        for number, chunk in enumerate(_RAW_LINE.findall(raw), 1):
            try:
                lines.append(chunk.decode(UTF8))
                line_codecs.append(UTF8)
            except UnicodeDecodeError:
                lines.append(_decode(chunk, CP1252))
                line_codecs.append(CP1252)
                legacy.append(number)
        shown = ", ".join(map(str, legacy[:10])) + (f" and {len(legacy) - 10} more" if len(legacy) > 10 else "")
        many = len(legacy) > 1
        repairs.append(f"line{'s' if many else ''} {shown} {'are' if many else 'is'} not UTF-8; read as cp1252 "
                       f"(kept as {'they are' if many else 'it is'} unless a PART's status line there changes)")
    text = PlanText(bom, raw, lines, line_codecs, repairs=repairs)
    utf8 = [i for i, codec in enumerate(line_codecs) if codec == UTF8]
    # Lines holding U+FFFD lost characters to an earlier misreading: they cannot be repaired, so they
    # neither vote on the repair nor get it (the parser says so); the other lines still can be.
    lossy = [i for i in utf8 if REPLACEMENT in lines[i]]
    if lossy:
        utf8 = [i for i in utf8 if REPLACEMENT not in lines[i]]
    whole_text = whole is not None and not lossy
    sample = whole if whole_text else "".join(lines[i] for i in utf8)
    fixed = repair_mojibake(sample)
    codec = next((c for c, label in MOJIBAKE_CODECS if fixed.repairs and label in fixed.repairs[0]), None)
    if codec is None:
        return text
    if whole_text:
        # The whole repaired and round-tripped, so does each line: \r and \n are themselves in either codec.
        repaired = _TEXT_LINE.findall(fixed.text)
        if len(repaired) != len(lines):
            return text
    else:
        repaired = [_unmojibake(lines[i], codec) for i in utf8]
        if not all(r is not None and _remojibake(r, codec) == lines[i] for r, i in zip(repaired, utf8)):
            return text
    for r, i in zip(repaired, utf8):
        if r != lines[i]:
            lines[i] = r
            text.repaired_lines.add(i)
    text.mojibake = codec
    repairs.extend(fixed.repairs)
    if lossy:
        shown = ", ".join(str(i + 1) for i in lossy[:10]) + (f" and {len(lossy) - 10} more" if len(lossy) > 10 else "")
        repairs.append(f"line{'s' if len(lossy) > 1 else ''} {shown} kept {'their' if len(lossy) > 1 else 'its'} "
                       "mojibake: characters lost to it earlier (U+FFFD) make it impossible to undo there")
    return text
