"""Every status and abuse case, each in a small Markdown file of its own, through one warm pool.

The module runs the validator once over all the files (one pool, torch imported once) and each
test asserts the status, reason and line of its own snippet.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from kb.snippets.validate import Options, run_validation
from kb.workspace import init_workspace

PROFILE = """
timeout_s = 2
memory_limit_mb = 512
max_processes = 32
parallel = 2
satisfies = []
"""

MARK = str(os.getpid() * 1000 + 7)  # in the command line of the process the "escape" snippet leaves behind

NET_PROFILE = PROFILE.replace("satisfies = []", 'satisfies = ["network"]')

FILES = {
    "loop": "```python\nwhile True:\n    pass\n```\n",
    "memory": "```python\nbig = bytearray(64 * 1024**3)\n```\n",
    "sigkill": "```python\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n```\n",
    "exit4": "```python\nimport sys\nsys.exit(4)\n```\n",
    # Bounded even without a process limit: only the first process forks, at most 500 times.
    "forkbomb": "```python kb:timeout=30\nimport os, time\nfor _ in range(500):\n    if os.fork() == 0:\n        time.sleep(5)\n        os._exit(0)\n```\n",
    "segfault": "```python\nimport ctypes\nctypes.string_at(0)\n```\n",
    "network": "```python\nimport socket\nsocket.create_connection((\"127.0.0.1\", {port}), timeout=1).close()\n```\n",
    "network_declared": "```python kb:requires=network\nimport socket\nsocket.create_connection((\"127.0.0.1\", {port}), timeout=1).close()\nprint('connected')\n```\n",
    "expect_error": "```python kb:expect-error\nraise ValueError('as documented')\n```\n\n```python kb:expect-error\nprint('no error')\n```\n",
    "continue": "# Notebook style\n\n```python\ncounter = 41\n```\n\nText.\n\n```python kb:continue\ncounter += 1\nassert counter == 42\nprint(counter)\n```\n\n```python\nprint(counter)\n```\n",
    "continue_after_death": "```python\nimport os\nstate = 1\nos._exit(3)\n```\n\n```python kb:continue\nprint(state)\n```\n",
    "missing_module": "```python\nimport kb_surely_not_installed_module\n```\n",
    "cuda": "```python\nimport torch\nx = torch.ones(2).cuda()\n```\n",
    "torch_ok": "```python\nimport torch\nprint(torch.ones(3).sum().item())\n```\n",
    "exception": "text\n\n```python\nraise KeyError('boom')\n```\n",
    "skip": "```python kb:skip=\"needs 8 GPUs\"\nimport torch\n```\n",
    "isolated": "```python\nimport os, tempfile\nassert os.environ['HOME'].startswith(os.getcwd())\nopen('here.txt', 'w').write('x')\nprint(os.getcwd(), tempfile.gettempdir())\n```\n",
    "escape": "```python\nimport subprocess\np = subprocess.Popen(['sleep', '120.{mark}'], start_new_session=True)\nprint(p.pid)\n```\n",
    "shell": "```bash kb:run\necho from bash\nexit 3\n```\n\n```console\n$ ls\n```\n",
}


@pytest.fixture(scope="module")
def server():
    """A TCP listener on the host's loopback: reachable only from outside the sandbox's namespace."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(2)
    sock.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory, server):
    root = tmp_path_factory.mktemp("ws") / "ws"
    workspace, _ = init_workspace(root)
    (root / "validators" / "test.toml").write_text(PROFILE)
    for name, text in FILES.items():
        path = root / "knowledge" / "abuse" / f"{name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{port}", str(server)).replace("{mark}", MARK))
    outcome = run_validation(workspace, Options(profile="test"))
    rows = {(r["file"].split("/")[-1][:-3], r["line"]): r for r in outcome.rows}
    return workspace, outcome, rows


def row(run, name: str, line: int = 1) -> dict:
    return run[2][(name, line)]


def test_infinite_loop_times_out(run):
    r = row(run, "loop")
    assert (r["status"], r["reason"], r["line"]) == ("timeout", "timed out after 2 s", 1)
    assert 1.9 < r["seconds"] < 10


def test_64_gib_allocation_hits_the_memory_limit(run):
    r = row(run, "memory")
    assert r["status"] == "error" and r["reason"].startswith("memory limit exceeded (MemoryError")


def test_sigkill_of_itself(run):
    r = row(run, "sigkill")
    assert (r["status"], r["reason"]) == ("error", "killed by SIGKILL")


def test_sys_exit_4(run):
    r = row(run, "exit4")
    assert (r["status"], r["reason"]) == ("fail", "exited with status 4")


def test_fork_bomb_is_bounded(run):
    r = row(run, "forkbomb")
    if run[1].document["isolation"].get("max_processes") is None:
        pytest.skip("no process limit can be enforced here: " + run[1].document["isolation"].get("processes", ""))
    assert r["status"] == "error" and r["reason"].startswith("process limit reached (32 processes and threads)")


