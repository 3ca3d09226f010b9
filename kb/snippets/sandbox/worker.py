"""The warm worker ("zygote"): imports the heavy modules once, then forks a fresh child per task.

Standard library only: it runs under the validator profile's interpreter, which need not have kb.
Protocol: one JSON object per line. In: {"op": "run", "task": {...}} or {"op": "quit"}.
Out: {"op": "ready", ...} once, then {"op": "result", "task": id, "snippets": [facts...]} per task.
The worker never runs a torch operation and never touches CUDA: thread pools and CUDA contexts do
not survive a fork, so all of that happens in the children.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import importlib
import importlib.util
import json
import os
import selectors
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == HERE:
    sys.path.pop(0)  # snippets must not import our modules by accident



def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


confine = _load("_kb_sandbox_confine", "confine.py")
child = _load("_kb_sandbox_child", "child.py")
child.confine = confine

PR_SET_CHILD_SUBREAPER = 36
# Imported up front so a child does not pay for them.
_RUNTIME_MODULES = ("ast", "linecache", "traceback", "faulthandler", "types", "atexit", "fcntl", "builtins", "tempfile")


STATUS_LINE_MAX = 1 << 20
SLOT_INIT_SECONDS = "2147483647"
MADV_COLLAPSE = 25  # Linux 6.1+
HUGE_PAGE = 2 << 20


def collapsible_ranges(maps_lines: list[str]) -> list[tuple[int, int]]:
    """The 2 MiB-aligned parts of the private anonymous regions (and the heap) listed in
    /proc/<pid>/maps lines: file mappings are shared with the page cache, not copied by a fork."""
    out = []
    for line in maps_lines:
        fields = line.split()
        if len(fields) < 5 or fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
            continue
        low, high = (int(x, 16) for x in fields[0].split("-"))
        start, end = -(-low // HUGE_PAGE) * HUGE_PAGE, high // HUGE_PAGE * HUGE_PAGE
        if end - start >= HUGE_PAGE:
            out.append((start, end))
    return out


def collapse_to_huge_pages() -> int:
    """Back the worker's private anonymous memory (Python's and torch's heaps) with 2 MiB pages
    where the kernel can, and return how many MiB it did. A fork then copies one page-table
    entry per 2 MiB instead of 512: half of kb's cost per snippet on this project's machines
    (bench/bench_snippets.py). Children still copy on write in 4 KiB pages. Best effort."""
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            ranges = collapsible_ranges(maps.readlines())
    except (OSError, AttributeError):
        return 0  # not Linux
    done = sum(end - start for start, end in ranges if madvise(start, end - start, MADV_COLLAPSE) == 0)
    return done >> 20


class Running:
    """One task whose child is alive (or not yet reaped)."""

    def __init__(self, task: dict, pid: int, slot: int, cwd: str | None, status_fd: int, out: int, err: int) -> None:
        self.task, self.pid, self.slot, self.cwd = task, pid, slot, cwd
        self.status_fd, self.out, self.err = status_fd, out, err  # out, err: the worker's fds of the child's memfds
        self.buffer = b""
        self.started: dict[int, dict] = {}
        self.ended: dict[int, dict] = {}
        self.setup_error: str | None = None
        self.forked = time.monotonic()
        self.deadline = self.forked + self.timeout(0) + 30.0
        self.timed_out: int | None = None
        self.exit_status: int | None = None
        self.rusage = None
        self.sent = False

    def timeout(self, index: int) -> float:
        return float(self.task["snippets"][index]["timeout"])

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > STATUS_LINE_MAX:
            self.buffer = b""  # a snippet writing to our pipe must not grow the worker without end
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            event, index = message.get("event"), message.get("index", 0)
            if event == "start":
                message["mono"] = time.monotonic()
                self.started[index] = message
                self.deadline = message["mono"] + self.timeout(index)
            elif event == "end":
                self.ended[index] = message
                self.deadline = time.monotonic() + 30.0  # until the next start (or the exit)
            elif event == "setup-error":
                self.setup_error = message.get("message")


class Worker:
    def __init__(self, config: dict, confined: dict | None = None) -> None:
        self.config = config
        # What confine_worker achieved: with both, this process is PID 1 of its own PID namespace
        # in a new root, and each slot's snippets run in a PID namespace of the slot's own.
        self.confined = confined or {}
        self.jailed = bool(self.confined.get("filesystem") and self.confined.get("pids"))
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY) if self.jailed else None
        self.inits: dict[int, tuple[int, int]] = {}  # slot -> (pid of its init, fd of its PID namespace)
        self.slots = int(config.get("slots", 1))
        self.free_slots = list(range(self.slots))
        self.running: dict[int, Running] = {}
        self.by_fd: dict[int, Running] = {}
        # Made for the first task and removed whenever no task runs: a worker killed while
        # idle (Ray kills its workers' children with SIGKILL) leaves nothing in /tmp.
        self.tmp_root: str | None = None
        self.sel = selectors.DefaultSelector()
        self.root = os.geteuid() == 0
        self.iso: dict = {}
        self.preimported: list[str] = []
        self.preimport_errors: dict[str, str] = {}
        self.netns: dict[int, int | None] = {}

    # ---- start-up -------------------------------------------------------------------
    def preimport(self) -> None:
        for name in _RUNTIME_MODULES:
            importlib.import_module(name)
        for name in self.config.get("preimport", []):
            try:
                importlib.import_module(name)
                self.preimported.append(name)
            except Exception as exc:  # noqa: BLE001 - reported, snippets importing it will say why
                self.preimport_errors[name] = f"{type(exc).__name__}: {exc}"

    def _user_tasks(self) -> int:
        """Processes and threads of our uid now (RLIMIT_NPROC counts them all when we are not root)."""
        uid, count = os.getuid(), 0
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        count += len(os.listdir(f"/proc/{entry.name}/task"))
                except OSError:
                    pass
        return count

    def detect_isolation(self) -> None:
        """Fork a trial child that tries each isolation step; keep what worked."""
        net_mode = "namespace" if (self.root or self.jailed) else "userns"
        ctx = {"net_mode": net_mode, "uid": self.config.get("sandbox_uid", 61000) if self.root else None}
        found = self._trial(ctx)
        if ctx["uid"] is not None and not (found.get("uid") and found.get("imports")):
            ctx["uid"] = None
            found = self._trial(ctx)
        limit = int(self.config.get("max_processes", 128))
        network = "namespace" if found.get("network") else "none"
        if ctx["uid"] is not None:
            processes, nproc = f"RLIMIT_NPROC {limit} as a per-slot uid ({ctx['uid']}+slot)", limit
        elif not self.root:
            base = self._user_tasks() + 2  # + the two processes that set up the namespaces (not in our /proc)
            where = "in the sandbox's user namespace" if self.jailed else "this user already runs"
            processes, nproc = f"RLIMIT_NPROC {limit} above the {base} tasks {where}", base + limit
        else:
            processes, nproc = "none (root ignores RLIMIT_NPROC and no sandbox uid could be used)", None
        memory = int(self.config.get("memory_limit_mb", 0))
        scratch = bool(found.get("scratch"))
        dropped = bool(found.get("dropped"))
        jailed = self.jailed and scratch and dropped and found.get("imports")
        if jailed:
            readable = ", ".join(self.config.get("readable") or []) or "none"
            filesystem = (
                "mount namespace: the system read-only, the interpreter's folders read-only, granted paths "
                f"read-only ({readable}); a fresh tmpfs of {int(self.config.get('scratch_mb', 1024))} MB as cwd, "
                "HOME, TMPDIR, /tmp, /var/tmp and /dev/shm; no home, workspace or /run"
            )
            seen = "pid namespace per slot: a snippet sees and signals only its own processes"
        else:
            why = self.confined.get("error") or found.get("error") or "the trial child could not use it"
            filesystem = f"none: own temporary cwd, HOME and TMPDIR only ({why})"
            seen = "all of the host's processes"
        if ctx["uid"] is not None:
            privileges = f"uid {ctx['uid']}+slot, no capabilities, no_new_privs" if jailed else \
                "uid {}+slot keeping CAP_DAC_READ_SEARCH (reads what root reads)".format(ctx["uid"])
        else:
            privileges = ("no capabilities, no_new_privs" if jailed else "no_new_privs") + ("" if not self.root else "; still uid 0")
        missing = []
        if not jailed:
            missing += ["filesystem", "processes"]
        if network != "namespace":
            missing.append("network")
        if self.root and ctx["uid"] is None:
            missing.append("uid")
        self.iso = {
            "complete": not missing,
            "missing": missing,
            "network": network,
            "network_mode": net_mode if network == "namespace" else "audit-hook guard (Python sockets only)",
            "memory_limit_mb": memory or None,
            "memory": f"RLIMIT_AS: {memory} MB above the warm worker (not for CUDA snippets)" if memory else "none",
            "processes": processes,
            "max_processes": limit if nproc else None,
            "filesystem": filesystem,
            "processes_seen": seen,
            "privileges": privileges,
            "environment": "allow-listed: " + ", ".join(sorted(os.environ)),
            "scoped": "Landlock: no signal to, nor abstract unix socket of, a process outside the snippet's own"
                if found.get("scoped") else "none (Landlock ABI 6 needs Linux 6.12)",
            "timeout_kill": "SIGKILL to the slot's PID namespace (every process of it)" if jailed else
                "SIGKILL to the process group" + (" and every process of the slot's uid" if ctx["uid"] is not None else ""),
            "_net_mode": net_mode if network == "namespace" else "none",
            "_uid": ctx["uid"],
            "_nproc": nproc,
            "_jailed": bool(jailed),
        }
        if self.confined.get("readable_missing"):
            self.iso["readable_missing"] = self.confined["readable_missing"]

    def _fork(self, slot: int | None = None) -> int:
        """fork(), the child landing in ``slot``'s PID namespace (None: the worker's own)."""
        if self.own_pidns is not None:
            fd = self.slot_pidns(slot) if slot is not None else self.own_pidns
            confine.setns(fd, confine.CLONE_NEWPID)
        return os.fork()

    def slot_pidns(self, slot: int) -> int:
        """The PID namespace of a slot, made when first needed: its init is a `sleep` (signals from
        inside the namespace cannot kill it), so the snippet is not PID 1 and signals work as usual."""
        if slot in self.inits:
            return self.inits[slot][1]
        confine.setns(self.own_pidns, confine.CLONE_NEWPID)
        confine.unshare(confine.CLONE_NEWPID)
        try:
            sleep = shutil.which("sleep", path="/usr/bin:/bin")
            argv = [sleep, SLOT_INIT_SECONDS] if sleep else [sys.executable, "-S", "-c", "import signal\nwhile 1: signal.pause()"]
            pid = os.posix_spawn(argv[0], argv, {}, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0, 2),
            ])
            fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY)
        finally:
            confine.setns(self.own_pidns, confine.CLONE_NEWPID)
        self.inits[slot] = (pid, fd)
        return fd

    def end_slot_pidns(self, slot: int) -> None:
        """SIGKILL the slot's init: the kernel then kills every process left in its namespace."""
        entry = self.inits.pop(slot, None)
        if entry is None:
            return
        pid, fd = entry
        os.close(fd)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def make_netns(self, slot: int) -> int | None:
        """A network namespace for one slot, made once and kept open by fd: joining it (setns) is
        far cheaper than making one per snippet. One per slot, so parallel snippets' ports never clash."""
        if slot in self.netns:
            return self.netns[slot]
        if self.iso.get("_net_mode") != "namespace":
            return None
        rfd, wfd = os.pipe()
        pid = self._fork()
        if pid == 0:
            os.close(rfd)
            ok = child.isolate_network("namespace")
            os.write(wfd, b"1" if ok else b"0")
            signal.pause()
            os._exit(0)
        os.close(wfd)
        ok = os.read(rfd, 1) == b"1"
        os.close(rfd)
        fd = None
        if ok:
            try:
                fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            except OSError:
                fd = None
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        self.netns[slot] = fd
        return fd

    def _trial(self, ctx: dict) -> dict:
        ctx = {**ctx, "jailed": self.jailed, "scratch_mb": 1, "gid": os.getgid()}
        rfd, wfd = os.pipe()
        pid = self._fork(0 if self.jailed else None)
        if pid == 0:
            os.close(rfd)
            try:
                child.trial(ctx, wfd)
            finally:
                os._exit(1)
        os.close(wfd)
        data = b""
        while chunk := os.read(rfd, 4096):
            data += chunk
        os.close(rfd)
        os.waitpid(pid, 0)
        if self.jailed:
            self.end_slot_pidns(0)  # a fresh one for the first snippet
        try:
            return json.loads(data.decode() or "{}")
        except ValueError:
            return {}

    # ---- running tasks --------------------------------------------------------------
    def start(self, task: dict) -> None:
        received = time.monotonic()
        used = {r.slot for r in self.running.values()}
        slot = self.free_slots.pop(0) if self.free_slots else max(used, default=self.slots - 1) + 1
        jailed = self.iso["_jailed"]
        if jailed:
            cwd = None  # the child's own tmpfs, which this process never sees
        else:
            if self.tmp_root is None:
                self.tmp_root = tempfile.mkdtemp(prefix="kb-sandbox-", dir=self.config.get("tmp_root") or None)
            cwd = tempfile.mkdtemp(prefix=f"s{slot}-", dir=self.tmp_root)
            for sub in ("home", "tmp"):
                os.mkdir(os.path.join(cwd, sub))
        # The child's stdout and stderr: files with no name, read back through our own fds.
        out_fd, err_fd = os.memfd_create("stdout", os.MFD_CLOEXEC), os.memfd_create("stderr", os.MFD_CLOEXEC)
        rfd, wfd = os.pipe()
        uid = self.iso["_uid"] + slot if self.iso["_uid"] is not None else None
        ctx = {
            "cwd": cwd,
            "jailed": jailed,
            "net_mode": self.iso["_net_mode"],
            "uid": uid,
            "gid": uid if uid is not None else os.getgid(),
            "scratch_mb": int(self.config.get("scratch_mb", 1024)),
            "nproc": task.get("max_processes") or self.iso["_nproc"],
            "memory_limit_mb": int(task.get("memory_limit_mb", self.config.get("memory_limit_mb", 0))),
            "max_file_mb": int(self.config.get("max_file_mb", 1024)),
            "netns_fd": None if task.get("network") else self.make_netns(slot),
            "pass_env": list(self.config.get("pass_env") or []),
        }
        if self.config.get("require_isolation") and not self.iso.get("complete"):
            self.send({"op": "result", "task": task["id"], "snippets": [
                {"index": i, "outcome": "setup-error", "message": "isolation incomplete (missing: "
                 + ", ".join(self.iso.get("missing", [])) + ") and --require-isolation is set"}
                for i in range(len(task["snippets"]))]})
            for fd in (out_fd, err_fd, rfd, wfd):
                os.close(fd)
            self.free_slots.append(slot)
            self.free_slots.sort()
            return
        pid = self._fork(slot if jailed else None)
        if pid == 0:
            try:
                os.close(rfd)
                child.enter(task, ctx, wfd, out_fd, err_fd)
            finally:
                os._exit(71)
        try:
            os.setpgid(pid, pid)  # also done in the child; whichever runs first wins the race
        except OSError:
            pass
        os.close(wfd)
        os.set_blocking(rfd, False)
        run = Running(task, pid, slot, cwd, rfd, out_fd, err_fd)
        run.uid = uid
        run.trace = {"received": received, "forked": time.monotonic()}
        self.running[pid] = run
        self.by_fd[rfd] = run
        self.sel.register(rfd, selectors.EVENT_READ, "status")

    def read_status(self, run: Running) -> None:
        while True:
            try:
                data = os.read(run.status_fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_status(run)
                return
            run.feed(data)

    def _close_status(self, run: Running) -> None:
        if run.status_fd >= 0:
            self.sel.unregister(run.status_fd)
            self.by_fd.pop(run.status_fd, None)
            os.close(run.status_fd)
            run.status_fd = -1

    def kill(self, run: Running) -> None:
        """Kill the snippet's process group, then whatever escaped it (setsid) and was orphaned.

        Confined, the slot's PID namespace holds the snippet and all it started: ending the
        namespace ends them all. Otherwise we are the child subreaper, so every orphan of a snippet
        becomes our child: checking our own children is one small read, where scanning all of
        /proc cost ~2 ms per snippet.
        """
        try:
            os.killpg(run.pid, signal.SIGKILL)
        except OSError:
            pass
        if self.iso.get("_jailed"):
            self.end_slot_pidns(run.slot)
            return
        uid = getattr(run, "uid", None)
        for _ in range(5):
            strays = [pid for pid in self._children() if pid not in self.running and pid != run.pid]
            if uid is not None:
                strays = [pid for pid in strays if self._uid_of(pid) == uid]
            if not strays:
                return
            for pid in strays:
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            for pid in strays:  # reap them, so their own children are re-parented to us for the next round
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            time.sleep(0.001)

    @staticmethod
    def _children(pid: int | None = None) -> list[int]:
        pid = pid or os.getpid()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as handle:
                return [int(p) for p in handle.read().split()]
        except OSError:
            return []

    @staticmethod
    def _uid_of(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("Uid:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None

    def check_deadlines(self) -> None:
        now = time.monotonic()
        for run in list(self.running.values()):
            if run.exit_status is None and run.timed_out is None and now >= run.deadline:
                run.timed_out = max(run.started, default=0)
                self.kill(run)

    def reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            run = self.running.get(pid)
            if run is None:
                continue  # an orphan the snippet left behind, or a slot's init: reaped, done
            run.exit_status, run.rusage = status, usage
            run.trace.setdefault("reaped", time.monotonic())
            if run.status_fd >= 0:
                self.read_status(run)
                self._close_status(run)
            if not self.iso.get("_jailed"):
                self.kill(run)  # confined, finish() ends the slot's namespace if anything outlived the snippet
            self.finish(run)

    def _tail(self, fd: int, start: int, end: int | None) -> str:
        limit = int(self.config.get("tail_chars", 2000))
        try:
            size = os.fstat(fd).st_size
            end = size if end is None else min(end, size)
            begin = max(start, end - limit * 4)
            text = os.pread(fd, max(0, end - begin), begin).decode("utf-8", "replace")
        except OSError:
            return ""
        return text[-limit:]

    def finish(self, run: Running) -> None:
        del self.running[run.pid]
        if not run.sent:
            self.report(run)
        for fd in (run.out, run.err):
            os.close(fd)
        if run.slot in self.inits and self._children(self.inits[run.slot][0]):
            self.end_slot_pidns(run.slot)  # something the snippet started outlived it
        if run.slot not in self.free_slots:
            self.free_slots.append(run.slot)
            self.free_slots.sort()
        if run.cwd is not None:
            shutil.rmtree(run.cwd, ignore_errors=True)
        if not self.running and self.tmp_root is not None:
            shutil.rmtree(self.tmp_root, ignore_errors=True)
            self.tmp_root = None

    def report(self, run: Running) -> None:
        run.sent = True
        now = time.monotonic()
        status = run.exit_status or 0
        signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        peak = round(run.rusage.ru_maxrss / 1024, 1) if run.rusage else None
        facts = []
        broke: int | None = None
        snippets = run.task["snippets"]
        for index in range(len(snippets)):
            start, end = run.started.get(index), run.ended.get(index)
            nxt = run.started.get(index + 1)
            out_end = nxt["out"] if nxt else None
            err_end = nxt["err"] if nxt else None
            fact = {"index": index}
            if start:
                fact["stdout_tail"] = self._tail(run.out, start["out"], out_end)
                fact["stderr_tail"] = self._tail(run.err, start["err"], err_end)
            if end is not None and run.task.get("kind") != "shell":
                fact.update({k: v for k, v in end.items() if k not in ("event", "index")})
                if end.get("outcome") == "exit":
                    broke = index
            elif start is not None:
                fact["seconds"] = now - start["mono"]
                fact["peak_memory_mb"] = peak
                if run.timed_out is not None:
                    fact.update(outcome="timeout", timeout=run.timeout(index))
                elif signum is not None:
                    fact.update(outcome="signal", signal=signum, signal_name=signal.Signals(signum).name)
                elif code not in (None, 0):
                    fact.update(outcome="exit", exit_code=code)
                elif run.task.get("kind") == "shell":
                    fact.update(outcome="ok")
                else:
                    fact.update(outcome="vanished", exit_code=code)
                broke = index if broke is None else broke
            elif run.setup_error is not None or (index == 0 and not run.started):
                fact.update(outcome="setup-error", message=run.setup_error or f"the sandbox failed to start (status {status})")
                broke = index if broke is None else broke
            else:
                fact.update(outcome="not-run", after=broke)
            facts.append(fact)
        t = run.trace
        t["first_start"] = min((m["mono"] for m in run.started.values()), default=now)
        t["finished"] = time.monotonic()
        trace = {k: round((v - t["received"]) * 1000, 2) for k, v in t.items() if k != "received"}
        if 0 in run.started:
            trace["child_setup_cpu_ms"] = run.started[0].get("setup_cpu_ms")
        self.send({"op": "result", "task": run.task["id"], "snippets": facts, "worker_seconds": now - run.forked, "trace_ms": trace})

    # ---- the loop -------------------------------------------------------------------
    def send(self, message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(1, data):]

    def serve(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        os.set_blocking(0, False)
        self.sel.register(0, selectors.EVENT_READ, "stdin")
        self.sel.register(wake_r, selectors.EVENT_READ, "wake")
        pending = b""
        quitting = False
        while not quitting or self.running:
            timeout = None
            if self.running:
                timeout = max(0.0, min(r.deadline for r in self.running.values()) - time.monotonic())
            for key, _ in self.sel.select(timeout):
                if key.data == "wake":
                    try:
                        while os.read(wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                elif key.data == "stdin":
                    try:
                        data = os.read(0, 1 << 20)
                    except BlockingIOError:
                        continue
                    if not data:
                        quitting = True
                        self.sel.unregister(0)
                        for run in list(self.running.values()):
                            self.kill(run)
                        continue
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if not line.strip():
                            continue
                        message = json.loads(line)
                        if message.get("op") == "run":
                            self.start(message["task"])
                        elif message.get("op") == "quit":
                            quitting = True
                else:
                    run = self.by_fd.get(key.fd)
                    if run is not None:
                        self.read_status(run)
                        last = len(run.task["snippets"]) - 1
                        if not run.sent and run.task.get("kind") != "shell" and last in run.ended:
                            # The answer is known: send it now and clean up once the child is reaped.
                            self.report(run)
            self.reap()
            self.check_deadlines()
        if self.tmp_root is not None:
            shutil.rmtree(self.tmp_root, ignore_errors=True)


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    # First, while this process is small and has imported nothing heavy: its own namespaces and root.
    confined = confine.confine_worker(config) if config.get("confine", True) else {"error": "switched off"}
    worker = Worker(config, confined)
    try:
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    started = time.monotonic()
    worker.preimport()
    # Children's garbage collector would otherwise walk (and so copy, page by page) every object
    # the imports made; frozen objects are left alone.
    gc.collect()
    gc.freeze()
    worker.detect_isolation()
    for slot in range(2 * worker.slots):  # a slot stays busy until its child is reaped, after the answer
        worker.make_netns(slot)
    huge_mb = collapse_to_huge_pages() if config.get("huge_pages") else 0
    rss = child.peak_rss_mb()
    worker.send({
        "op": "ready",
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "preimported": worker.preimported,
        "preimport_errors": worker.preimport_errors,
        "isolation": {k: v for k, v in worker.iso.items() if not k.startswith("_")},
        "worker_rss_mb": rss,
        "huge_pages_mb": huge_mb,
        "threads": len(os.listdir("/proc/self/task")),
        "startup_seconds": time.monotonic() - started,
    })
    worker.serve()
    sys.stdout.flush()
    os._exit(0)  # skip tearing down torch & co: it takes a quarter of a second and achieves nothing


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
