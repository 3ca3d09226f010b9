"""The YAML of kb's records (knowledge-file front matter, drops), written and read fast.

kb writes front matter with ``yaml.safe_dump`` semantics and reads 20,000 of them in a big
consolidation; PyYAML (its representer, even in front of libyaml's emitter, and its loader)
spent most of both. This module handles the shapes records take (scalars; lists of scalars
or of flat mappings; one nested mapping) in a fraction of that time:

- :func:`dump` writes the same bytes as PyYAML for those shapes. A string's style follows
  PyYAML's own rules (its resolvers decide whether a plain scalar would read back as a
  string) for single-line strings; anything else returns None and the caller uses PyYAML.
  Tests compare it byte for byte with ``yaml.safe_dump``.
- :func:`load` reads them back, and returns None for anything else, so the caller falls
  back to PyYAML. It never guesses: a scalar whose YAML type is not certain sends the
  document back too.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# PyYAML's own implicit resolvers (by first character) decide whether a plain scalar is a string.
_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers


# -- writing -------------------------------------------------------------------

# Single-line text with no character PyYAML escapes (printable ASCII, and the Unicode it
# writes as is with allow_unicode; no line or paragraph separators, no BOM).
_WRITABLE = re.compile(r"[\x20-\x7E\xA1-\u2027\u202A-\uD7FF\uE000-\uFEFE\uFF00-\uFFFD\U00010000-\U0010FFFE]+")
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_LONGEST = 400  # far below the dump width: no scalar is ever folded onto a second line


class _Unsure(Exception):
    """A value this writer does not handle: PyYAML writes the document."""


def dump(data: dict[str, Any]) -> str | None:
    """``yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=W)`` for any W >= 1000, or None."""
    if not isinstance(data, dict) or not data:
        return None
    lines: list[str] = []
    try:
        for key, value in data.items():
            name = _key(key)
            if isinstance(value, list):
                if not value:
                    lines.append(f"{name}: []")
                    continue
                lines.append(f"{name}:")
                for item in value:
                    if isinstance(item, dict):
                        lines.extend(_mapping(item, first="- ", rest="  "))
                    else:
                        lines.append(f"- {_write_scalar(item)}")
            elif isinstance(value, dict):
                if not value:
                    lines.append(f"{name}: {{}}")
                    continue
                lines.append(f"{name}:")
                lines.extend(_mapping(value, first="  ", rest="  "))
            else:
                lines.append(f"{name}: {_write_scalar(value)}")
    except _Unsure:
        return None
    return "\n".join(lines) + "\n"


def _mapping(data: dict, first: str, rest: str) -> list[str]:
    if not data:
        if first == "- ":
            return ["- {}"]
        raise _Unsure
    out = []
    for i, (key, value) in enumerate(data.items()):
        if isinstance(value, (list, dict)):
            raise _Unsure  # a third level: rare enough to leave to PyYAML
        out.append(f"{first if i == 0 else rest}{_key(key)}: {_write_scalar(value)}")
    return out


def _key(key: Any) -> str:
    if not isinstance(key, str) or len(key) > 100 or _string(key) != key:
        raise _Unsure
    return key


def _write_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise _Unsure
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)  # what PyYAML's representer does: 1e+20 -> 1.0e+20
        return text
    if kind is str:
        return _string(value)
    raise _Unsure


_WRITE_MEMO: dict[str, str] = {}  # text -> its form: keys and most values repeat from record to record
_WRITE_MEMO_MAX = 10_000


def _string(text: str) -> str:
    """The plain or single-quoted form PyYAML's emitter picks for one single-line string."""
    form = _WRITE_MEMO.get(text)
    if form is None:
        form = _string_form(text)
        if len(_WRITE_MEMO) >= _WRITE_MEMO_MAX:
            _WRITE_MEMO.clear()
        _WRITE_MEMO[text] = form
    return form


def _string_form(text: str) -> str:
    if text == "":
        return "''"  # it would read back as null
    if len(text) > _LONGEST or not _WRITABLE.fullmatch(text):
        raise _Unsure
    quote = _needs_quotes(text) or any(regexp.match(text) for _, regexp in _RESOLVERS.get(text[0], ()))
    return "'" + text.replace("'", "''") + "'" if quote else text


def _needs_quotes(text: str) -> bool:
    """Whether PyYAML's analysis forbids the plain style in block context (indicators, edge spaces)."""
    if text[0] == " " or text[-1] == " " or text[-1] == ":":
        return True
    if text.startswith(("---", "...")) or text[0] in _FIRST_INDICATORS:
        return True
    if text[0] in "?:-" and (len(text) == 1 or text[1] == " "):
        return True
    return ": " in text or " #" in text


# -- reading -------------------------------------------------------------------

_INT = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^-?(?:0|[1-9][0-9]*)\.[0-9]+(?:e[-+][0-9]+)?$")
_INDICATORS = set("[]{}!&*|>'\"%@`#?,:-~")
_MISSING = object()


