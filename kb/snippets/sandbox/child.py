"""What runs inside the forked child, before and around the snippet (standard library only).

Loaded by worker.py under the module name ``_kb_sandbox_child``; it must not import kb.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import socket
import struct
import sys
import time

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
# Errnos that mean "no route out": EACCES and EPERM are not among them (a write to /mnt, a port
# below 1024), they are reported as permission denied.
NETWORK_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.ENETDOWN}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _loopback_up() -> None:
    """A fresh network namespace has `lo` down; bring it up so local servers in a snippet work."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        import fcntl

        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def isolate_network(mode: str, netns_fd: int | None = None) -> bool:
    """Enter an empty network namespace: the slot's ready-made one (cheap), a new one as root
    ('namespace', ~7 ms), or a new user+network namespace when not root ('userns')."""
    libc = _libc()
    if netns_fd is not None:
        return libc.setns(netns_fd, CLONE_NEWNET) == 0
    if mode == "namespace":
        if libc.unshare(CLONE_NEWNET) != 0:
            return False
    elif mode == "userns":
        uid, gid = os.geteuid(), os.getegid()
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
            return False
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    else:
        return False
    try:
        _loopback_up()
    except OSError:
        pass  # no loopback: still no network, which is the point
    return True


def drop_to(uid: int) -> None:
    """Become ``uid`` (so RLIMIT_NPROC counts) but keep reading what root reads (CAP_DAC_READ_SEARCH).

    Python's own files may sit under a private home (/root/.pyenv); without this the snippet could
    not import the standard library. Writing stays limited to what ``uid`` may write.
    """
    libc = _libc()
    libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    mask = 1 << CAP_DAC_READ_SEARCH
    data[0].effective = data[0].permitted = data[0].inheritable = mask
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    # Ambient: a `subprocess.run([sys.executable, ...])` in the snippet can read Python's files too.
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_DAC_READ_SEARCH, 0, 0)


def no_new_privileges() -> None:
    _libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def vm_size_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def set_limits(memory_mb: int, nproc: int | None, file_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault leaves no core file behind
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
    if memory_mb > 0:
        # Relative to what the warm worker already maps (torch alone maps hundreds of MB).
        limit = vm_size_bytes() + (memory_mb << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _network_guard(event: str, args: tuple) -> None:
    """Fallback where no network namespace can be made: refuse sockets that leave the machine."""
    if event in ("socket.connect", "socket.sendto", "socket.bind") and args:
        sock = args[0]
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6):
            address = args[1] if len(args) > 1 else None
            host = address[0] if isinstance(address, tuple) and address else ""
            if host not in ("127.0.0.1", "::1", "localhost", ""):
                raise PermissionError(errno.ENETUNREACH, "network disabled by kb (kb:requires=network not set)")
    elif event == "socket.getaddrinfo" and args and args[0] not in ("localhost", "127.0.0.1", "::1", None):
        raise PermissionError(errno.ENETUNREACH, "network disabled by kb (kb:requires=network not set)")


def install_network_guard() -> None:
    sys.addaudithook(_network_guard)


class Reporter:
    """JSON lines to the worker over the status pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.setup_cpu_ms: float | None = None

    def send(self, **message) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data):]


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        reason = getattr(exc, "reason", None)  # urllib.error.URLError wraps the OSError here
        if isinstance(reason, BaseException):
            yield reason
        exc = exc.__cause__ or exc.__context__


def categorise(exc: BaseException, network_off: bool) -> str | None:
    """'memory', 'process-limit', 'network' or 'permission' when the sandbox's limits explain the exception."""
    for item in _chain(exc):
        text = str(item).lower()
        if isinstance(item, MemoryError) or "can't allocate memory" in text or "cannot allocate memory" in text:
            return "memory"
        if isinstance(item, OSError) and item.errno == errno.EAGAIN and not isinstance(item, socket.timeout):
            return "process-limit"
        if isinstance(item, RuntimeError) and "can't start new thread" in text:
            return "process-limit"
        if network_off and (
            isinstance(item, (socket.gaierror, ConnectionError))
            or (isinstance(item, OSError) and item.errno in NETWORK_ERRNOS)
            or "network is unreachable" in text
            or "name or service not known" in text
            or "temporary failure in name resolution" in text
        ):
            return "network"
        if isinstance(item, PermissionError) and item.errno in (errno.EACCES, errno.EPERM):
            return "permission"
    return None


def _compile(code: str, filename: str, first_line: int):
    import ast

    tree = ast.parse(code, filename=filename)
    ast.increment_lineno(tree, first_line - 1)
    return compile(tree, filename, "exec", dont_inherit=True)


def _register_lines(filename: str, first_line: int, code: str) -> None:
    """Tracebacks then show the snippet's own lines at their Markdown line numbers."""
    import linecache

    lines = [""] * (first_line - 1) + code.splitlines(True)
    entry = linecache.cache.get(filename)
    if entry and len(entry[2]) > len(lines):
        old = list(entry[2])
        old[first_line - 1 : first_line - 1 + len(code.splitlines())] = code.splitlines(True)
        lines = old
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)


