"""The sandbox's guarantees beyond single escapes (issue 24): a worker killed from outside, the
--require-isolation refusal, what a profile may let in, and secret redaction."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from kb.config import Config, LLMProviderConfig
from kb.snippets import validate
from kb.snippets.redact import known_secrets, redact_tree
from kb.snippets.sandbox.pool import IsolationError
from kb.snippets.validate import Options, run_validation
from kb.workspace import init_workspace
from test_snippets_hostile import kernel_allows_namespaces

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

PROFILE = "timeout_s = 20\nmemory_limit_mb = 1024\nmax_processes = 64\nparallel = 2\n"


def _workspace(tmp_path: Path, files: dict[str, str], profile: str = PROFILE):
    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "validators" / "t.toml").write_text(profile)
    for name, text in files.items():
        (workspace.knowledge_dir / f"{name}.md").write_text(text)
    return workspace


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _our_workers() -> list[int]:
    """The sandbox workers this test process started (the outer process of each)."""
    me = str(os.getpid())
    found = []
    for pid in _processes_with("worker.py"):
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] == me:
                found.append(pid)
        except (OSError, IndexError):
            pass
    return found


def test_a_worker_killed_from_outside_blames_only_the_snippet_it_died_under_twice(tmp_path):
    mark = "kbdeath" + uuid.uuid4().hex[:8]
    hostile = (
        "```python\nimport subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'while True: pass  # {mark}'], start_new_session=True)\n"
        "time.sleep(60)\n```\n"
    )
    files = {"a_hostile": hostile, **{f"b_innocent{i}": f"```python\nimport time\ntime.sleep(0.5)\nprint({i})\n```\n" for i in range(3)}}
    workspace = _workspace(tmp_path, files)
    kills: list[list[int]] = []  # the workers killed, each time
    stop = threading.Event()

    # Workers an earlier test of this process left running (a warm pool not yet collected) are not this run's.
    before = set(_our_workers())

    def killer() -> None:
        # Kill the run's worker each time a new orphan of the hostile snippet shows up (at most twice). An orphan
        # seen before is not new: the first run's may still be dying while the retry starts its own.
        seen: set[int] = set()
        while not stop.is_set() and len(kills) < 2:
            fresh = set(_processes_with(mark)) - seen
            workers = [pid for pid in _our_workers() if pid not in before]
            if fresh and workers:
                seen |= fresh
                for pid in workers:
                    os.kill(pid, signal.SIGKILL)
                kills.append(workers)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        outcome = run_validation(workspace, Options(profile="t"))
    finally:
        stop.set()
        thread.join(5)
    rows = {r["file"].split("/")[-1][:-3]: r for r in outcome.rows}
    assert len(kills) == 2
    assert rows["a_hostile"]["status"] == "error" and "worker died while it ran" in rows["a_hostile"]["reason"]
    for i in range(3):
        assert (rows[f"b_innocent{i}"]["status"], rows[f"b_innocent{i}"]["stdout_tail"]) == ("pass", f"{i}\n")
    assert _processes_with(mark) == []  # the orphans died with their worker's namespaces
    assert (workspace.root / "snippets" / "results.json").is_file()


def _unconfined(monkeypatch) -> None:
    """Stand in for a kernel that allows no namespaces: the worker is told not to confine itself."""
    real = validate.worker_config

    def config(*args, **kwargs):
        made = real(*args, **kwargs)
        made.confine = False
        return made

    monkeypatch.setattr(validate, "worker_config", config)


def test_require_isolation_refuses_to_run_where_isolation_is_incomplete(tmp_path, monkeypatch):
    _unconfined(monkeypatch)
    marker = tmp_path / "ran"
    workspace = _workspace(tmp_path, {"a": f"```python\nopen({str(marker)!r}, 'w').write('x')\n```\n"})
    with pytest.raises(IsolationError, match="missing: filesystem, processes"):
        run_validation(workspace, Options(profile="t", require_isolation=True))
    assert not marker.exists()
    # Without the flag it runs, and results.json says what was missing.
    outcome = run_validation(workspace, Options(profile="t"))
    iso = outcome.document["isolation"]
    assert iso["complete"] is False and iso["missing"][:2] == ["filesystem", "processes"]
    assert iso["filesystem"].startswith("none:")


def test_require_isolation_runs_where_isolation_is_complete(tmp_path):
    if not kernel_allows_namespaces():
        pytest.skip("this kernel or container allows no namespaces here")
    workspace = _workspace(tmp_path, {"a": "```python\nprint('ok')\n```\n"})
    outcome = run_validation(workspace, Options(profile="t", require_isolation=True))
    assert outcome.document["isolation"]["complete"] is True
    assert [r["status"] for r in outcome.rows] == ["pass"]


def read_grant(granted: Path) -> str:
    """The start of a snippet that reads the granted data.csv and tries to write beside it."""
    return (
        "```python\nimport os\n"
        f"print(open({str(granted / 'data.csv')!r}).read().splitlines()[1])\n"
        "try:\n"
        f"    open({str(granted / 'new.txt')!r}, 'w')\n"
        "    print('WROTE')\n"
        "except OSError as exc:\n"
        "    print('not writable', exc.errno in (13, 30))\n"
    )


@pytest.fixture
def outside_tmp():
    """A folder outside /tmp (each snippet's /tmp is its own, so a grant there could not show)."""
    base = Path.home() / ".cache" / f"kb-test-grant-{uuid.uuid4().hex[:8]}"
    base.mkdir(parents=True)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_a_profile_grants_a_read_only_path_and_named_variables_only(tmp_path, monkeypatch, outside_tmp):
    granted = outside_tmp / "dataset"
    granted.mkdir()
    (granted / "data.csv").write_text("a,b\n1,2\n")
    other = outside_tmp / "private"
    other.mkdir()
    (other / "notes.txt").write_text("not for snippets\n")
    monkeypatch.setenv("KB_TEST_DATASET_ROOT", str(granted))
    monkeypatch.setenv("KB_TEST_ACCESS_TOKEN", "tok-" + uuid.uuid4().hex)
    monkeypatch.setenv("KB_UNNAMED", "nope")
    code = (
        read_grant(granted) +
        f"print('private visible', os.path.exists({str(other)!r}))\n"
        "print(sorted(k for k in os.environ if k.startswith('KB_')))\n```\n"
    )
    profile = PROFILE + f'readable = ["{granted}"]\npass_env = ["KB_TEST_*"]\n'
    workspace = _workspace(tmp_path, {"a": code}, profile)
    (row,) = run_validation(workspace, Options(profile="t")).rows
    assert row["status"] == "pass", row["stderr_tail"]
    assert not (granted / "new.txt").exists()
    assert row["stdout_tail"] == "1,2\nnot writable True\nprivate visible False\n['KB_TEST_DATASET_ROOT']\n"


def test_known_secrets_are_the_configured_keys_and_secret_named_variables():
    config = Config(llm={"acme": LLMProviderConfig(base_url="http://x", api_key_env="ACME_LLM")})
    environ = {"ACME_LLM": "acme-1234567890", "GITHUB_TOKEN": "ghp_abcdefghij", "PATH": "/usr/bin:/bin", "SHORT_KEY": "abc"}
    secrets = known_secrets(config, environ)
    assert set(secrets) == {"acme-1234567890", "ghp_abcdefghij"}
    doc = {"snippets": [{"stdout_tail": "acme-1234567890 and ghp_abcdefghij", "seconds": 1.0}], "n": [3, "ghp_abcdefghij"]}
    assert redact_tree(doc, secrets) == {"snippets": [{"stdout_tail": "[redacted] and [redacted]", "seconds": 1.0}], "n": [3, "[redacted]"]}


def test_a_grant_under_dev_shm_is_refused_with_the_reason(tmp_path):
    from kb.errors import ConfigError
    from kb.snippets.profiles import load_profile

    (tmp_path / "t.toml").write_text('readable = ["/dev/shm/data"]\n')
    with pytest.raises(ConfigError, match="own empty /dev/shm"):
        load_profile(tmp_path, "t")


def test_what_the_sandbox_shows_under_tmp_stays_readable_over_each_snippets_private_tmp(tmp_path):
    """A virtual environment or a granted folder under /tmp (a CI checkout, a venv in /tmp) is bound
    back over the snippet's fresh /tmp, read-only: before, the tmpfs hid it and a lazy import failed."""
    granted = tmp_path / "grant"
    granted.mkdir()
    (granted / "data.csv").write_text("a,b\n1,2\n")
    code = (
        read_grant(granted) +
        "open('/tmp/mine.txt', 'w').write('scratch')\n"
        "print(sorted(os.listdir(os.getcwd())) == [] or 'cwd ok')\n```\n"
    )
    workspace = _workspace(tmp_path, {"a": code}, PROFILE + f'readable = ["{granted}"]\n')
    (row,) = run_validation(workspace, Options(profile="t")).rows
    assert row["status"] == "pass", row["stderr_tail"]
    assert row["stdout_tail"].startswith("1,2\nnot writable True\n")
    assert not (granted / "new.txt").exists() and not Path("/tmp/mine.txt").exists()