def test_segfault(run):
    r = row(run, "segfault")
    assert (r["status"], r["reason"]) == ("error", "killed by SIGSEGV (segmentation fault)")
    assert "Fatal Python error" in r["stderr_tail"]


def test_network_is_off_unless_declared(run):
    isolation = run[1].document["isolation"]
    if isolation["network"] != "namespace":
        pytest.skip(f"no network namespace here ({isolation.get('network_mode')}): loopback is shared")
    r = row(run, "network")
    assert r["status"] == "skip" and r["reason"].startswith("requires network (none in the sandbox; mark it kb:requires=network)")
    declared = row(run, "network_declared")
    assert (declared["status"], declared["reason"]) == ("skip", "requires network (the test profile allows none)")


def test_network_declared_runs_where_the_profile_allows(tmp_path, server):
    workspace, _ = init_workspace(tmp_path / "ws")
    (tmp_path / "ws" / "validators" / "net.toml").write_text(NET_PROFILE)
    (tmp_path / "ws" / "knowledge" / "n.md").write_text(FILES["network_declared"].replace("{port}", str(server)))
    outcome = run_validation(workspace, Options(profile="net"))
    (r,) = outcome.rows
    assert (r["status"], r["line"], r["stdout_tail"]) == ("pass", 1, "connected\n")


def test_expect_error(run):
    ok, wrong = row(run, "expect_error", 1), row(run, "expect_error", 5)
    assert (ok["status"], ok["reason"]) == ("pass", "raised ValueError as expected")
    assert (wrong["status"], wrong["reason"]) == ("fail", "expected an error (kb:expect-error), but it ran without one")


def test_continue_shares_state_and_others_do_not(run):
    second, third = row(run, "continue", 9), row(run, "continue", 15)
    assert (second["status"], second["stdout_tail"], second["continues"]) == ("pass", "42\n", 3)
    assert third["status"] == "fragment" and third["reason"] == "uses counter defined elsewhere"


def test_continue_after_the_process_died(run):
    first, second = row(run, "continue_after_death", 1), row(run, "continue_after_death", 7)
    assert (first["status"], first["reason"]) == ("fail", "exited with status 3")
    assert second["status"] == "fail" and second["reason"].startswith("not run: it continues L1")


def test_missing_module_is_skipped(run):
    r = row(run, "missing_module")
    assert (r["status"], r["reason"]) == ("skip", "requires module kb_surely_not_installed_module (not installed)")


def test_cuda_snippet_skipped_on_a_cpu_machine(run):
    if run[1].document["environment"]["gpu_count"]:
        pytest.skip("this machine has a GPU")
    r = row(run, "cuda")
    assert (r["status"], r["reason"], r["line"]) == ("skip", "requires cuda", 1)
    assert r["inferred"] == ["uses CUDA (.cuda())"]


def test_torch_snippet_passes_in_the_warm_pool(run):
    r = row(run, "torch_ok")
    assert (r["status"], r["stdout_tail"]) == ("pass", "3.0\n")
    assert run[1].document["isolation"]["preimported"] == ["torch"]


def test_plain_exception_fails_with_markdown_line_in_traceback(run):
    r = row(run, "exception", 3)
    assert (r["status"], r["reason"]) == ("fail", "KeyError: 'boom'")
    assert 'knowledge/abuse/exception.md", line 4' in r["stderr_tail"]


def test_author_skip(run):
    r = row(run, "skip")
    assert (r["status"], r["reason"]) == ("skip", "needs 8 GPUs")


def test_own_cwd_and_home(run, tmp_path):
    r = row(run, "isolated")
    assert r["status"] == "pass", r["stderr_tail"]
    cwd, tmp = r["stdout_tail"].split()
    assert tmp.startswith(cwd) and not (run[0].root / "here.txt").exists()


def test_shell_runs_only_when_marked(run):
    r, console = row(run, "shell", 1), row(run, "shell", 6)
    assert (r["status"], r["reason"], r["stdout_tail"]) == ("fail", "exited with status 3", "from bash\n")
    assert (console["status"], console["reason"]) == ("not-executable", "console transcript")


def test_results_json_and_snippet_files(run):
    workspace, outcome, _ = run
    doc = json.loads((workspace.root / "snippets" / "results.json").read_text())
    assert {"version", "generated", "environment", "isolation", "snippets"} <= set(doc)
    assert {"python", "torch", "cuda", "gpu", "profile", "fingerprint"} <= set(doc["environment"])
    assert doc["isolation"]["network"] in ("namespace", "none") and doc["isolation"]["memory_limit_mb"] == 512
    entry = next(e for e in doc["snippets"] if e["id"] == "abuse/continue.md#L9")
    assert entry["file"] == "knowledge/abuse/continue.md" and entry["index"] == 1
    assert entry["snippet_file"] == "snippets/abuse/continue/01-L9.py"
    text = (workspace.root / entry["snippet_file"]).read_text()
    assert text.endswith("counter += 1\nassert counter == 42\nprint(counter)\n")
    assert entry["environment"] == doc["environment"]["fingerprint"]
    statuses = {e["status"] for e in doc["snippets"]}
    assert statuses == {"pass", "fail", "skip", "timeout", "error", "not-executable", "fragment"}
    assert outcome.failed


