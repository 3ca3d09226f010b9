"""INDEX.md and SKILL.md: jinja2 templates kept in the workspace (runners/index.md.j2,
runners/skill.md.j2, falling back to kb's packaged copies), spliced between kb's markers
so that whatever a person wrote outside them survives.

SKILL.md front matter: kb owns ``description`` (rebuilt from the topics every time) and
keeps ``name`` when it already is a valid skill name (else derives one from the workspace
folder); every other field, and comments, stay as the person wrote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from kb.errors import ConfigError, KbError
from kb.records import dump_yaml

INDEX_MARKERS = ("<!-- kb:index:start -->", "<!-- kb:index:end -->")
SKILL_MARKERS = ("<!-- kb:skill:start -->", "<!-- kb:skill:end -->")
TEMPLATE_NAMES = {"index": "index.md.j2", "skill": "skill.md.j2"}
INDEX_HEAD = "# Knowledge Index\n\nHand-written notes above or below the markers survive `kb consolidate`.\n\n"
NAME_MAX = 64
DESCRIPTION_MAX = 1024
_NAME_OK = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TOP_KEY = re.compile(r"^(?P<key>[A-Za-z_][\w.-]*)\s*:")


@dataclass
class TemplateSource:
    text: str
    origin: str  # the workspace file, or "kb (packaged)"


def template_path(root: Path, kind: str) -> Path:
    return root / "runners" / TEMPLATE_NAMES[kind]


def packaged_template(kind: str) -> str:
    node = resources.files("kb") / "templates" / "workspace" / "runners" / TEMPLATE_NAMES[kind]
    return node.read_text(encoding="utf-8")


def read_text_exact(path: Path) -> str | None:
    """A file's text with its line endings as they are (None when it does not exist)."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def load_template(root: Path, kind: str) -> TemplateSource:
    """The workspace's template for ``kind`` ("index" or "skill"), else kb's packaged one."""
    path = template_path(root, kind)
    if path.is_file():
        return TemplateSource(path.read_text(encoding="utf-8"), f"runners/{TEMPLATE_NAMES[kind]}")
    return TemplateSource(packaged_template(kind), f"kb (packaged runners/{TEMPLATE_NAMES[kind]})")


def md_text(value: Any) -> str:
    """Text safe inside a Markdown link label."""
    text = str(value)
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("<", "&lt;")


_LINK_SAFE = re.compile(r"[A-Za-z0-9/_.~-]*")  # what quote() leaves alone: kb's own paths


def md_link(path: str) -> str:
    """A relative link target for a workspace path (spaces and brackets percent-encoded)."""
    if _LINK_SAFE.fullmatch(path):
        return path  # 20,000 links a big INDEX.md: most need no quoting at all
    return quote(path, safe="/-_.~")


