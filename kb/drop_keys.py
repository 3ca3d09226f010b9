"""The bold-key lines of a KNOWLEDGE DROP read as a person reads them.

Drops of the original skill trees name their knowledge file and creation time in many ways
(``**Target File**``, ``**File**``, ``**File Created**``, ``**Target**``; ``**Created**``,
``**Date**``, ``**Timestamp**``) and decorate the values (backticks, a trailing ``(740 lines)``,
link syntax). These functions turn such lines into plain values, or None where the line says
nothing kb can trust. Plain text in, plain data out: no files.
"""

from __future__ import annotations

import re
from datetime import datetime

BOLD_KEY = re.compile(r"^\s*(?:[-*]\s+)?\*\*(?P<key>[^*:\n]+?)\s*:?\*\*\s*:?[ \t]*(?P<value>[^\n]*?)\s*$", re.M)

# Keys naming the knowledge file, most specific first.
TARGET_KEYS = ("target file", "knowledge file", "file created", "output file", "file", "target", "created file", "path")
# Keys naming when the drop was made, most specific first.
CREATED_KEYS = ("created", "date", "timestamp", "completed", "created at", "date created")

_LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<url>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_MD_PATH = re.compile(r"[^\s`'\"()\[\]<>,;]+\.md\b")


def bold_keys(text: str) -> dict[str, str]:
    """``{lower-case key: value}`` of the ``**Key**: value`` lines (first one of each key wins)."""
    out: dict[str, str] = {}
    for match in BOLD_KEY.finditer(text):
        key = " ".join(match.group("key").lower().split())
        value = match.group("value")
        if key not in out and value:
            out[key] = value
    return out


def clean_path(value: str | None) -> str | None:
    """The ``.md`` path a value names, its decorations stripped: backticks, link syntax, a
    trailing note such as ``(740 lines)``; None where it names none."""
    if not value:
        return None
    text = value.strip()
    link = _LINK.search(text)
    if link is not None:
        for candidate in (link.group("url"), link.group("text")):
            found = _path_in(candidate)
            if found:
                return found
    quoted = re.search(r"`([^`]+)`", text)
    if quoted is not None:
        found = _path_in(quoted.group(1), whole=True)
        if found:
            return found
    return _path_in(text)


def _path_in(text: str, whole: bool = False) -> str | None:
    text = text.strip().strip("`'\"").strip()
    # A whole value that is one path, spaces and all ("knowledge/my notes/x.md"), not a path in a sentence.
    whole = whole or "/" in text.split(" ", 1)[0]
    if whole and text.endswith(".md") and "\n" not in text:
        return text  # a quoted path may hold spaces ("my notes/x.md")
    match = _MD_PATH.search(text)
    return match.group(0).strip("`") if match else None


def target(keys: dict[str, str]) -> str | None:
    """The knowledge file the drop names, as written (decorations stripped), from any target key."""
    for key in TARGET_KEYS:
        found = clean_path(keys.get(key))
        if found:
            return found
    return None


# (pattern, format): the shapes of dates in drops and plans, with and without a time.
_DATE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d-%H%M", "%Y-%m-%d %H%M",
    "%Y-%m-%d", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%B %d, %Y %H:%M", "%B %d, %Y", "%b %d, %Y %H:%M", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y",
)
_TZ_TAIL = re.compile(r"(?:\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}))$", re.I)
_NOTE = re.compile(r"\s*[(\[].*$")


def parse_when(value: str | None) -> str | None:
    """A creation time as ISO text (``YYYY-MM-DDTHH:MM[:SS]``, or ``YYYY-MM-DD`` for a date
    alone); None where the value is no date kb recognises."""
    if not value:
        return None
    text = value.strip().strip("`*_ ").strip()
    text = _NOTE.sub("", text).strip()  # "2025-01-31 16:45 (PART 3 done)"
    text = text.replace("\u2013", "-").replace("\u2014", "-")
    zone = ""
    tail = _TZ_TAIL.search(text)
    if tail is not None and tail.start() > 0:
        zone = "Z" if tail.group(0).strip().upper() in ("Z", "UTC", "GMT") else ""
        text = text[: tail.start()].strip()
    text = re.sub(r"\.\d+$", "", text)  # fractional seconds
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text)  # "January 31st, 2025"
    for fmt in _DATE_FORMATS:
        try:
            when = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if "%H" not in fmt:
            return when.strftime("%Y-%m-%d")
        shape = "%Y-%m-%dT%H:%M:%S" if "%S" in fmt else "%Y-%m-%dT%H:%M"
        return when.strftime(shape) + zone
    return None


def created(keys: dict[str, str]) -> str | None:
    """When the drop was made, from any date key (ISO text, see :func:`parse_when`)."""
    for key in CREATED_KEYS:
        when = parse_when(keys.get(key))
        if when:
            return when
    return None


_NAME_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[-_T](\d{2}):?(\d{2}))?\.md$", re.I)


def created_from_name(name: str) -> str | None:
    """The time a drop's file name carries (``KNOWLEDGE-DROP-<slug>-2025-01-31-1645.md``)."""
    match = _NAME_STAMP.search(name)
    if match is None:
        return None
    day, hour, minute = match.groups()
    return parse_when(f"{day} {hour}:{minute}" if hour else day)