def run_python(task: dict, reporter: Reporter, cwd: str, network_off: bool) -> None:
    """Execute the chain of snippets in one namespace, like notebook cells; report each."""
    import atexit
    import builtins
    import faulthandler
    import traceback
    import types

    me = os.getpid()
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    script = os.path.join(cwd, "snippet.py")
    main.__file__ = script
    sys.argv = [script]
    sys.path[0:0] = [cwd]
    faulthandler.enable(file=sys.stderr, all_threads=True)
    # A deprecated API warns from inside its library (torch.jit.trace): Python hides that unless asked, and a reader
    # of the example needs to know (the writer says so beside the example, kb.snippets.draft.SnippetVerdict.deprecated).
    import warnings

    warnings.simplefilter("default", DeprecationWarning)
    # Exit handlers the warm worker's imports registered (torch's take ~20 ms) are not the
    # snippet's business; the ones the snippet registers still run at the end.
    atexit._clear()
    written = []
    for index, item in enumerate(task["snippets"]):
        written.append(item["code"])
        # multiprocessing's spawn re-imports __main__ from this file, so keep it current.
        with open(script, "w") as handle:
            handle.write("\n".join(written))
        sys.stdout.flush()
        sys.stderr.flush()
        reporter.send(event="start", index=index, out=os.lseek(1, 0, os.SEEK_CUR), err=os.lseek(2, 0, os.SEEK_CUR), t=time.time(),
                      setup_cpu_ms=reporter.setup_cpu_ms)
        outcome: dict = {"outcome": "ok"}
        started = time.perf_counter()
        try:
            _register_lines(item["filename"], item["first_line"], item["code"])
            exec(_compile(item["code"], item["filename"], item["first_line"]), main.__dict__)
        except SystemExit as exc:
            code = exc.code
            if code is None or code == 0:
                outcome = {"outcome": "ok", "exit_code": 0}
            else:
                if not isinstance(code, int):
                    print(code, file=sys.stderr)
                    code = 1
                outcome = {"outcome": "exit", "exit_code": code}
        except BaseException as exc:  # noqa: BLE001 - the snippet's error is the result
            # Leave out our own frame: the traceback starts at the snippet's first line.
            traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
            outcome = {
                "outcome": "exception",
                "exc_type": type(exc).__name__,
                "message": str(exc)[:500],
                "category": categorise(exc, network_off),
            }
        if os.getpid() != me:
            os._exit(0)  # a process the snippet forked came back here: it has no report to make
        seconds = time.perf_counter() - started
        sys.stdout.flush()
        sys.stderr.flush()
        reporter.send(event="end", index=index, seconds=seconds, peak_memory_mb=peak_rss_mb(), **outcome)
        if outcome["outcome"] == "exit":
            break
    try:
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_shell(task: dict, reporter: Reporter) -> None:
    item = task["snippets"][0]
    shell = "/bin/sh" if item.get("language") == "sh" else "/bin/bash"
    reporter.send(event="start", index=0, out=0, err=0, t=time.time())
    os.execv(shell, [shell, "-e", "-c", item["code"]])


confine = None  # worker.py sets this to its confine.py module


