"""A kb workspace: where its folders are, how to find one, and how to make one."""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kb.config import Config, load_config
from kb.errors import PathError, WorkspaceError
from kb.fsutil import relative_inside, resolve_inside

CONFIG_NAME = "kb.toml"
# Paths kb manages inside a workspace (what consolidate may stage).
MANAGED = ("knowledge", "drops", "plans", "snippets", "INDEX.md", "SKILL.md")


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: Config

    @property
    def knowledge_dir(self) -> Path:
        return self.root / "knowledge"

    @property
    def plans_dir(self) -> Path:
        return self.root / "plans"

    @property
    def completed_dir(self) -> Path:
        return self.root / "plans" / "completed"

    @property
    def drops_dir(self) -> Path:
        return self.root / "drops"

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
