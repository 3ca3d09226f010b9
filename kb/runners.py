"""Runner definitions: ``runners/*.md``, one role each, in the shape of Claude Code sub-agents.

YAML front matter names the role (``name``, ``description``) and its settings
(``model``, ``temperature``, ``tools``; ``max_tokens`` optional, other keys kept);
the body is a jinja2 prompt. ``runners/*.j2`` files are layouts (the offline
engine's ``knowledge-file.md.j2``) and must compile too. Every mistake is a
ConfigError naming the file and the reason, found before a run starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from kb.errors import ConfigError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
INHERIT = ("", "inherit", "default")
BUILTIN = ("writer", "researcher")


@dataclass
class RunnerDefinition:
    """One runner role: its settings and its (compiled-checked) jinja2 prompt."""

    name: str
    description: str
    body: str
    path: str
    model: str | None = None  # None: the model kb.toml or --model names
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def render(self, **variables: Any) -> str:
        """The prompt for these variables (StrictUndefined: a missing variable is an error)."""
        try:
            return _env().from_string(self.body).render(**variables)
        except jinja2.TemplateError as exc:
            raise ConfigError(f"{self.path}: cannot render the prompt: {exc}") from None


def _env() -> jinja2.Environment:
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def check_template(text: str, where: str) -> None:
    """ConfigError unless ``text`` is a jinja2 template that compiles."""
    try:
        _env().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{where}: line {exc.lineno}: jinja2 syntax error: {exc.message}") from None


def parse_runner(text: str, where: str) -> RunnerDefinition:
    """A runner definition from its text; ``where`` names it in errors."""
    text = text.lstrip("\ufeff")
    match = _FRONT.match(text)
    if not match:
        raise ConfigError(f"{where}: no YAML front matter (the file must start with a --- block)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 2})" if mark is not None else ""
        raise ConfigError(f"{where}: front matter is not valid YAML{line}") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{where}: front matter must be a mapping of keys to values")
    meta = dict(meta)
    body = text[match.end():]

    name = meta.pop("name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: 'name' must be a lowercase identifier such as writer (got {name!r})")
    description = meta.pop("description", None)
    if not isinstance(description, str) or not description.strip():
        raise ConfigError(f"{where}: 'description' is missing or empty")
    model = meta.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"{where}: 'model' must be a model name or 'inherit' (got {model!r})")
    model = None if model is None or model.strip().lower() in INHERIT else model.strip()
    temperature = meta.pop("temperature", None)
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise ConfigError(f"{where}: 'temperature' must be a number from 0 to 2 (got {temperature!r})")
        temperature = float(temperature)
    max_tokens = meta.pop("max_tokens", None)
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConfigError(f"{where}: 'max_tokens' must be a positive integer (got {max_tokens!r})")
    tools = meta.pop("tools", None)
    if tools is None:
        tools = []
    elif isinstance(tools, str):  # Claude Code writes "tools: Read, Grep, WebSearch"
        tools = [t.strip() for t in tools.split(",") if t.strip()]
    elif not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise ConfigError(f"{where}: 'tools' must be a list of tool names (got {tools!r})")
    if not body.strip():
        raise ConfigError(f"{where}: the prompt (the text after the front matter) is empty")
    check_template(body, where)
    return RunnerDefinition(name=name, description=description.strip(), body=body, path=where, model=model,
                            temperature=temperature, max_tokens=max_tokens, tools=list(tools), extra=meta)


def load_runner(path: Path) -> RunnerDefinition:
    """Read and validate one ``runners/<role>.md``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_runner(text, str(path))


def builtin_runner(name: str) -> RunnerDefinition:
    """kb's own definition of a role (what ``kb init`` ships in runners/)."""
    base = resources.files("kb") / "templates" / "workspace" / "runners" / f"{name}.md"
    return parse_runner(base.read_text(encoding="utf-8"), f"kb's built-in runners/{name}.md")


def load_runners(runners_dir: Path | None) -> dict[str, RunnerDefinition]:
    """Every runner of a workspace by name, kb's built-in writer and researcher filling any gap.

    Also compiles the layouts (``runners/*.j2``). Raises ConfigError on the first bad file.
    """
    found: dict[str, RunnerDefinition] = {}
    folder = Path(runners_dir) if runners_dir is not None else None
    if folder is not None and folder.is_dir():
        for path in sorted(folder.glob("*.md")):
            runner = load_runner(path)
            if runner.name in found:
                raise ConfigError(f"{path}: runner name {runner.name!r} is already used by {found[runner.name].path}")
            found[runner.name] = runner
        for path in sorted(folder.glob("*.j2")):
            check_template(path.read_text(encoding="utf-8"), str(path))
    for name in BUILTIN:
        if name not in found:
            found[name] = builtin_runner(name)
    return found