def test_warm_rerun_uses_the_cache_and_all_forces(run):
    workspace, first, _ = run
    again = run_validation(workspace, Options(profile="test", paths=[Path("knowledge/abuse/torch_ok.md"), Path("knowledge/abuse/exit4.md")]))
    assert again.ran == 0 and again.cached == 2
    forced = run_validation(workspace, Options(profile="test", force=True, paths=[Path("knowledge/abuse/exit4.md")]))
    assert forced.ran == 1 and forced.rows[0]["status"] == "fail" and not forced.rows[0]["cached"]
    # Results of files this run did not look at are kept.
    doc = json.loads((workspace.root / "snippets" / "results.json").read_text())
    assert len(doc["snippets"]) == len(first.document["snippets"])


def _sleepers() -> list[str]:
    """Processes on this machine running the escape snippet's `sleep 120.MARK` (its printed pid is
    one of its own PID namespace, which means nothing here)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"120.{MARK}".encode() in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            pass
    return found


def test_processes_that_escape_the_process_group_are_killed(run):
    r = row(run, "escape")
    assert r["status"] == "pass", r["stderr_tail"]
    assert int(r["stdout_tail"]) > 0
    deadline = time.monotonic() + 5
    while _sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sleepers() == [], "a setsid'd child of the snippet outlived it"


def _load_worker():
    import importlib.util

    from kb.snippets.sandbox import pool

    spec = importlib.util.spec_from_file_location("kb_sandbox_worker_under_test", pool.WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_private_anonymous_memory_is_collapsed_to_huge_pages():
    worker = _load_worker()
    mib = 1 << 20
    maps = [
        "7f0000100000-7f0000900000 rw-p 00000000 00:00 0 \n",  # anonymous, 8 MiB from 1 MiB: 6 MiB aligned
        "55d000000000-55d000600000 rw-p 00000000 00:00 0                          [heap]\n",
        "7f1000000000-7f1000800000 rw-p 00001000 fd:01 1234                       /usr/lib/libtorch_cpu.so\n",
        "7f2000000000-7f2000800000 r-xp 00000000 fd:01 1234                       /usr/lib/libtorch_cpu.so\n",
        "7ffc00000000-7ffc00800000 rw-p 00000000 00:00 0                          [stack]\n",
        "7f3000000000-7f3000100000 rw-p 00000000 00:00 0 \n",  # 1 MiB: no whole huge page in it
        "garbage\n",
    ]
    ranges = worker.collapsible_ranges(maps)
    assert ranges == [(0x7F0000200000, 0x7F0000800000), (0x55D000000000, 0x55D000600000)]
    assert all(start % (2 * mib) == 0 and end % (2 * mib) == 0 for start, end in ranges)


def _kernel_collapses_huge_pages() -> bool:
    """Whether MADV_COLLAPSE works here (Linux 6.1+), tried on memory of this process."""
    import ctypes
    import mmap

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    except (OSError, AttributeError):
        return False
    region = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        region.write(b"x" * len(region))
        base = ctypes.addressof(ctypes.c_char.from_buffer(region))
        start = -(-base // (2 << 20)) * (2 << 20)
        return libc.madvise(start, 2 << 20, 25) == 0
    finally:
        region.close()


def test_a_small_run_does_not_pay_for_huge_pages(run):
    assert run[1].document["isolation"]["worker_huge_pages_mb"] == 0  # fewer tasks than HUGE_PAGES_MIN_TASKS


def test_a_big_run_backs_the_warm_worker_heap_with_huge_pages_where_the_kernel_can(tmp_path):
    from kb.snippets.validate import HUGE_PAGES_MIN_TASKS

    workspace, _ = init_workspace(tmp_path / "ws")
    (workspace.root / "validators" / "test.toml").write_text(PROFILE)
    count = HUGE_PAGES_MIN_TASKS + 4
    (workspace.knowledge_dir / "many.md").write_text("".join(f"```python\nprint({n})\n```\n\n" for n in range(count)))
    outcome = run_validation(workspace, Options(profile="test"))
    assert [r["status"] for r in outcome.rows] == ["pass"] * count
    huge = outcome.document["isolation"]["worker_huge_pages_mb"]
    if _kernel_collapses_huge_pages():
        assert huge >= 32  # the worker imported torch: well over 100 MiB of heap here
    else:
        assert huge == 0
