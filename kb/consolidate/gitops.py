"""git for consolidate, through gitpython: find the repository, move finished plans with
``git mv`` so history follows them, and commit ONLY the paths kb manages.

The managed paths are staged (``git add -A -- <managed paths>``), then the commit is built
in a temporary index holding HEAD plus those paths, so whatever a person has staged or
changed elsewhere is neither committed nor unstaged.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from kb.consolidate import gitpack
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
        raise GitError("git is not installed (or not on PATH); install it, or pass --write-only (write, commit nothing)") from None
    if repo.bare or repo.working_tree_dir is None:
        return None
    top = Path(repo.working_tree_dir).resolve()
    rel = Path(root).resolve().relative_to(top).as_posix()
    return GitContext(repo=repo, top=top, prefix="" if rel == "." else rel + "/")


def check_committable(ctx: GitContext) -> None:
    """Refuse early (before writing anything) when a commit could not be made; remove what
    killed kb runs left behind."""
    git_dir = Path(ctx.repo.git_dir)
    remove_leftovers(git_dir)
    lock = _index_path(ctx).with_suffix(".lock")
    if lock.exists():
        raise GitError(f"{lock} exists: another git command is running here, or one was killed and left it behind. "
                       f"If no git command is running, remove {lock} and run kb consolidate again (nothing was written)")
    for marker, what in (("MERGE_HEAD", "a merge"), ("rebase-merge", "a rebase"), ("rebase-apply", "a rebase"),
                         ("CHERRY_PICK_HEAD", "a cherry-pick")):
        if (git_dir / marker).exists():
            raise GitError(f"{ctx.top} is in the middle of {what}; finish it first, or pass --write-only (write, commit nothing)")
    try:
        ctx.git().var("GIT_COMMITTER_IDENT")
    except Exception:  # noqa: BLE001 - git's own message is the useful part
        raise GitError("git has no identity to commit with: set user.name and user.email (git config), or pass --write-only (write, commit nothing)") from None


_TEMPORARY_INDEX = re.compile(r"kb-consolidate-(\d+)\.index(?:\.lock)?")


def remove_leftovers(git_dir: Path) -> list[Path]:
    """Remove the temporary index files (see :func:`commit_managed`) of kb runs that were
    killed: those whose process is gone. Returns what was removed."""
    removed = []
    for path in Path(git_dir).glob("kb-consolidate-*.index*"):
        match = _TEMPORARY_INDEX.fullmatch(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or not ours to judge: leave its file
    return True


def _run(ctx: GitContext, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
         config: tuple[str, ...] = ()) -> str:
    import git

    environment = {"GIT_LITERAL_PATHSPECS": "1", **(env or {})}  # our paths are paths, never globs
    command = ["git", *(item for setting in config for item in ("-c", setting)), *args]
    try:
        with ctx.git().custom_environment(**environment):
            if stdin is None:
                return ctx.git().execute(command)
            with tempfile.TemporaryFile() as handle:
                handle.write(stdin.encode("utf-8", "surrogateescape"))
                handle.seek(0)
                return ctx.git().execute(command, istream=handle)
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


def _managed_specs(ctx: GitContext, root: Path, managed: tuple[str, ...] = MANAGED) -> list[str]:
    specs = []
    for rel in managed:
        if (root / rel).exists() or is_tracked(ctx, rel):
            specs.append(ctx.spec(rel))
    return specs


# From this many new files on, `git add` writes them into one pack (git's bulk check-in,
# as it does for big files) instead of one loose object file each: creating thousands of
# files is the slow part on some filesystems. Level 1 is the speed loose objects use too;
# a later `git gc` repacks them like any other objects.
BULK_MIN = 256
BULK_CONFIG = ("core.bigFileThreshold=1", "pack.compression=1")


def stage_managed(ctx: GitContext, root: Path, expected: int = 0, staged: frozenset[str] = frozenset(),
                  managed: tuple[str, ...] = MANAGED) -> list[Change]:
    """Stage the managed paths' working-tree state; return what differs from HEAD there.

    ``expected``: about how many files changed (new drops, re-read knowledge files...);
    from BULK_MIN on, new objects go into one pack rather than thousands of loose files.
    ``staged``: pathspecs a :class:`Prestage` already added since kb last wrote there.
    """
    specs = _managed_specs(ctx, root, managed)
    if not specs:
        return []
    # Adding them again would cost one lstat per file, and a re-hash of each file written in
    # the same second as the index (git's "racily clean" entries): thousands of drops.
    left = [spec for spec in specs if spec not in staged]
    if left:
        _run(ctx, "add", "-A", "--", *left, config=BULK_CONFIG if expected >= BULK_MIN else ())
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


def _index_path(ctx: GitContext) -> Path:
    """The index file git uses here (GIT_INDEX_FILE and worktrees respected)."""
    path = Path(_run(ctx, "rev-parse", "--git-path", "index").strip())
    return path if path.is_absolute() else ctx.top / path


def _reset_outside(ctx: GitContext, roots: tuple[str, ...], env: dict[str, str]) -> None:
    """In the index ``env`` names (a copy of the real one), put every entry outside ``roots``
    back as HEAD has it: the person's staged work there stays out of the commit."""
    head = ctx.repo.head.is_valid()
    listed = _run(ctx, "diff-index", "--cached", "--no-renames", "--name-only", "-z", "HEAD", env=env) if head \
        else _run(ctx, "ls-files", "-z", env=env)
    folders = tuple(root + "/" for root in roots)  # one startswith for all: 20,000 paths a big run
    staged = {path for path in listed.split("\0") if path and path not in roots and not path.startswith(folders)}
    if not staged:
        return
    lines: dict[str, str] = {}
    if head:
        for line in _run(ctx, "ls-tree", "-r", "-z", "--full-tree", "HEAD").split("\0"):
            if line and line.split("\t", 1)[1] in staged:
                lines[line.split("\t", 1)[1]] = line
    null = "0" * (64 if _run(ctx, "rev-parse", "--show-object-format").strip() == "sha256" else 40)
    for path in staged:
        lines.setdefault(path, f"0 {null}\t{path}")  # mode 0: not in HEAD, so out of the index
    ordered = sorted(lines.values(), key=lambda line: line.split("\t", 1)[1].encode("utf-8", "surrogateescape"))
    _run(ctx, "update-index", "-z", "--index-info", env=env, stdin="\0".join(ordered) + "\0")


