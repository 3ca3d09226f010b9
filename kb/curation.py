"""A reviewer's relevance decisions: which passages are (or are not) about a planned section.

Research's judge leaves a section empty when no passage clears its bar, and it can
fill one with a passage a reader calls off topic. A person who has read the passage
records the verdict in ``curation.toml`` at the workspace root (``kb curate accept|reject|forget``
writes it; it is plain TOML, and comments in it survive kb's edits):

    [[decision]]
    plan = "performance"        # the plan file's name, without .md
    part = 12
    section = 5
    source = "torch.jit.save"   # a corpus locator: an API path, a workspace file
    verdict = "accept"          # accept: it fills the section; reject: it never does
    by = "Ada"
    why = "saves a TorchScript module for C++ deployment"

Research honours the file on every run, so a curated base regenerates as it was
reviewed; the knowledge file says which passages a reviewer chose, and
``kb report`` counts those sections apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from kb.errors import ConfigError
from kb.fsutil import atomic_write_text

FILE_NAME = "curation.toml"
VERDICTS = ("accept", "reject")
HEADER = """\
# Reviewed relevance decisions (kb curate accept|reject writes them; edit by hand as well).
# accept: the passage fills the section although research ranked it below its bar;
# reject: the passage never fills it. Research honours these on every run.
"""


@dataclass(frozen=True)
class Decision:
    """One verdict on one (section, passage) pair."""

    plan: str
    part: int
    section: int
    source: str
    verdict: str
    by: str = ""
    why: str = ""

    @property
    def key(self) -> tuple[str, int, int, str]:
        return (self.plan, self.part, self.section, self.source)


class Decisions:
    """The decisions of a workspace, looked up by section."""

    def __init__(self, decisions: list[Decision] | None = None, path: Path | None = None):
        self.path = path
        self.items: dict[tuple[str, int, int, str], Decision] = {}
        for decision in decisions or []:
            self.items[decision.key] = decision  # a later decision on the same pair wins

    def __len__(self) -> int:
        return len(self.items)

    def for_section(self, plan: str, part: int, section: int) -> tuple[list[Decision], set[str]]:
        """The accepted decisions of a section, in file order, and the sources rejected for it."""
        mine = [d for d in self.items.values() if (d.plan, d.part, d.section) == (plan, part, section)]
        return [d for d in mine if d.verdict == "accept"], {d.source for d in mine if d.verdict == "reject"}


def plan_key(plan) -> str | None:
    """The name a decision gives its plan: the plan file's, without .md (it survives the move to plans/completed/)."""
    return Path(str(plan.path)).stem if getattr(plan, "path", None) else None


def curation_path(root: Path) -> Path:
    return Path(root) / FILE_NAME


def _decision(entry: object, n: int, where: Path) -> Decision:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: decision {n} is not a table; write it as [[decision]]")
    missing = [k for k in ("plan", "part", "section", "source", "verdict") if k not in entry]
    if missing:
        raise ConfigError(f"{where}: decision {n} lacks {', '.join(missing)}")
    unknown = sorted(set(entry) - {"plan", "part", "section", "source", "verdict", "by", "why"})
    if unknown:
        raise ConfigError(f"{where}: decision {n} has unknown keys {', '.join(unknown)}")
    if entry["verdict"] not in VERDICTS:
        raise ConfigError(f"{where}: decision {n} has verdict {entry['verdict']!r}; use accept or reject")
    for key in ("part", "section"):
        if not isinstance(entry[key], int) or isinstance(entry[key], bool) or entry[key] < 0:
            raise ConfigError(f"{where}: decision {n}: {key} must be a whole number, not {entry[key]!r}")
    for key in ("plan", "source", "by", "why"):
        if key in entry and not isinstance(entry[key], str):
            raise ConfigError(f"{where}: decision {n}: {key} must be a string")
    if not entry["plan"].strip() or not entry["source"].strip():
        raise ConfigError(f"{where}: decision {n}: plan and source must not be empty")
    return Decision(plan=entry["plan"], part=entry["part"], section=entry["section"], source=entry["source"],
                    verdict=entry["verdict"], by=entry.get("by", ""), why=entry.get("why", ""))


def load_decisions(root: Path) -> Decisions:
    """The workspace's decisions; none when it has no curation.toml. A malformed file is the user's to fix."""
    import tomllib

    path = curation_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Decisions(path=path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix it or remove it") from exc
    unknown = sorted(set(data) - {"decision"})
    if unknown:
        raise ConfigError(f"{path}: unknown tables {', '.join(unknown)}; decisions are [[decision]] tables")
    entries = data.get("decision", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: write each decision as a [[decision]] table")
    return Decisions([_decision(e, n, path) for n, e in enumerate(entries, 1)], path=path)


def _edit(root: Path, key: tuple[str, int, int, str], add: Decision | None) -> bool:
    """Remove the decisions on the pair ``key`` from curation.toml, then append ``add`` if given, keeping the file's
    comments. Returns whether a decision was removed."""
    import tomlkit

    load_decisions(root)  # refuse to edit a file kb cannot read
    path = curation_path(root)
    if add is None and not path.exists():
        return False
    doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.parse(HEADER)
    tables = doc.get("decision")
    if tables is None:
        tables = tomlkit.aot()
        doc.append("decision", tables)
    removed = False
    for n in reversed(range(len(tables))):
        entry = tables[n]
        if (entry["plan"], entry["part"], entry["section"], entry["source"]) == key:
            del tables[n]
            removed = True
    if add is not None:
        tables.append(tomlkit.item({k: v for k, v in asdict(add).items() if v != "" or k in ("plan", "source", "verdict")}))
    if removed or add is not None:
        atomic_write_text(path, tomlkit.dumps(doc))
    return removed


def record_decision(root: Path, decision: Decision) -> bool:
    """Add ``decision`` to curation.toml (replacing an earlier one on the same pair), keeping the file's comments.
    Returns whether an earlier decision was replaced."""
    return _edit(root, decision.key, decision)


def forget_decision(root: Path, plan: str, part: int, section: int, source: str) -> bool:
    """Remove the decision on one (section, passage) pair: research judges it again. Returns whether there was one."""
    return _edit(root, (plan, part, section, source), None)
