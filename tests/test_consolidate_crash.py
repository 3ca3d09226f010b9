"""What a killed or crashed `kb consolidate` leaves, and how the next run deals with it
(issue 25, items 5-7): kb's own leftovers are cleaned, git's stale lock is named with its fix,
the next commit counts each drop once, and stdout and the commit message agree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import run_kb
from kb.consolidate import consolidate
from kb.errors import KbError
from kb.records import read_drop
from test_consolidate_support import add_part, commits, make_workspace, run_git


def _message(root) -> str:
    return run_git(root, "log", "-1", "--format=%B")


# -- item 7: one set of numbers ------------------------------------------------------


def test_a_crash_between_saving_the_pending_state_and_stamping_counts_each_drop_once(tmp_path, monkeypatch):
    import kb.consolidate.engine as engine

    ws = make_workspace(tmp_path)
    for i in range(3):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt  # the run dies after it saved what is pending, before any drop is stamped

    monkeypatch.setattr(engine, "_stamp_drops", killed)
    with pytest.raises(KeyboardInterrupt):
        consolidate(ws)
    monkeypatch.undo()
    assert all(read_drop(p).consolidated is None for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
    result = consolidate(ws)
    assert len(result.drops) == 3 and result.commit is not None
    message = _message(ws.root)
    assert message.startswith("kb consolidate: 3 drops, 3 files added, 0 changed\n"), message
    assert "- plans/p.md: BATCH 1, PARTs 1-3 (3 drops)" in message and "Drops consolidated: 3" in message


def test_stdout_and_the_commit_message_count_files_the_same_way(tmp_path):
    ws = make_workspace(tmp_path)
    for i in range(2):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    run_git(ws.root, "add", "knowledge")  # a person committed the knowledge files before consolidating
    run_git(ws.root, "commit", "-q", "-m", "knowledge by hand")
    result = run_kb("consolidate", cwd=ws.root)
    assert result.code == 0, result.err
    assert "Consolidated 2 drops: 2 files added, 0 changed." in result.out
    message = _message(ws.root)
    assert message.startswith("kb consolidate: 2 drops, 2 files added, 0 changed\n"), message
    assert "Knowledge files added (2):\n- knowledge/perf/00-x.md\n- knowledge/perf/01-x.md" in message
    assert "kb consolidate: 2 drops, 2 files added, 0 changed" in result.out  # the summary stdout shows


# -- item 6: leftovers of a kill during the commit -----------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_kbs_own_temporary_index_left_by_a_killed_run_is_removed(tmp_path):
    ws = make_workspace(tmp_path)
    git_dir = ws.root / ".git"
    dead = git_dir / f"kb-consolidate-{_dead_pid()}.index"
    dead.write_bytes(b"DIRC leftover")
    (git_dir / f"{dead.name}.lock").write_bytes(b"")
    alive = git_dir / f"kb-consolidate-{os.getppid()}.index"  # another kb, still running: not ours to touch
    alive.write_bytes(b"DIRC busy")
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    assert consolidate(ws).commit is not None
    assert not dead.exists() and not (git_dir / f"{dead.name}.lock").exists()
    assert alive.exists()


def test_a_stale_index_lock_is_named_with_its_fix_before_anything_is_written(tmp_path):
    ws = make_workspace(tmp_path)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    lock = ws.root / ".git" / "index.lock"
    lock.write_bytes(b"")
    index_before = ws.index_path.read_bytes()
    with pytest.raises(KbError) as caught:
        consolidate(ws)
    message = str(caught.value)
    assert "index.lock" in message and "remove" in message and str(lock) in message
    drop = next(ws.drops_dir.glob("KNOWLEDGE-DROP-*"))
    assert read_drop(drop).consolidated is None and ws.index_path.read_bytes() == index_before  # nothing was written
    cli = run_kb("consolidate", cwd=ws.root)
    assert cli.code == 2 and len(cli.err.strip().splitlines()) == 1 and "index.lock" in cli.err
    lock.unlink()
    assert consolidate(ws).commit is not None and len(commits(ws.root)) == 1


# -- item 5: processes die with the kb process that started them ---------------------


def _children() -> dict[int, int]:
    """pid -> parent pid, for every process (Linux /proc)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            out[int(entry)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    return out


def _descendants(pid: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :].split()[0] != b"Z"  # a zombie has exited


def _kill_and_watch(script: str, args: list[str], ready: str, env: dict | None = None) -> tuple[set[int], set[int]]:
    """Start ``script``, wait for it to print ``ready``, SIGKILL it: (its descendants before, those still running 10 s later)."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        line = proc.stdout.readline()
        assert line.strip() == ready, line
        time.sleep(0.5)
        before = _descendants(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    left = {pid for pid in before if _running(pid)}
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = {pid for pid in left if _running(pid)}
    for pid in left:  # the test's own clean-up: never leave them behind
        os.kill(pid, signal.SIGKILL)
    return before, left


CONSOLIDATE_HELD = """
    import os, sys, threading, time
    from pathlib import Path
    from kb.consolidate import consolidate, engine, scan
    from kb.workspace import open_workspace

    scan.PARALLEL_MIN = 2
    os.cpu_count = lambda: 2
    if sys.argv[2] == "forkserver":  # another thread running (the CLI's spinner): workers come from a fork server
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()

    def hold(*_args, **_kwargs):
        print("ready", flush=True)
        time.sleep(600)

    engine._stamp_drops = hold
    consolidate(open_workspace(Path(sys.argv[1])), commit=False)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_a_killed_consolidate_leaves_no_worker_process_behind(tmp_path, start):
    ws = make_workspace(tmp_path, git=False)
    for i in range(4):
        add_part(ws, f"perf/{i:02d}-x.md", f"X{i}", i, plan="plans/p.md", part=i + 1)
    before, left = _kill_and_watch(CONSOLIDATE_HELD, [str(ws.root), start], "ready")
    assert len(before) >= 2  # the workers (and the fork server, the resource tracker) were there
    assert left == set()


EXTRACTOR_HELD = """
    import sys
    from pathlib import Path
    from kb.corpus.docstrings import extract_in_subprocess

    print("ready", flush=True)
    extract_in_subprocess("kb_slow_package", Path(sys.argv[1]), 600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_run_leaves_no_docstring_extractor_behind(tmp_path):
    package = tmp_path / "lib" / "kb_slow_package"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import time\ntime.sleep(600)\n")  # an import that takes forever
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "lib"), os.environ.get("PYTHONPATH")]))}
    before, left = _kill_and_watch(EXTRACTOR_HELD, [str(tmp_path / "out.jsonl")], "ready", env=env)
    assert len(before) == 1  # the extractor
    assert left == set()
