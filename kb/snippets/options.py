"""The info string of a fence: the language, then ``kb:`` options.

``python kb:skip="needs 8 GPUs" kb:requires=cuda,module:apex kb:timeout=120 kb:continue
kb:expect-error kb:run kb:setup``. Unknown ``kb:`` options are reported, never ignored silently.
"""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass, field

# Requirement tokens an author may write after kb:requires= (comma-separated, repeatable).
_REQUIREMENT = re.compile(r"^(cuda|network|distributed|multi-gpu:[1-9][0-9]*|module:[A-Za-z_][A-Za-z0-9_.]*)$")
_FLAGS = {"kb:continue": "continue_", "kb:expect-error": "expect_error", "kb:run": "run", "kb:setup": "setup"}


@dataclass
class SnippetOptions:
    """What the author asked for in the info string."""

    skip: str | None = None
    requires: list[str] = field(default_factory=list)
    timeout: float | None = None
    continue_: bool = False
    expect_error: bool = False
    run: bool = False
    setup: bool = False  # runs before the file's other snippets, in their process (doctest's testsetup)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "skip": self.skip,
            "requires": list(self.requires),
            "timeout": self.timeout,
            "continue": self.continue_,
            "expect_error": self.expect_error,
            "run": self.run,
            "setup": self.setup,
        }


def _split(info: str) -> list[str]:
    try:
        return shlex.split(info)
    except ValueError:
        # An unbalanced quote: fall back to whitespace so the language is still seen.
        return info.split()


@functools.lru_cache(maxsize=8192)  # a tree repeats a few info strings thousands of times
def parse_info(info: str) -> tuple[str, SnippetOptions]:
    """Split an info string into (language, options); the language is lower-cased, '' when absent.

    The options object is shared between equal info strings: read it, never change it."""
    if "kb:" not in info:
        # The common case (a bare language, maybe other tools' attributes): no shlex needed.
        first = info.split(None, 1)[0] if info.strip() else ""
        if first.startswith(("'", '"')):
            first = _split(info.strip())[0] if _split(info.strip()) else ""
        return re.sub(r"[{}.]", "", first.split("{")[0]).lower(), SnippetOptions()
    words = _split(info.strip())
    opts = SnippetOptions()
    language = ""
    if words and not words[0].startswith("kb:"):
        # `{.python}` and `python{...}` styles: keep the bare language name.
        language = re.sub(r"[{}.]", "", words[0].split("{")[0]).lower()
        words = words[1:]
    for word in words:
        if not word.startswith("kb:"):
            continue  # other tools' attributes (title="x", linenums) are not ours
        name, _, value = word.partition("=")
        if name in _FLAGS and not value:
            setattr(opts, _FLAGS[name], True)
        elif name == "kb:skip":
            opts.skip = value or "kb:skip"
        elif name == "kb:requires" and value:
            for token in (t.strip() for t in value.split(",")):
                if _REQUIREMENT.match(token):
                    if token not in opts.requires:
                        opts.requires.append(token)
                else:
                    opts.problems.append(f"unknown requirement {token!r} in {word!r}")
        elif name == "kb:timeout" and value:
            try:
                seconds = float(value.rstrip("s"))
            except ValueError:
                seconds = -1.0
            if seconds <= 0:
                opts.problems.append(f"bad timeout {value!r} (seconds, > 0)")
            else:
                opts.timeout = seconds
        else:
            opts.problems.append(f"unknown option {word!r}")
    return language, opts
