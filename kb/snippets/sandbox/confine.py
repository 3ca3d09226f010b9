"""Namespaces, mounts and privileges that keep a snippet away from the person's files, secrets,
sockets and processes (standard library only: loaded by worker.py, which must not need kb).

The warm worker confines itself once, before it imports torch (:func:`confine_worker`): a user
namespace when it is not root, then mount, PID and IPC namespaces, and a new root that holds only
the system (/usr, /etc, /opt, /lib*, /sys, a few /dev nodes: all read-only), the interpreter's own
folders and the paths a profile grants (read-only), and a fresh /proc. Nothing else of the host is
there: no /home, /root, workspace, /run (sockets), /tmp, /var. Each snippet's child then gets its
private writable scratch on a fresh tmpfs mounted over /tmp, also seen at /var/tmp and /dev/shm
(:func:`private_scratch`), and gives up every privilege (:func:`drop_privileges`). Both steps are
namespace operations, not an exec: the warm fork stays as cheap as it was.

Chosen over bubblewrap (not installed on most machines, and an exec per snippet would lose the warm
worker) and Landlock (no private /tmp, no PID namespace; host unix sockets stay reachable by path).
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 32, 4096, 8192, 16384, 1 << 18
MNT_DETACH = 2
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID = 0x1, 0x2
SYS_MOUNT_SETATTR = 442
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_RESTRICT_SELF = 444, 446
LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET, LANDLOCK_SCOPE_SIGNAL = 0x1, 0x2  # Landlock ABI 6 (Linux 6.12)  # the same number on every architecture (new syscalls share one table)
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(platform.machine())
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/nix", "/sys")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
GPU_DEVICES = re.compile(r"^(nvidia.*|dri|kfd)$")  # CUDA (and ROCm) snippets need their device nodes
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
SCRATCH = "/tmp/snippet"  # each snippet's cwd; HOME and TMPDIR are folders inside it
SCRATCH_ROOTS = ("/tmp", "/var/tmp")  # covered by each snippet's fresh tmpfs
# What the new root shows under SCRATCH_ROOTS (a virtual environment or checkout under /tmp): each
# snippet's tmpfs would hide it, so private_scratch binds it back. Set by _build_root, inherited by forks.
_UNDER_SCRATCH: list[tuple[str, bool]] = []

# Environment variables a snippet gets, besides the ones kb sets (HOME, TMPDIR, PWD, thread counts,
# CUDA_VISIBLE_DEVICES) and the ones its profile names in pass_env. A name that says it holds a
# secret is never passed, whatever a profile says.
BASE_ENV = ("PATH", "LANG", "LANGUAGE", "LC_*", "TZ", "TERM", "USER", "LOGNAME", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _LandlockRuleset(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(text: str | None) -> bytes | None:
    return None if text is None else os.fsencode(text)


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def _read_only(path: str, recursive: bool) -> None:
    """Make a mount (and those below it) read-only and nosuid, keeping its other flags."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    if _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, _b(path), flags, ctypes.byref(attr), ctypes.sizeof(attr)) == 0:
        return
    # Before Linux 5.12: a remount, keeping the flags a user namespace may not clear.
    kept = os.statvfs(path).f_flag & (MS_NODEV | MS_NOEXEC)
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | kept)


def _bind(source: str, target: str, recursive: bool, read_only: bool) -> None:
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if read_only:
        _read_only(target, recursive)


def clean_environment(environ: dict, patterns: list[str]) -> dict:
    """The variables of ``environ`` a snippet may see: BASE_ENV plus ``patterns`` (NAME or PREFIX*),
    never one whose name says it holds a secret."""
    allowed = list(BASE_ENV) + list(patterns)

    def wanted(name: str) -> bool:
        return any(name == p or (p.endswith("*") and name.startswith(p[:-1])) for p in allowed)

    return {k: v for k, v in environ.items() if wanted(k) and not SECRET_NAME.search(k)}


