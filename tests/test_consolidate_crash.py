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
