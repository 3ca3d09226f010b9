"""Turn what the sandbox observed about one snippet into a status and a reason.

``fail`` is kept for code that ran and is broken. An error that says the code needs something
this machine lacks (CUDA, a module, the network, a newer Python) is a ``skip`` naming it; a
NameError on a name the snippet never binds, or a missing input file, marks a ``fragment``; code
that ran but only defined functions nobody called is ``defines-only``.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field

from kb.snippets.requirements import STDLIB_ADDED
from kb.snippets.shape import describe_names

_SIGNAL_WORDS = {
    "SIGSEGV": "segmentation fault",
    "SIGBUS": "bus error",
    "SIGABRT": "aborted",
    "SIGFPE": "floating-point exception",
    "SIGILL": "illegal instruction",
}
_NAME_ERROR = re.compile(r"name '([^']+)' is not defined")
_NO_MODULE = re.compile(r"No module named '([^']+)'")
_CANNOT_IMPORT = re.compile(r"cannot import name '([^']+)' from '([^']+)'")
_NO_FILE = re.compile(r"No such file or directory: '([^']*)'")
# What torch says when a snippet reaches for CUDA on a machine without it.
_NO_CUDA = re.compile(
    r"Torch not compiled with CUDA enabled|Found no NVIDIA driver|No CUDA GPUs are available|CUDA driver initialization failed|"
    r"compiled without CUDA|requires CUDA support|NVTX functions not installed|Tried to instantiate dummy base class (Event|Stream|CUDAGraph)|"
    r"on a CUDA device but torch\.cuda\.is_available\(\) is False|no CUDA-capable device|CUDA_HOME environment variable is not set|"
    r"Cannot access accelerator device when none is available|_cuda_\w+'|NCCL|nvcc"
)


@dataclass
class Context:
    """What kb knows about a snippet beyond the sandbox's facts (from reading it, and the machine)."""

    expect_error: bool = False
    max_processes: int | None = None
    known_names: frozenset[str] = frozenset()  # names bound by it, its kb:setup and the chain before it
    imports: list[str] = field(default_factory=list)  # modules it imports itself
    modules: dict[str, bool] = field(default_factory=dict)  # probed importability on the profile's interpreter
    cuda_usable: bool = False
    python: str = ""  # the profile's Python version
    only_defines: bool = False
    defines: list[str] = field(default_factory=list)
    file: str = ""  # the Markdown file: tracebacks name it for the snippet's own frames


def _signal_name(fact: dict) -> str:
    if fact.get("signal_name"):
        return fact["signal_name"]
    try:
        return signal.Signals(int(fact.get("signal"))).name
    except (TypeError, ValueError):
        return f"signal {fact.get('signal')}"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text or "")[:2])


def classify(fact: dict, expect_error: bool, max_processes: int | None = None, context: Context | None = None) -> tuple[str, str | None]:
    """(status, reason) for one snippet's facts from the worker."""
    ctx = context or Context()
    outcome = fact.get("outcome")
    exc = f"{fact.get('exc_type', 'Error')}: {fact.get('message', '')}".rstrip(": ")
    if outcome == "ok":
        if expect_error:
            return "fail", "expected an error (kb:expect-error), but it ran without one"
        if ctx.only_defines:
            return "defines-only", f"defines {describe_names(ctx.defines)}; nothing calls them"
        return "pass", None
    if outcome == "exception":
        if expect_error:
            return "pass", f"raised {fact.get('exc_type')} as expected"
        category = fact.get("category")
        if category == "memory":
            return "error", f"memory limit exceeded ({exc})"
        if category == "process-limit":
            limit = f" ({max_processes} processes and threads)" if max_processes else ""
            return "error", f"process limit reached{limit}: {exc}"
        if category == "network":
            return "skip", f"requires network (none in the sandbox; mark it kb:requires=network): {exc}"
        if category == "permission":
            return "fail", f"permission denied (a snippet may write only in its own working directory): {exc}"
        return exception_verdict(fact, exc, ctx)
    if outcome == "exit":
        code = fact.get("exit_code")
        if expect_error:
            return "pass", f"exited with status {code} as expected"
        return "fail", f"exited with status {code}"
    if outcome == "vanished":
        return ("fail", "expected an error (kb:expect-error), but it exited with status 0") if expect_error else ("pass", "exited with status 0")
    if outcome == "signal":
        name = _signal_name(fact)
        words = _SIGNAL_WORDS.get(name)
        return "error", f"killed by {name}" + (f" ({words})" if words else "")
    if outcome == "timeout":
        return "timeout", f"timed out after {float(fact.get('timeout', 0)):g} s"
    if outcome == "setup-error":
        return "error", f"the sandbox could not start it: {fact.get('message')}"
    if outcome == "not-run":
        return "fail", "not run: the snippet it continues ended its process"
    return "error", f"unknown outcome {outcome!r}"


def exception_verdict(fact: dict, exc: str, ctx: Context) -> tuple[str, str]:
    """An exception the snippet raised: broken code (fail), or a sign of what it needs (skip, fragment)."""
    kind, message = str(fact.get("exc_type") or ""), str(fact.get("message") or "")
    if kind == "NameError":
        match = _NAME_ERROR.search(message)
        if match and match.group(1) not in ctx.known_names:
            return "fragment", f"uses {match.group(1)} defined elsewhere ({exc})"
    if kind == "ModuleNotFoundError":
        match = _NO_MODULE.search(message)
        if match:
            missing = match.group(1)
            root = missing.split(".")[0]
            if "." in missing and ctx.modules.get(root):
                return "fail", exc  # the package is there and has no such module: a wrong import
            via = "" if root in ctx.imports else "; an optional dependency of a package it uses"
            return "skip", f"requires module {root} (not installed{via})"
    if kind == "ImportError":
        match = _CANNOT_IMPORT.search(message)
        if match:
            version = STDLIB_ADDED.get((match.group(2), match.group(1)))
            if version and _version(ctx.python) < _version(version):
                return "skip", f"requires Python >= {version} ({match.group(1)} from {match.group(2)}; this machine has {ctx.python})"
    if not ctx.cuda_usable and _NO_CUDA.search(message):
        return "skip", f"requires cuda (found when run: {exc})"
    if kind == "FileNotFoundError":
        match = _NO_FILE.search(message)
        stderr = str(fact.get("stderr_tail") or "")
        if match and ("subprocess.py" in stderr or "execute_child" in stderr) and "/" not in match.group(1):
            return "skip", f"requires the program {match.group(1)} (not found)"
        if match:
            return "fragment", f"needs the file {match.group(1)!r}, made elsewhere ({kind})"
    return "fail", exc