def enter(task: dict, ctx: dict, status_fd: int, out_fd: int, err_fd: int) -> None:
    """The forked child: isolate, limit, then run the task. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        keep = {status_fd, ctx.get("netns_fd")}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2 and fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        os.set_inheritable(status_fd, False)
        reporter = Reporter(status_fd)
        setup_cpu = time.thread_time()  # what isolating this child costs (bench/bench_snippets.py)
        network_off = not task.get("network", False)
        isolated = isolate_network(ctx["net_mode"], ctx.get("netns_fd")) if network_off else False
        if ctx.get("netns_fd") is not None:
            os.close(ctx["netns_fd"])
        uid = ctx.get("uid")
        if ctx.get("jailed"):
            confine.private_scratch(uid if uid is not None else os.getuid(), ctx.get("gid", os.getgid()), ctx["scratch_mb"])
            cwd = confine.SCRATCH
            set_limits(0 if task.get("cuda") else ctx["memory_limit_mb"], ctx.get("nproc"), ctx["max_file_mb"])
            confine.drop_privileges(uid)
            confine.landlock_scope()
        else:
            cwd = ctx["cwd"]
            set_limits(0 if task.get("cuda") else ctx["memory_limit_mb"], ctx.get("nproc"), ctx["max_file_mb"])
            if uid is not None:
                os.chown(cwd, uid, uid)
                for sub in ("home", "tmp"):
                    os.chown(os.path.join(cwd, sub), uid, uid)
                drop_to(uid)
            no_new_privileges()
            if confine is not None:
                confine.landlock_scope()
        os.chdir(cwd)
        # A fresh environment: the worker's (already allow-listed by kb) filtered once more.
        env = confine.clean_environment(dict(os.environ), ctx.get("pass_env") or []) if confine else dict(os.environ)
        env.update({"HOME": os.path.join(cwd, "home"), "TMPDIR": os.path.join(cwd, "tmp"), "PWD": cwd})
        if uid is not None:  # a sandbox uid has no passwd entry: getpass.getuser() (torch.compile's cache) reads these
            env.update({"USER": "kb-sandbox", "LOGNAME": "kb-sandbox"})
        env.update(task.get("env") or {})
        os.environ.clear()
        os.environ.update(env)
        import tempfile

        tempfile.tempdir = None
        if network_off and not isolated:
            install_network_guard()
        reporter.setup_cpu_ms = round((time.thread_time() - setup_cpu) * 1000, 3)
    except BaseException as exc:  # noqa: BLE001 - report the harness's own failure, then die
        try:
            Reporter(status_fd).send(event="setup-error", message=f"{type(exc).__name__}: {exc}")
        finally:
            os._exit(70)
    if task.get("kind") == "shell":
        run_shell(task, reporter)
    else:
        run_python(task, reporter, cwd, network_off)
    os._exit(0)


def trial(ctx: dict, status_fd: int) -> None:
    """Probe which isolation works here; report it on ``status_fd`` and exit."""
    found = {"network": False, "uid": False, "imports": False, "scratch": False, "dropped": False}
    try:
        found["network"] = isolate_network(ctx["net_mode"])
    except OSError:
        pass
    uid = ctx.get("uid")
    if ctx.get("jailed"):
        try:
            confine.private_scratch(uid if uid is not None else os.getuid(), ctx.get("gid", os.getgid()), ctx["scratch_mb"])
            os.chdir(confine.SCRATCH)
            found["scratch"] = True
            confine.drop_privileges(uid)
            found["dropped"] = True
            found["scoped"] = confine.landlock_scope()
            found["uid"] = uid is not None and os.getuid() == uid
            if uid is not None:
                with open(os.path.join(confine.SCRATCH, "home", "probe"), "w"):
                    pass  # the snippet's uid can write its scratch
        except OSError as exc:
            found["error"] = f"{exc}"
            found["scratch"] = found["dropped"] = False
    else:
        try:
            if uid is not None:
                drop_to(uid)
                found["uid"] = os.getuid() == uid
            no_new_privileges()
            found["scoped"] = confine is not None and confine.landlock_scope()
        except OSError:
            pass
    try:
        # A module nobody imported yet: proves Python's files are still readable.
        import importlib

        for name in ("wave", "colorsys", "this"):
            if name not in sys.modules:
                sys.stdout = open(os.devnull, "w")
                importlib.import_module(name)
                break
        found["imports"] = True
    except Exception:  # noqa: BLE001
        pass
    Reporter(status_fd).send(**found)
    os._exit(0)
