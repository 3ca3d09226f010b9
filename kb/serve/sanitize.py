"""Raw HTML in a knowledge file, kept where a Markdown viewer would show it, cleaned of all that can run.

Knowledge comes from web research and model output, so its HTML is never trusted: nh3 (the
ammonia sanitiser) keeps an allow-list of tags and attributes (``<br>``, ``<sup>``,
``<details>``, tables, images ...) and drops scripts, event handlers, styles, forms, frames and
``javascript:`` URLs. The links raw HTML makes go through the same rewriting as Markdown links.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextvars import ContextVar

import nh3

TAGS = set(nh3.ALLOWED_TAGS) | {"input", "section"}
ATTRIBUTES: dict[str, set[str]] = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
ATTRIBUTES.setdefault("*", set()).update({"class", "id", "title", "lang", "dir"})
ATTRIBUTES["a"] = ATTRIBUTES.get("a", set()) | {"rel"}
ATTRIBUTES["img"] = ATTRIBUTES.get("img", set()) | {"title"}
ATTRIBUTES["input"] = {"type", "checked", "disabled"}  # task-list checkboxes
ATTRIBUTES["li"] = {"value"}
ATTRIBUTES["ol"] = ATTRIBUTES.get("ol", set()) | {"type"}
ATTRIBUTES["details"] = {"open"}

# (tag, attribute, value) -> the value to keep, or None to drop the attribute; set per render.
_filter: ContextVar[Callable[[str, str, str], str | None] | None] = ContextVar("kb_serve_filter", default=None)


def _attribute(tag: str, attribute: str, value: str) -> str | None:
    current = _filter.get()
    return value if current is None else current(tag, attribute, value)


_CLEANER = nh3.Cleaner(
    tags=TAGS,
    attributes=ATTRIBUTES,
    attribute_filter=_attribute,
    url_schemes={"http", "https", "mailto"},
    link_rel=None,
    strip_comments=True,
)


def clean(html: str, attribute: Callable[[str, str, str], str | None] | None = None) -> str:
    """``html`` with only allowed tags and attributes; ``attribute`` may rewrite or drop each kept attribute."""
    token = _filter.set(attribute)
    try:
        return _CLEANER.clean(html)
    finally:
        _filter.reset(token)
