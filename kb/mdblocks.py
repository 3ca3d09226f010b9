"""CommonMark block structure (headings, lists, fences) with markdown-it, for the readers that
need nothing finer: plans, drafts being checked, snippets being extracted.

The inline pass is off: none of these readers looks at parsed inline children (they read a
token's raw ``.content``), and the inline pass is half of a parse.
"""

from __future__ import annotations

import functools

from markdown_it import MarkdownIt
from markdown_it.token import Token


@functools.cache
def block_parser() -> MarkdownIt:
    """The block-only CommonMark parser, built once per process (building one costs about a parse)."""
    return MarkdownIt("commonmark").disable(["inline", "text_join"])


@functools.lru_cache(maxsize=16)
def parse_blocks(text: str) -> tuple[Token, ...]:
    """The block tokens of ``text``, shared: a run checks a draft, then counts the snippets of the
    same text. Callers read them and never change them."""
    return tuple(block_parser().parse(text))