class Prestage:
    """``git add -A`` of some managed paths, in the background, so that hashing and storing
    thousands of new files overlaps consolidate's own work; ``first`` (waiting for kb's packs
    of their blobs, say) runs before it, in the same background thread. It stages into the real
    index, as :func:`stage_managed` does (which still runs last and decides what is
    committed; files already staged cost it one ``lstat``). Only one may run at a time,
    and nothing else may touch the index meanwhile: :meth:`wait` first."""

    def __init__(self, ctx: GitContext, root: Path, rels: tuple[str, ...], bulk: bool = True,
                 first: Callable[[], object] | None = None):
        self.specs = [ctx.spec(rel) for rel in rels if (root / rel).exists()]
        config = [item for setting in (BULK_CONFIG if bulk else ()) for item in ("-c", setting)]
        executable = getattr(ctx.git(), "GIT_PYTHON_GIT_EXECUTABLE", None) or "git"
        command = [executable, *config, "add", "-A", "--", *self.specs] if self.specs else None
        self.ok = False  # whether `git add` staged every one of ``specs``
        self.first_done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(command, ctx.top, first), name="kb-prestage", daemon=True)
        self.thread.start()

    def _run(self, command: list[str] | None, cwd: Path, first: Callable[[], object] | None) -> None:
        import subprocess

        try:
            if first is not None:
                first()
        finally:
            self.first_done.set()  # even if it failed: nobody may wait on it forever
        if command is None:
            self.ok = True
            return
        env = {**os.environ, "GIT_LITERAL_PATHSPECS": "1"}
        try:
            done = subprocess.run(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, check=False)
        except OSError:
            return  # then stage_managed does all the work, and reports git's errors
        self.ok = done.returncode == 0

    def wait_first(self) -> None:
        """Wait until ``first`` is done (``git add`` may still be running)."""
        self.first_done.wait()

    def wait(self) -> None:
        """Wait for it to finish; a failure is ignored (stage_managed reports git's errors)."""
        self.thread.join()


