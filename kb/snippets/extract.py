"""Find the snippets of a Markdown file: every fenced block, with its line, language and options."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from kb.snippets.options import SnippetOptions, parse_info

PYTHON = {"python", "py", "python3"}
SHELL = {"bash", "sh", "shell", "zsh"}
# Transcripts show a session; running them would mean parsing prompts and outputs.
TRANSCRIPTS = {"console", "pycon", "shell-session", "ipython", "text", "output"}


@dataclass
class Snippet:
    """One fenced code block. ``file`` is the path as given (workspace-relative in kb)."""

    file: str
    line: int  # 1-based line of the opening fence
    end_line: int  # 1-based line of the closing fence (or the last line when unclosed)
    index: int  # 0-based position among the file's fences
    language: str
    info: str
    code: str
    options: SnippetOptions = field(default_factory=SnippetOptions)
    hash: str = ""

    @property
    def code_line(self) -> int:
        """1-based Markdown line of the code's first line."""
        return self.line + 1

    @functools.cached_property
    def kind(self) -> str | None:
        """'python' or 'shell' when kb can run it, else None."""
        if self.language in PYTHON and not _looks_like_transcript(self.code):
            return "python"
        if self.language in SHELL and self.options.run:
            return "shell"
        return None

    def not_executable_reason(self) -> str:
        if self.language in PYTHON:
            return "a Python session transcript (>>> prompts)"
        if self.language in SHELL:
            return f"{self.language} runs only when marked kb:run"
        if self.language in TRANSCRIPTS:
            return f"{self.language} transcript"
        return f"language {self.language!r} is not executed" if self.language else "no language"


def _looks_like_transcript(code: str) -> bool:
    first = next((line for line in code.splitlines() if line.strip()), "")
    return first.lstrip().startswith(">>> ")


def snippet_hash(info: str, code: str) -> str:
    """Content hash of a snippet: the info string (options change results) and the code."""
    return hashlib.sha256(f"{info.strip()}\n{code}".encode("utf-8")).hexdigest()[:20]


def extract_snippets(path: str | Path, text: str) -> list[Snippet]:
    """Every fenced block of ``text`` (the contents of ``path``), in document order."""
    from kb.mdblocks import parse_blocks  # markdown-it: imported only when a file has to be parsed (not on a warm rerun)

    file = Path(path).as_posix() if not isinstance(path, str) else path.replace("\\", "/")
    out: list[Snippet] = []
    for token in parse_blocks(text):
        if token.type != "fence" or not token.map:
            continue
        start, end = token.map
        language, options = parse_info(token.info)
        out.append(
            Snippet(
                file=file,
                line=start + 1,
                end_line=end,
                index=len(out),
                language=language,
                info=token.info.strip(),
                code=token.content,
                options=options,
                hash=snippet_hash(token.info, token.content),
            )
        )
    return out
