"""A kb workspace: where its folders are, how to find one, and how to make one."""

from __future__ import annotations

import functools
import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kb.config import Config, load_config
from kb.errors import PathError, WorkspaceError
from kb.fsutil import relative_inside, resolve_inside
from kb.records import DROP_PREFIX

CONFIG_NAME = "kb.toml"
# Paths kb manages inside a workspace (what consolidate may stage).
MANAGED = ("knowledge", "drops", "plans", "snippets", "INDEX.md", "SKILL.md")


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: Config

    @property
    def knowledge_dir(self) -> Path:
        return self.root / self.config.layout.knowledge if self.config.layout.knowledge not in ("", ".") else self.root

    @property
    def plans_dir(self) -> Path:
        return self.root / glob_folder(self.config.layout.plans[0], "plans") if self.config.layout.plans else self.root / "plans"

    @property
    def completed_dir(self) -> Path:
        completed = self.config.layout.completed
        return self.root / glob_folder(completed[0], "plans/completed") if completed else self.root / "plans" / "completed"

    @property
    def drops_dir(self) -> Path:
        return self.root / glob_folder(self.config.layout.drops[0], "drops") if self.config.layout.drops else self.root / "drops"

    @property
    def default_layout(self) -> bool:
        """Whether the workspace keeps kb's own layout (knowledge/, drops/, plans/)."""
        from kb.config import LayoutConfig

        return self.config.layout == LayoutConfig()

    def managed_paths(self) -> tuple[str, ...]:
        """The paths consolidate may stage: kb's own folders, or, in an adopted layout, the
        knowledge root's topic folders and the folders of its drops and plans."""
        if self.default_layout:
            return MANAGED
        layout = self.config.layout
        prefix = self.knowledge_prefix
        tops = {prefix.rstrip("/")} if prefix else {rel.split("/", 1)[0] for rel in self.knowledge_files()}
        tops |= {glob_folder(g, "") for g in [*layout.drops, *layout.plans, *layout.completed]}
        return tuple(sorted(t for t in tops if t)) + ("snippets", "INDEX.md", "SKILL.md")

    @property
    def knowledge_prefix(self) -> str:
        """The knowledge root as a prefix of workspace-relative paths ("" where it is the workspace)."""
        root = self.config.layout.knowledge.strip("/")
        return "" if root in ("", ".") else root + "/"

    def layout_files(self, kind: str) -> list[str]:
        """The workspace-relative files the layout's ``kind`` globs (drops, plans, completed) match."""
        return match_globs(self.root, getattr(self.config.layout, kind))

    def knowledge_files(self, suffixes: tuple[str, ...] = (".md",)) -> list[str]:
        """Every Markdown file (or file ending in one of ``suffixes``) of the knowledge root,
        workspace-relative: not the folders that hold the layout's drops and plans, a site kb
        built, the top-level files of an adopted root (a skill folder's SKILL.md, README.md), or,
        where the root is the workspace itself, kb's folders."""
        prefix = self.knowledge_prefix
        start = self.root / prefix if prefix else self.root
        if not start.is_dir():
            return []
        layout = self.config.layout
        skip = {prefix + d for d in RESERVED_TOP} if not prefix else set()
        for pattern in [*layout.drops, *layout.plans, *layout.completed]:
            folder = glob_folder(pattern, "")
            if folder.startswith(prefix) and folder != prefix.rstrip("/"):
                # The first folder below the knowledge root that holds them (_ingest-auto/).
                skip.add(prefix + folder[len(prefix):].split("/", 1)[0])
        taken = set(self.layout_files("drops")) | set(self.layout_files("plans")) | set(self.layout_files("completed"))
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and rel_dir + d not in skip
                                 and not any((Path(dirpath) / d / m).is_file() for m in SITE_MARKERS))
            if rel_dir == prefix and not self.default_layout:
                continue  # top-level files of a skill folder (SKILL.md, README.md...) are no knowledge
            out += [rel_dir + f for f in sorted(filenames)
                    if f.endswith(suffixes) and not f.startswith(".") and rel_dir + f not in taken]
        return out

    def layout_folders(self) -> tuple[str, ...]:
        """The workspace-relative folders that hold the knowledge (the root, or where that is the
        workspace, its topic folders), the drops and the plans: no place for anything else."""
        layout = self.config.layout
        prefix = self.knowledge_prefix
        folders = {prefix.rstrip("/")} if prefix else {rel.split("/", 1)[0] for rel in self.knowledge_files()}
        folders |= {glob_folder(g, "") for g in [*layout.drops, *layout.plans, *layout.completed]}
        return tuple(sorted(f for f in folders if f))

    def in_knowledge(self, rel: str) -> str | None:
        """A workspace-relative path as a path relative to the knowledge root; None outside it."""
        prefix = self.knowledge_prefix
        return rel[len(prefix):] if rel.startswith(prefix) else None

    def drop_folder(self, plan: Path) -> Path:
        """Where run-plan writes the drops of ``plan``: beside it where the layout keeps drops with
        their plan (``_ingest-auto/*/expansion-x/``), else the layout's drops folder."""
        probe = "KNOWLEDGE-DROP-x-2025-01-01-0000.md"
        try:
            beside = Path(self.rel(plan)).parent.as_posix()
        except ValueError:
            return self.drops_dir
        for folder in (beside, self.rel(self.drops_dir)):
            candidate = f"{folder}/{probe}" if folder not in ("", ".") else probe
            if any(glob_matches(g, candidate) for g in self.config.layout.drops):
                return self.root / folder
        return self.drops_dir

    @property
    def runners_dir(self) -> Path:
        return self.root / "runners"

    @property
    def validators_dir(self) -> Path:
        return self.root / "validators"

    @property
    def snippets_dir(self) -> Path:
        return self.root / "snippets"

    @property
    def state_dir(self) -> Path:
        """Local, git-ignored state: checkpoints, caches, the lock file."""
        return self.root / ".kb"

    @property
    def index_path(self) -> Path:
        return self.root / "INDEX.md"

    @property
    def skill_path(self) -> Path:
        return self.root / "SKILL.md"

    def rel(self, path: Path) -> str:
        """Workspace-relative POSIX path of a path inside the workspace."""
        path = Path(path)
        # kb's own paths are built from the (resolved) root: no file system calls for those.
        if path.is_absolute() and ".." not in path.parts:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return path.resolve().relative_to(self.root.resolve()).as_posix()

    @functools.cached_property
    def _knowledge_real(self) -> Path:
        return self.knowledge_dir.resolve()

    def inside(self, candidate: Path | str, what: str = "path") -> Path:
        """Resolve a user-given path and refuse it unless it lies inside the workspace."""
        candidate = Path(candidate)
        if not candidate.is_absolute() and not candidate.exists() and (self.root / candidate).exists():
            candidate = self.root / candidate
        return resolve_inside(self.root, candidate, what)

    def knowledge_path(self, target: str) -> Path:
        """The file a PART target (relative to knowledge/) names; refuses escapes."""
        rel = relative_inside(target, "target")
        path = self.knowledge_dir / rel
        return resolve_inside(self._knowledge_real, path, "target", root_resolved=True)