_READ_MEMO: dict[str, Any] = {}  # raw scalar -> value: front matters repeat most of their values
_READ_MEMO_MAX = 100_000


def _read_scalar(raw: str) -> Any:
    """One scalar's value, or _MISSING when this reader cannot be sure of it."""
    value = _READ_MEMO.get(raw, _MISSING)
    if value is not _MISSING or raw in _READ_MEMO:
        return value
    value = _parse_scalar(raw)
    if not isinstance(value, (list, dict)):  # only immutable values may be shared
        if len(_READ_MEMO) >= _READ_MEMO_MAX:
            _READ_MEMO.clear()
        _READ_MEMO[raw] = value
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


# Lines, read once each: a front matter repeats most of its lines from one file to the next
# ("batch: 1", "- Topic 1", "  input: 0"), so each distinct line is parsed once per process.
# Values that are lists or maps ("[]", "{}") are kept as markers and made afresh per use.
_BLOCK = object()  # ``key:`` with nothing after it: a block (list, map or null) follows
_NEW_LIST = object()
_NEW_MAP = object()
_TOP: dict[str, tuple[str, Any] | None] = {}  # "key: value" -> (key, value)
_ITEM: dict[str, tuple[str | None, Any] | None] = {}  # "- value" -> (None, value); "- key: value" -> (key, value)
_NESTED: dict[str, tuple[str, Any] | None] = {}  # "  key: value" -> (key, value)
_LINES_MAX = 100_000


def _value(raw: str) -> Any:
    value = _read_scalar(raw)
    if isinstance(value, list):
        return _NEW_LIST
    if isinstance(value, dict):
        return _NEW_MAP
    return value


def _fresh(value: Any) -> Any:
    return [] if value is _NEW_LIST else {} if value is _NEW_MAP else value


def _read_top(line: str) -> tuple[str, Any] | None:
    pair = _key_value(line, 0)
    if pair is None:
        return None
    key, raw = pair
    if raw is None or raw == "":
        return key, _BLOCK
    value = _value(raw)
    return None if value is _MISSING else (key, value)


def _read_item(line: str) -> tuple[str | None, Any] | None:
    pair = _key_value(line, 2) if ":" in line else None
    if pair is None:
        value = _value(line[2:])
        # A list or map inside a list is beyond this reader.
        return None if value is _MISSING or value is _NEW_LIST or value is _NEW_MAP else (None, value)
    return _read_pair(pair)


def _read_nested(line: str) -> tuple[str, Any] | None:
    pair = _key_value(line, 2)
    return None if pair is None else _read_pair(pair)


def _read_pair(pair: tuple[str, str | None]) -> tuple[str, Any] | None:
    key, raw = pair
    if raw is None:
        return None
    value = _value(raw)
    return None if value is _MISSING else (key, value)


def _remember(memo: dict, reader, line: str):
    """``reader(line)``, stored in ``memo`` (the callers look there first, inline: this runs 30 times a file)."""
    if len(memo) >= _LINES_MAX:
        memo.clear()
    found = memo[line] = reader(line)
    return found


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
        top = _TOP.get(line, _MISSING)
        if top is _MISSING:
            top = _remember(_TOP, _read_top, line)
        if top is None:
            return None
        key, value = top
        if key in out:
            return None
        i += 1
        if value is not _BLOCK:
            out[key] = value if value is not _NEW_LIST and value is not _NEW_MAP else _fresh(value)
            continue
        # A block: a list ("- ...") or a nested mapping ("  key: ...") follows, or nothing (null).
        if i < n and lines[i].startswith("- "):
            items: list[Any] = []
            while i < n and lines[i].startswith("- "):
                item = _ITEM.get(lines[i], _MISSING)
                if item is _MISSING:
                    item = _remember(_ITEM, _read_item, lines[i])
                if item is None:
                    return None
                i += 1
                k, value = item
                if k is None:
                    items.append(value)  # a scalar: never a list or map (see _read_item)
                    continue
                mapping: dict[str, Any] = {k: _fresh(value)}
                while i < n and lines[i].startswith("  "):
                    nested = _NESTED.get(lines[i], _MISSING)
                    if nested is _MISSING:
                        nested = _remember(_NESTED, _read_nested, lines[i])
                    if nested is None:
                        break  # not a key of this item: the caller's next line decides
                    k, value = nested
                    if k in mapping:
                        return None
                    mapping[k] = _fresh(value)
                    i += 1
                items.append(mapping)
            out[key] = items
        elif i < n and lines[i].startswith("  "):
            mapping = {}
            while i < n and lines[i].startswith("  "):
                nested = _NESTED.get(lines[i], _MISSING)
                if nested is _MISSING:
                    nested = _remember(_NESTED, _read_nested, lines[i])
                if nested is None or nested[0] in mapping:
                    return None
                mapping[nested[0]] = _fresh(nested[1])
                i += 1
            out[key] = mapping
        else:
            out[key] = None
    return out
