"""Front matter as PyYAML writes it, without PyYAML's representer, for the flat records kb writes.

Each PART's drop stage writes two front matters; PyYAML's representer (Python, even in
front of libyaml's emitter) spent most of that stage's time. This writes the same bytes
for the shapes records take (scalars; lists of scalars or of flat mappings; one nested
mapping) and returns None for anything it cannot be sure of, so the caller falls back to
PyYAML. A string's style follows PyYAML's own rules (its resolvers decide whether a plain
scalar would read back as a string) for single-line strings; any other string sends the
document back. Tests compare it byte for byte with ``yaml.safe_dump``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
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
                        lines.append(f"- {_scalar(item)}")
            elif isinstance(value, dict):
                if not value:
                    lines.append(f"{name}: {{}}")
                    continue
                lines.append(f"{name}:")
                lines.extend(_mapping(value, first="  ", rest="  "))
            else:
                lines.append(f"{name}: {_scalar(value)}")
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
        out.append(f"{first if i == 0 else rest}{_key(key)}: {_scalar(value)}")
    return out


def _key(key: Any) -> str:
    if not isinstance(key, str) or len(key) > 100 or _string(key) != key:
        raise _Unsure
    return key


def _scalar(value: Any) -> str:
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


_MEMO: dict[str, str] = {}  # text -> its form: keys and most values repeat from record to record
_MEMO_MAX = 10_000


def _string(text: str) -> str:
    """The plain or single-quoted form PyYAML's emitter picks for one single-line string."""
    form = _MEMO.get(text)
    if form is None:
        form = _string_form(text)
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        _MEMO[text] = form
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