# Top-level folders that hold no knowledge where the knowledge root is the workspace itself.
RESERVED_TOP = ("runners", "validators", "snippets", "plans", "drops", "kb", "tests", "node_modules", "_site", "site")
# What a site `kb serve --build` wrote holds (its navigation; an older build's state file): never knowledge.
SITE_MARKERS = ("_static/nav-data.js", ".kb-site.json")


def glob_folder(pattern: str, default: str) -> str:
    """The fixed folder a glob starts with (``_ingest-auto/completed/*/ingestion.md`` ->
    ``_ingest-auto/completed``); ``default`` where it has none."""
    fixed = []
    for part in pattern.split("/")[:-1]:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return "/".join(fixed) or default


def glob_matches(pattern: str, rel: str) -> bool:
    """Whether the workspace-relative ``rel`` is a path ``pattern`` names, as Path.glob reads it
    (``**`` any folders, ``*`` and ``?`` within one name), for a file that need not exist yet."""
    out = []
    for i, part in enumerate(pattern.split("/")):
        if part == "**":
            out.append("(?:[^/]+/)*")
            continue
        body = "".join("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in part)
        out.append(body + ("/" if i < pattern.count("/") else ""))
    return re.fullmatch("".join(out), rel) is not None


def match_globs(root: Path, patterns: list[str]) -> list[str]:
    """Workspace-relative POSIX paths of the files ``patterns`` match (hidden ones skipped), sorted."""
    found: set[str] = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
                found.add(rel)
    return sorted(found)


def find_workspace(start: Path | None = None) -> Workspace:
    """The workspace containing ``start`` (default: the cwd), found by its kb.toml."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return Workspace(root=folder, config=load_config(folder / CONFIG_NAME))
    raise WorkspaceError(f"no kb workspace here: no {CONFIG_NAME} in {here} or any folder above it (run `kb init`)")


def open_workspace(root: Path) -> Workspace:
    """The workspace rooted exactly at ``root``."""
    root = Path(root).resolve()
    if not (root / CONFIG_NAME).is_file():
        raise WorkspaceError(f"{root} is not a kb workspace (no {CONFIG_NAME})")
    return Workspace(root=root, config=load_config(root / CONFIG_NAME))


def skeleton_files() -> dict[str, bytes]:
    """The files ``kb init`` writes, keyed by workspace-relative path."""
    base = resources.files("kb") / "templates" / "workspace"
    out: dict[str, bytes] = {}

    def walk(node, prefix: str) -> None:
        for child in node.iterdir():
            name = child.name
            if name == "__pycache__":
                continue
            rel = f"{prefix}{name}"
            if child.is_dir():
                walk(child, rel + "/")
            else:
                # "dot-" avoids shipping dotfiles that packaging tools drop.
                out[rel.replace("dot-", ".", 1) if name.startswith("dot-") else rel] = child.read_bytes()

    walk(base, "")
    return out


def init_workspace(target: Path) -> tuple[Workspace, list[str]]:
    """Create a new workspace skeleton in ``target``; refuse to clobber an existing one."""
    target = Path(target).resolve()
    if target.exists() and not target.is_dir():
        raise PathError(f"{target} exists and is not a folder")
    if (target / CONFIG_NAME).exists():
        raise WorkspaceError(f"{target} is already a kb workspace ({CONFIG_NAME} exists); nothing changed")
    files = skeleton_files()
    clashes = sorted(rel for rel in files if (target / rel).exists())
    if clashes:
        raise WorkspaceError(f"{target} already has {', '.join(clashes[:5])}; refusing to overwrite (nothing changed)")
    created: list[str] = []
    for folder in ("knowledge", "plans/completed", "drops", "runners", "validators", "snippets"):
        path = target / folder
        if not path.exists():
            path.mkdir(parents=True)
            created.append(folder + "/")
    for rel, data in sorted(files.items()):
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        created.append(rel)
    for folder in ("knowledge", "drops", "snippets", "plans/completed"):
        keep = target / folder / ".gitkeep"
        if not any((target / folder).iterdir()):
            keep.touch()
    return open_workspace(target), created


def copy_tree(src: Path, dst: Path) -> None:
    """Copy a folder tree (used by tests and bench to make scratch workspaces)."""
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".kb", ".git", "__pycache__", ".venv"))


DROP_GLOB = "KNOWLEDGE-DROP-*.md"


def detect_layout(root: Path, knowledge: str | None = None) -> dict[str, object]:
    """The layout of an existing tree, found by looking (nothing is moved): the knowledge root
    (``knowledge/`` if there is one, else the tree itself), where its drops and plans are
    (kb's folders, or ``<folder>/*/ingestion.md`` expansion folders, ``completed`` ones apart)."""
    root = Path(root)
    if knowledge is None:
        knowledge = "knowledge" if (root / "knowledge").is_dir() else "."
    drops: set[str] = set()
    plans: set[str] = set()
    completed: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root).as_posix()
        top = "" if rel == "." else rel.split("/", 1)[0]
        if knowledge not in (".", "") and rel.startswith(knowledge + "/"):
            # Below a knowledge root of its own (skills/gpu/_ingest-auto/...): the folder under it.
            top = knowledge + "/" + rel[len(knowledge) + 1:].split("/", 1)[0]
        for name in filenames:
            if name.upper().startswith(DROP_PREFIX) and name.endswith(".md"):
                drops.add(f"{top}/**/{DROP_GLOB}" if top else DROP_GLOB)
            elif name == "ingestion.md" and rel.count("/") >= 1:
                holder = rel.rsplit("/", 1)[0]
                (completed if holder.rsplit("/", 1)[-1] == "completed" else plans).add(f"{holder}/*/ingestion.md")
    if (root / "plans").is_dir():
        plans.add("plans/*.md")
        completed.add("plans/completed/*.md")
    return {
        "knowledge": knowledge,
        "drops": sorted(drops) or ["drops/" + DROP_GLOB],
        "plans": sorted(plans) or ["plans/*.md"],
        "completed": sorted(completed) or ["plans/completed/*.md"],
    }


def layout_toml(layout: dict[str, object]) -> str:
    """The ``[layout]`` section of kb.toml for ``layout``."""
    import json

    lines = ["[layout]", "# Where this tree keeps its knowledge, drops and plans (kb init --adopt found them; globs allowed)."]
    for key in ("knowledge", "drops", "plans", "completed"):
        lines.append(f"{key} = {json.dumps(layout[key])}")
    return "\n".join(lines) + "\n"


def adopt_workspace(target: Path, knowledge: str | None = None) -> tuple[Workspace, dict[str, object]]:
    """Make an existing tree a workspace in place: write kb.toml with the layout found (and
    nothing else; no file is moved). ``knowledge``: the knowledge root, where it is neither
    knowledge/ nor the tree itself. Returns the workspace and the layout."""
    target = Path(target).resolve()
    if not target.is_dir():
        raise PathError(f"{target} is not a folder")
    if (target / CONFIG_NAME).exists():
        raise WorkspaceError(f"{target} is already a kb workspace ({CONFIG_NAME} exists); nothing changed")
    if knowledge is not None:
        knowledge = knowledge.replace("\\", "/").strip("/") or "."
        if not (target / knowledge).is_dir():
            raise PathError(f"--knowledge {knowledge}: no such folder in {target}; nothing changed")
        relative_inside(knowledge, "--knowledge")
    layout = detect_layout(target, knowledge)
    template = skeleton_files()[CONFIG_NAME].decode("utf-8")
    text = template.rstrip("\n") + "\n\n" + layout_toml(layout)
    load_config_text(text, target / CONFIG_NAME)  # what is written must load
    (target / CONFIG_NAME).write_text(text, encoding="utf-8")
    return open_workspace(target), layout


def load_config_text(text: str, where: Path) -> Config:
    import tomllib

    from kb.config import Config as _Config

    return _Config.model_validate(tomllib.loads(text))
