"""git for consolidate, through gitpython: find the repository, move finished plans with
``git mv`` so history follows them, and commit ONLY the paths kb manages.

The managed paths are staged (``git add -A -- <managed paths>``), then the commit is built
in a temporary index holding HEAD plus those paths, so whatever a person has staged or
changed elsewhere is neither committed nor unstaged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kb.errors import KbError
from kb.fsutil import atomic_write_text
from kb.workspace import MANAGED


class GitError(KbError):
    """git refused something consolidate asked of it."""


@dataclass
class GitContext:
    repo: object  # git.Repo; typed loosely so importing this module stays cheap
    top: Path
    prefix: str  # the workspace's path inside the repository, "" or "sub/dir/"

    def spec(self, rel: str) -> str:
        return f"{self.prefix}{rel}"

    def git(self):
        return self.repo.git


def open_repo(root: Path) -> GitContext | None:
    """The git repository holding the workspace, or None when there is none."""
    try:
        import git
    except ImportError as exc:  # gitpython imports fine without git, but be explicit
        raise GitError(f"gitpython is not usable: {exc}") from None
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    except git.GitCommandNotFound:
        raise GitError("git is not installed (or not on PATH); install it, or pass --no-commit") from None
    if repo.bare or repo.working_tree_dir is None:
        return None
    top = Path(repo.working_tree_dir).resolve()
    rel = Path(root).resolve().relative_to(top).as_posix()
    return GitContext(repo=repo, top=top, prefix="" if rel == "." else rel + "/")


def check_committable(ctx: GitContext) -> None:
    """Refuse early (before writing anything) when a commit could not be made."""
    git_dir = Path(ctx.repo.git_dir)
    for marker, what in (("MERGE_HEAD", "a merge"), ("rebase-merge", "a rebase"), ("rebase-apply", "a rebase"),
                         ("CHERRY_PICK_HEAD", "a cherry-pick")):
        if (git_dir / marker).exists():
            raise GitError(f"{ctx.top} is in the middle of {what}; finish it first, or pass --no-commit")
    try:
        ctx.git().var("GIT_COMMITTER_IDENT")
    except Exception:  # noqa: BLE001 - git's own message is the useful part
        raise GitError("git has no identity to commit with: set user.name and user.email (git config), or pass --no-commit") from None


def _run(ctx: GitContext, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    import git

    environment = {"GIT_LITERAL_PATHSPECS": "1", **(env or {})}  # our paths are paths, never globs
    try:
        with ctx.git().custom_environment(**environment):
            if stdin is None:
                return ctx.git().execute(["git", *args])
            with tempfile.TemporaryFile() as handle:
                handle.write(stdin.encode("utf-8", "surrogateescape"))
                handle.seek(0)
                return ctx.git().execute(["git", *args], istream=handle)
    except git.GitCommandError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().replace("\n", " ")
        raise GitError(f"git {args[0]} failed: {detail or exc}") from None


def is_tracked(ctx: GitContext, rel: str) -> bool:
    return bool(_run(ctx, "ls-files", "-z", "--", ctx.spec(rel)).strip("\0"))


def move(ctx: GitContext | None, root: Path, src: str, dst: str) -> str:
    """Move ``src`` to ``dst`` (workspace-relative): ``git mv`` when git tracks it, else a rename."""
    (root / dst).parent.mkdir(parents=True, exist_ok=True)
    if ctx is not None and is_tracked(ctx, src):
        import git

        try:
            ctx.repo.index.move([str(ctx.top / ctx.spec(src)), str(ctx.top / ctx.spec(dst))])
        except git.GitCommandError as exc:
            raise GitError(f"git mv {src} {dst} failed: {(exc.stderr or '').strip()}") from None
        return "git mv"
    shutil.move(os.fspath(root / src), os.fspath(root / dst))
    return "rename"


@dataclass
class Change:
    status: str  # A, M, D, R, ...
    path: str  # workspace-relative
    old: str | None = None


def _managed_specs(ctx: GitContext, root: Path) -> list[str]:
    specs = []
    for rel in MANAGED:
        if (root / rel).exists() or is_tracked(ctx, rel):
            specs.append(ctx.spec(rel))
    return specs


def stage_managed(ctx: GitContext, root: Path) -> list[Change]:
    """Stage the managed paths' working-tree state; return what differs from HEAD there."""
    specs = _managed_specs(ctx, root)
    if not specs:
        return []
    _run(ctx, "add", "-A", "--", *specs)
    out = _run(ctx, "diff", "--cached", "--name-status", "-M", "-z", "--", *specs)
    fields = out.split("\0")
    changes: list[Change] = []
    i = 0
    strip = len(ctx.prefix)
    while i < len(fields):
        code = fields[i]
        if not code:
            i += 1
            continue
        if code[0] in "RC":
            old, new = fields[i + 1], fields[i + 2]
            changes.append(Change(code[0], new[strip:], old[strip:]))
            i += 3
        else:
            changes.append(Change(code[0], fields[i + 1][strip:]))
            i += 2
    return changes


def commit_managed(ctx: GitContext, root: Path, message: str, message_file: Path) -> str:
    """Commit the staged managed paths with ``message``; returns the new commit's sha.

    The commit is built in a temporary index: HEAD's entries outside the managed paths,
    plus the managed paths' entries from the real index (just staged from the working
    tree). ``git commit`` then runs on it (hooks and signing included), so the person's
    own staged work never enters it. Unlike ``git commit --only`` this re-reads no file,
    and unlike ``git rm --cached -r`` it stays linear in the number of entries.
    """
    specs = _managed_specs(ctx, root)
    ours = _run(ctx, "ls-files", "--stage", "-z", "--", *specs)
    entries = [line for line in ours.split("\0") if line]
    if any(line.split("\t", 1)[0].rsplit(" ", 1)[-1] != "0" for line in entries):
        raise GitError("there are unresolved merge conflicts in kb's paths; resolve them first (nothing was committed)")
    if ctx.repo.head.is_valid():
        roots = tuple(spec.rstrip("/") for spec in specs)
        for line in _run(ctx, "ls-tree", "-r", "-z", "--full-tree", "HEAD").split("\0"):
            if not line:
                continue
            path = line.split("\t", 1)[1]
            if not any(path == r or path.startswith(r + "/") for r in roots):
                entries.append(line)
    # Sorted input keeps update-index appending (linear) instead of inserting.
    entries.sort(key=lambda line: line.split("\t", 1)[1].encode("utf-8", "surrogateescape"))
    index_file = Path(ctx.repo.git_dir).resolve() / f"kb-consolidate-{os.getpid()}.index"
    env = {"GIT_INDEX_FILE": str(index_file)}
    atomic_write_text(message_file, message)
    try:
        index_file.unlink(missing_ok=True)
        _run(ctx, "read-tree", "--empty", env=env)
        if entries:
            _run(ctx, "update-index", "-z", "--index-info", env=env, stdin="\0".join(entries) + "\0")
        _run(ctx, "commit", "-q", "-F", str(message_file), env=env)
    finally:
        message_file.unlink(missing_ok=True)
        index_file.unlink(missing_ok=True)
        Path(str(index_file) + ".lock").unlink(missing_ok=True)
    return _run(ctx, "rev-parse", "HEAD").strip()
