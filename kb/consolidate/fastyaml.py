"""A fast reader for the YAML that kb itself writes (``yaml.safe_dump`` of flat records).

Reading 20,000 front matters with PyYAML costs seconds; this handles the shapes kb's
records take (scalars, lists of scalars, lists of flat mappings, one nested mapping) in a
fraction of that, and returns None for anything else, so the caller falls back to PyYAML.
It never guesses: a scalar whose YAML type is not certain sends the document back too.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_INT = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^-?(?:0|[1-9][0-9]*)\.[0-9]+(?:e[-+][0-9]+)?$")
# PyYAML's own implicit resolvers (by first character) decide whether a plain scalar is a string.
_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
_INDICATORS = set("[]{}!&*|>'\"%@`#?,:-~")
_MISSING = object()


_MEMO: dict[str, Any] = {}  # raw scalar -> value: front matters repeat most of their values
_MEMO_MAX = 100_000


def _scalar(raw: str) -> Any:
    """One scalar's value, or _MISSING when this reader cannot be sure of it."""
    value = _MEMO.get(raw, _MISSING)
    if value is not _MISSING or raw in _MEMO:
        return value
    value = _parse_scalar(raw)
    if not isinstance(value, (list, dict)):  # only immutable values may be shared
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        _MEMO[raw] = value
    return value


def _parse_scalar(raw: str) -> Any:
    if raw == "" or raw == "null":
        return None
    if raw == "true":
        return True
    if raw == "false":
        return False
    if raw == "[]":
        return []
    if raw == "{}":
        return {}
    if raw[0] == "'":
        if len(raw) < 2 or raw[-1] != "'":
            return _MISSING
        inner = raw[1:-1]
        if "'" in inner.replace("''", ""):
            return _MISSING
        return inner.replace("''", "'")
    if raw[0] == '"':
        inner = raw[1:-1]
        if len(raw) < 2 or raw[-1] != '"' or "\\" in inner or '"' in inner:
            return _MISSING
        return inner
    if (raw[0] in _INDICATORS and not (raw[0] == "-" and raw[1:2] not in ("", " "))) or ": " in raw or " #" in raw or raw != raw.strip() or "\t" in raw:
        return _MISSING
    for tag, regexp in _RESOLVERS.get(raw[0], ()):
        if regexp.match(raw):
            if tag.endswith(":int") and _INT.match(raw):
                return int(raw)
            if tag.endswith(":float") and _FLOAT.match(raw):
                return float(raw)
            return _MISSING  # a bool, timestamp, octal... that PyYAML should read
    return raw


def _key_value(line: str, indent: int) -> tuple[str, str | None] | None:
    """``key: value`` (or ``key:``) after ``indent`` characters of prefix: (key, raw value or
    None); None when the line is not that. str methods, not a regex: this runs 30 times a file."""
    key, colon, rest = line.partition(":")
    key = key[indent:]
    if not colon or not key or not key.isascii() or not key.isidentifier():
        return None
    if not rest:
        return key, None
    if rest[0] != " ":
        return None
    return key, rest[1:]


def load(text: str) -> dict[str, Any] | None:
    """The mapping ``text`` holds, or None when it is not in the simple shape kb writes."""
    out: dict[str, Any] = {}
    lines = text.split("\n")
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if not line:
            i += 1
            continue
        top = _key_value(line, 0)
        if top is None:
            return None
        key, raw = top
        if key in out:
            return None
        i += 1
        if raw is not None and raw != "":
            value = _scalar(raw)
            if value is _MISSING:
                return None
            out[key] = value
            continue
        # A block: a list ("- ...") or a nested mapping ("  key: ...") follows, or nothing (null).
        if i < n and lines[i].startswith("- "):
            items: list[Any] = []
            while i < n and lines[i].startswith("- "):
                item = _key_value(lines[i], 2) if ":" in lines[i] else None
                if item is None:
                    value = _scalar(lines[i][2:])
                    if value is _MISSING or isinstance(value, (list, dict)):
                        return None
                    items.append(value)
                    i += 1
                    continue
                mapping: dict[str, Any] = {}
                k, v = item
                while True:
                    if v is None or k in mapping:
                        return None
                    value = _scalar(v)
                    if value is _MISSING:
                        return None
                    mapping[k] = value
                    i += 1
                    nested = _key_value(lines[i], 2) if i < n and lines[i].startswith("  ") else None
                    if nested is None:
                        break
                    k, v = nested
                items.append(mapping)
            out[key] = items
        elif i < n and lines[i].startswith("  "):
            mapping = {}
            while i < n and lines[i].startswith("  "):
                nested = _key_value(lines[i], 2)
                if nested is None or nested[1] is None or nested[0] in mapping:
                    return None
                value = _scalar(nested[1])
                if value is _MISSING:
                    return None
                mapping[nested[0]] = value
                i += 1
            out[key] = mapping
        else:
            out[key] = None
    return out