# ---- what the new root holds --------------------------------------------------------------------
def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def python_paths(hidden: list[str]) -> list[str]:
    """The interpreter's own folders (prefixes, sys.path) that the system folders do not already
    hold. One that is ``/`` or holds a hidden path (the workspace, a home) is left out: an editable
    install may put the workspace itself on sys.path; a venv inside the workspace is kept."""
    hidden = [os.path.realpath(h) for h in hidden if h]
    found: list[str] = []
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.realpath(sys.executable)), *sys.path]
    for raw in candidates:
        if not raw or not os.path.isabs(raw):
            continue
        for path in {os.path.normpath(raw), os.path.realpath(raw)}:
            if os.path.isfile(path):  # python311.zip
                path = os.path.dirname(path)
            if not os.path.isdir(path) or path == "/":
                continue
            if any(_inside(path, s) for s in SYSTEM_DIRS) or any(_inside(h, path) for h in hidden):
                continue
            found.append(path)
    kept: list[str] = []
    for path in sorted(set(found)):
        if not any(_inside(path, k) for k in kept):
            kept.append(path)
    return kept


def plan_root(readable: list[str], hidden: list[str]) -> tuple[list[tuple], list[str]]:
    """What the new root holds: ("link", dest, target) or ("dir"|"devdir"|"file"|"device", path).
    Returns it and the granted paths that do not exist."""
    items: list[tuple] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            items.append(("link", path, os.readlink(path)))
        elif os.path.isdir(path):
            items.append(("dir", path, path))
    resolv = os.path.realpath("/etc/resolv.conf")
    if not any(_inside(resolv, s) for s in SYSTEM_DIRS) and os.path.isfile(resolv):
        items.append(("file", resolv, resolv))  # a symlink into /run (systemd-resolved)
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            items.append(("device", f"/dev/{name}", f"/dev/{name}"))
    try:
        gpu = sorted(n for n in os.listdir("/dev") if GPU_DEVICES.match(n))
    except OSError:
        gpu = []
    for name in gpu:
        kind = "dir" if os.path.isdir(f"/dev/{name}") else "device"
        items.append((kind if kind == "device" else "devdir", f"/dev/{name}", f"/dev/{name}"))
    for path in python_paths(hidden):
        items.append(("dir", path, path))
    missing = []
    for path in readable:
        real = os.path.realpath(path)
        if os.path.isdir(real):
            items.append(("dir", real, real))
        elif os.path.isfile(real):
            items.append(("file", real, real))
        else:
            missing.append(path)
    return items, missing


def _build_root(items: list[tuple], base: str) -> None:
    """Assemble the new root on a tmpfs at ``base`` and switch to it; the old root is detached."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount reaches the host, and back
    mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    os.makedirs(base + "/dev", 0o755)
    mount("tmpfs", base + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"{base}/dev/{name}")
    for folder in ("/dev/shm", "/proc", "/tmp", "/var/tmp"):
        os.makedirs(base + folder, 0o755, exist_ok=True)
    for kind, dest, value in items:
        target = base + dest
        if kind == "link":
            os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
            os.symlink(value, target)
            continue
        source = value
        if kind in ("dir", "devdir"):
            os.makedirs(target, 0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
            with open(target, "w"):
                pass
        _bind(source, target, recursive=kind in ("dir", "devdir"), read_only=kind in ("dir", "file"))
        if kind in ("dir", "file") and any(_inside(dest, r) for r in SCRATCH_ROOTS):
            _UNDER_SCRATCH.append((dest, kind == "dir"))
    # This process is PID 1 of its own PID namespace: a /proc of that namespace, not the host's.
    mount("proc", base + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(base)
    os.mkdir(".old")
    if SYS_PIVOT_ROOT is not None:
        _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b".old"), "pivot_root")
        _check(_libc.umount2(b"/.old", MNT_DETACH), "umount the old root")
        os.rmdir("/.old")
    else:  # an architecture we have no pivot_root number for: move the new root over / instead
        mount(".", "/", None, MS_MOVE)
        os.chroot(".")
    os.chdir("/")
    _read_only("/", recursive=False)
    _read_only("/dev", recursive=False)


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def confine_worker(config: dict) -> dict:
    """Move this (not yet forked, torch-free) process into its own namespaces and new root.

    Returns the facts ("filesystem", "pids", "error"). On success the caller continues as PID 1 of
    a new PID namespace; the original process stays behind only to hand on its exit status, and
    dies (taking everything with it) if kb kills it. Where a step fails, nothing changed here and
    the caller runs unconfined, saying why.
    """
    facts = {"filesystem": False, "pids": False, "user_namespace": False, "error": None, "readable_missing": []}
    if not sys.platform.startswith("linux"):
        facts["error"] = "not Linux"
        return facts
    root = os.geteuid() == 0
    uid, gid = os.getuid(), os.getgid()
    try:
        items, facts["readable_missing"] = plan_root(list(config.get("readable", [])), list(config.get("hidden", [])))
    except OSError as exc:
        facts["error"] = f"cannot list what the sandbox shows: {exc}"
        return facts
    # The new root is assembled on a tmpfs mounted over a folder that holds nothing it shows.
    sources = [value for kind, _, value in items if kind != "link"]
    base = next((p for p in ("/mnt", "/media", "/srv", "/tmp", "/var/tmp")
                 if os.path.isdir(p) and not os.path.islink(p) and not any(_inside(s, p) for s in sources)), None)
    rfd, wfd = os.pipe()
    outer = os.getpid()
    first = os.fork()
    if first == 0:
        # The middle process: takes the namespaces, then forks the worker into the PID namespace.
        try:
            os.close(rfd)
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != outer:
                os._exit(1)
            unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | (0 if root else CLONE_NEWUSER))
            if not root:
                _write("/proc/self/setgroups", "deny")
                _write("/proc/self/uid_map", f"{uid} {uid} 1")
                _write("/proc/self/gid_map", f"{gid} {gid} 1")
            worker = os.fork()
            if worker == 0:
                _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if base is None:
                    raise OSError("no folder to build the new root in")
                _build_root(items, base)
                os.write(wfd, b"ok\n")
                os.close(wfd)
                return {**facts, "filesystem": True, "pids": True, "user_namespace": not root}
            os.close(wfd)
            os.close(0)  # kb's pipes are the worker's
            os.close(1)
            _hand_on_exit_status(worker)
        except BaseException as exc:  # noqa: BLE001 - told to the original process, which carries on
            try:
                os.write(wfd, f"error {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(1)
    os.close(wfd)
    answer = b""
    while chunk := os.read(rfd, 4096):
        answer += chunk
        if answer.endswith(b"\n"):
            break
    os.close(rfd)
    if answer == b"ok\n":
        # The worker runs on in the new namespaces with our stdin and stdout; we only wait.
        os.close(0)
        os.close(1)
        _hand_on_exit_status(first)
    try:
        os.waitpid(first, 0)
    except ChildProcessError:
        pass
    facts["error"] = answer.decode(errors="replace").strip().removeprefix("error ") or "the confined worker did not start"
    return facts


def _hand_on_exit_status(pid: int) -> None:
    """Wait for ``pid`` and exit as it did (a signal as the same signal). Never returns."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