class BlobStore:
    """Stores the blobs a commit will need ahead of ``git add``, as one pack (see gitpack):
    only those the index does not already hold at their path. Built before the files are
    read, so git's listing of the index runs while they are."""

    def __init__(self, ctx: GitContext, rels: tuple[str, ...]):
        import subprocess

        self.ctx = ctx
        self.lock = threading.Lock()  # store() runs in threads of its own
        self.staged: dict[str, bytes] = {}
        self.threads: list[threading.Thread] = []
        try:
            fmt, objects = _run(ctx, "rev-parse", "--show-object-format", "--git-path", "objects").splitlines()
        except (GitError, ValueError):  # a git too old to say: leave everything to `git add`
            fmt, objects = "", ""
        self.usable = fmt.strip() == "sha1"  # gitpack writes SHA-1 packs only
        path = Path(objects.strip())
        self.pack_dir = (path if path.is_absolute() else ctx.top / path) / "pack"
        executable = getattr(ctx.git(), "GIT_PYTHON_GIT_EXECUTABLE", None) or "git"
        self.listing = subprocess.Popen(
            [executable, "ls-files", "-s", "-z", "--", *(ctx.spec(rel) for rel in rels)], cwd=ctx.top,
            env={**os.environ, "GIT_LITERAL_PATHSPECS": "1"}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) if self.usable else None

    def _staged(self) -> dict[str, bytes]:
        """Workspace-relative path -> the blob id the index holds there."""
        with self.lock:
            if self.listing is not None:
                out, _ = self.listing.communicate()
                self.listing = None
                strip = len(self.ctx.prefix)
                for record in out.split(b"\0"):
                    meta, _, path = record.partition(b"\t")
                    fields = meta.split()
                    if len(fields) == 3 and fields[2] == b"0":  # stage 0: no conflict
                        self.staged[path.decode("utf-8", "surrogateescape")[strip:]] = bytes.fromhex(fields[1].decode("ascii"))
            return self.staged

    def holds_none(self, rels: Iterable[str]) -> bool:
        """Whether the index holds none of ``rels`` (waits for git's listing of it): then
        every blob made of them is new, and whoever makes it may store it unfiltered."""
        if not self.usable:
            return False
        staged = self._staged()
        return not any(rel in staged for rel in rels)

    def store(self, blobs: dict[str, gitpack.PackedBlob], root: Path, unread: Iterable[str] = ()) -> int:
        """Write the blobs git does not already have at their path as one pack; returns how many.

        ``unread``: more workspace-relative files (ones the run only listed) to read and pack
        when the index has nothing at their path yet.
        """
        if not self.usable:
            return 0
        staged = self._staged()
        new = [blob for rel, blob in blobs.items() if staged.get(rel) != blob.sha]
        for rel in unread:
            if rel not in staged and rel not in blobs:
                try:
                    new.append(gitpack.blob((root / rel).read_bytes()))
                except OSError:
                    continue  # gone meanwhile: `git add` says what it finds
        gitpack.write_pack(self.pack_dir, new)
        return len(new)

    def store_in_background(self, blobs: dict[str, gitpack.PackedBlob], root: Path, unread: Iterable[str] = ()) -> None:
        """:meth:`store`, in a thread of its own (best started while the main thread waits on
        worker processes: its Python work then costs nothing); :meth:`wait` joins it."""
        thread = threading.Thread(target=self._store_quietly, args=(blobs, root, list(unread)), name="kb-pack", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _store_quietly(self, blobs: dict[str, gitpack.PackedBlob], root: Path, unread: list[str]) -> None:
        try:
            self.store(blobs, root, unread)
        except OSError:
            pass  # a head start only: `git add` stores whatever is missing

    def wait(self) -> None:
        """Wait for the packs being written, and collect the index listing if nothing did."""
        for thread in list(self.threads):
            thread.join()
        self._staged()


def commit_managed(ctx: GitContext, root: Path, message: str, message_file: Path, managed: tuple[str, ...] = MANAGED) -> str:
    """Commit the staged managed paths with ``message``; returns the new commit's sha.

    The commit is built in a temporary index: a copy of the real one (the managed paths
    just staged, with their stat data, so ``git commit`` re-reads no file), in which every
    entry outside the managed paths is put back as HEAD has it. ``git commit`` then runs on
    it (hooks and signing included), so the person's own staged work never enters it and
    stays staged in the real index. ``managed``: the workspace's managed paths (its layout's).
    """
    specs = _managed_specs(ctx, root, managed)
    if _run(ctx, "ls-files", "-u", "-z", "--", *specs).strip("\0"):
        raise GitError("there are unresolved merge conflicts in kb's paths; resolve them first (nothing was committed)")
    roots = tuple(spec.rstrip("/") for spec in specs)
    real_index = _index_path(ctx)
    index_file = Path(ctx.repo.git_dir).resolve() / f"kb-consolidate-{os.getpid()}.index"
    env = {"GIT_INDEX_FILE": str(index_file)}
    atomic_write_text(message_file, message)
    try:
        index_file.unlink(missing_ok=True)
        try:
            shutil.copyfile(real_index, index_file)
        except FileNotFoundError:
            _run(ctx, "read-tree", "--empty", env=env)
        _reset_outside(ctx, roots, env)
        _run(ctx, "commit", "-q", "-F", str(message_file), env=env)
    finally:
        message_file.unlink(missing_ok=True)
        index_file.unlink(missing_ok=True)
        Path(str(index_file) + ".lock").unlink(missing_ok=True)
    return _run(ctx, "rev-parse", "HEAD").strip()