def render(source: TemplateSource, context: dict[str, Any]) -> str:
    """Render a template; a broken template is the user's mistake, named with its line."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["md"] = md_text
    env.filters["link"] = md_link
    try:
        text = env.from_string(source.text).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{source.origin}:{exc.lineno}: template error: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise ConfigError(f"{source.origin}: template error: {exc}") from None
    return text.strip("\n") + "\n"


def splice(existing: str | None, block: str, markers: tuple[str, str], head: str, where: str) -> str:
    """Put ``block`` between the markers; text outside them is kept byte for byte.

    Without markers the block is appended; markers that do not pair up are an error
    (guessing could swallow what a person wrote).
    """
    start, end = markers
    body = f"{start}\n{block.rstrip(chr(10))}\n{end}"
    if existing is None:
        return f"{head}{body}\n"
    starts = existing.count(start)
    ends = existing.count(end)
    if starts == 0 and ends == 0:
        sep = "" if existing.endswith("\n\n") or not existing else ("\n" if existing.endswith("\n") else "\n\n")
        return f"{existing}{sep}{body}\n"
    first = existing.find(start)
    last = existing.find(end, first + len(start)) if first >= 0 else -1
    if starts != 1 or ends != 1 or last < 0:
        if starts > 1:
            bad = existing.find(start, first + len(start))
        elif ends > 1:
            bad = existing.find(end, existing.find(end) + len(end))
        elif starts == 1 and ends == 0:
            bad = first
        else:  # no start, or the end comes before it
            bad = existing.find(end)
        line = existing.count("\n", 0, max(bad, 0)) + 1
        raise KbError(
            f"{where}:{line}: the markers {start} and {end} must appear once each, in that order; "
            "fix them by hand (nothing was written)"
        )
    return existing[:first] + body + existing[last + len(end) :]


# -- SKILL.md front matter --------------------------------------------------


def valid_skill_name(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= NAME_MAX and bool(_NAME_OK.match(name))


def skill_name_from(folder_name: str) -> str:
    """A valid skill name made from a folder name (``knowledge-base`` if nothing is left)."""
    slug = re.sub(r"[^a-z0-9]+", "-", folder_name.lower()).strip("-")
    slug = slug[:NAME_MAX].rstrip("-")
    return slug or "knowledge-base"


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(front matter text without its fences, the rest) for a file starting with ``---``."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != "---":
        return None, text
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n") in ("---", "..."):
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    return None, text


def parse_front_matter(fm: str | None, where: str) -> dict[str, Any]:
    if fm is None:
        return {}
    try:
        data = yaml.safe_load(fm) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 2}" if mark is not None else ""
        raise KbError(f"{where}{line}: the front matter is not valid YAML; fix it (nothing was written)") from None
    if not isinstance(data, dict):
        raise KbError(f"{where}: the front matter is not a YAML mapping; fix it (nothing was written)")
    return data


def set_front_matter(fm: str | None, fields: dict[str, str], where: str) -> str:
    """Front matter text with ``fields`` set first; other keys and comments kept as written."""
    ours = dump_yaml(fields, width=1_000_000)
    if fm is None:
        return ours
    old = parse_front_matter(fm, where)
    kept: list[str] = []
    skipping = False
    for line in fm.splitlines(keepends=True):
        key = _TOP_KEY.match(line)
        if key:
            skipping = key.group("key") in fields
        elif skipping and not (line.strip() == "" or line[:1] in (" ", "\t") or line.startswith("- ")):
            skipping = False
        if not skipping:
            kept.append(line)
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    text = ours + "".join(kept)
    try:
        check = yaml.safe_load(text)
    except yaml.YAMLError:
        check = None
    if isinstance(check, dict) and all(check.get(k) == v for k, v in fields.items()):
        return text
    # Unusual YAML (flow mappings, anchors...): rewrite it whole rather than guess.
    merged = {**fields, **{k: v for k, v in old.items() if k not in fields}}
    return dump_yaml(merged, width=1_000_000)


def humanize(topic: str) -> str:
    return topic.replace("-", " ").replace("_", " ").replace("/", " / ")


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def build_description(topics: list[dict[str, Any]], total_files: int) -> str:
    """What the knowledge base covers and when to use it, from its topics, at most 1024 characters."""
    if not topics:
        text = (
            "A curated Markdown knowledge base compiled by kb; it has no knowledge files yet. "
            "Use it to look up knowledge once plans have been run: start at INDEX.md."
        )
        return text
    names = [humanize(t["name"]) for t in topics]

    def compose(titles_per_topic: int, shown: int) -> str:
        parts = []
        for topic, name in list(zip(topics, names))[:shown]:
            titles = [_shorten(t, 48) for t in topic["titles"][:titles_per_topic]]
            parts.append(f"{name} ({'; '.join(titles)})" if titles else name)
        more = len(topics) - shown
        covered = "; ".join(parts) + (f"; and {more} more topics" if more > 0 else "")
        use_names = names[:6] + ([f"{len(names) - 6} other topics"] if len(names) > 6 else [])
        files = "file" if total_files == 1 else "files"
        return (
            f"Curated Markdown knowledge base of {total_files} {files} in {len(topics)} "
            f"{'topic' if len(topics) == 1 else 'topics'}: {covered}. "
            f"Use it when a task involves {_join(use_names)} and needs what the sources it quotes say, "
            "cited: start at INDEX.md, which lists every file by topic and marks the sections research found nothing for."
        )

    for per_topic in (3, 2, 1, 0):
        text = compose(per_topic, len(topics))
        if len(text) <= DESCRIPTION_MAX:
            break
    shown = len(topics)
    while len(text) > DESCRIPTION_MAX and shown > 1:
        shown -= 1
        text = compose(0, shown)
    text = text.replace("<", "‹").replace(">", "›")  # validators reject XML-looking tags
    return text[:DESCRIPTION_MAX]


_GENERATED_DESCRIPTION = ("Curated Markdown knowledge base of ", "A curated Markdown knowledge base compiled by kb")


def persons_description(value: Any) -> bool:
    """Whether a SKILL.md ``description`` is a person's (kb keeps it), not one kb generated."""
    return isinstance(value, str) and bool(value.strip()) and not value.startswith(_GENERATED_DESCRIPTION)


def render_skill_file(existing: str | None, block: str, name_hint: str, description: str) -> tuple[str, str]:
    """The whole SKILL.md and the skill name it carries."""
    where = "SKILL.md"
    fm, rest = split_front_matter(existing) if existing is not None else (None, "")
    old = parse_front_matter(fm, where)
    current = old.get("name")
    name = current if valid_skill_name(current) else skill_name_from(name_hint)
    if persons_description(old.get("description")):
        description = old["description"]  # the person's words stay theirs
    if fm is not None and old.get("name") == name and old.get("description") == description:
        head = fm if fm.endswith("\n") else fm + "\n"  # nothing of kb's to set: the front matter as written
    else:
        head = set_front_matter(fm, {"name": name, "description": description}, where)
    if existing is None:
        body = splice(None, block, SKILL_MARKERS, "", where)
    else:
        body = splice(rest.lstrip("\n") if fm is None else rest, block, SKILL_MARKERS, "", where)
        if fm is None and rest.strip() == "":
            body = splice(None, block, SKILL_MARKERS, "", where)
    if not body.startswith("\n"):
        body = "\n" + body
    return f"---\n{head}---\n{body}", name