# ---- per snippet (in the forked child) ----------------------------------------------------------
def private_scratch(uid: int, gid: int, size_mb: int) -> None:
    """A mount namespace of the child's own: a fresh tmpfs over /tmp (the scratch, also seen at
    /var/tmp and /dev/shm) and a /proc that shows only the snippet's PID namespace."""
    unshare(CLONE_NEWNS)
    # Held open across the tmpfs mount, which hides them, then bound back read-only by descriptor.
    kept = [(dest, is_dir, os.open(dest, os.O_PATH)) for dest, is_dir in _UNDER_SCRATCH]
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={max(1, size_mb)}m")
    for folder in (SCRATCH, SCRATCH + "/home", SCRATCH + "/tmp", "/tmp/.shm"):
        os.mkdir(folder, 0o700 if folder != "/tmp/.shm" else 0o1777)
        os.chown(folder, uid, gid)
    _bind("/tmp", "/var/tmp", recursive=False, read_only=False)
    _bind("/tmp/.shm", "/dev/shm", recursive=False, read_only=False)
    for dest, is_dir, fd in kept:
        if is_dir:
            os.makedirs(dest, 0o755, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
            with open(dest, "w"):
                pass
        _bind(f"/proc/self/fd/{fd}", dest, recursive=is_dir, read_only=True)
        os.close(fd)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def drop_privileges(uid: int | None) -> None:
    """Give up every capability for good (bounding and ambient sets too), become ``uid`` when
    given (kb running as root), and forbid gaining privileges through setuid files."""
    cap = 0
    while _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)  # from root to another uid: the kernel clears every capability
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def landlock_scope() -> bool:
    """Where the kernel has Landlock ABI 6+: no signal to, and no abstract unix socket of, any
    process outside the snippet's own (a snippet allowed the network shares the host's network
    namespace, and with it the abstract socket namespace). Needs no_new_privs first."""
    attr = _LandlockRuleset(0, 0, LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL)
    fd = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    if fd < 0:
        return False
    try:
        return _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0) == 0
    finally:
        os.close(fd)
