"""Turn what the sandbox observed about one snippet into a status and a reason."""

from __future__ import annotations

import signal

_SIGNAL_WORDS = {
    "SIGSEGV": "segmentation fault",
    "SIGBUS": "bus error",
    "SIGABRT": "aborted",
    "SIGFPE": "floating-point exception",
    "SIGILL": "illegal instruction",
}


def _signal_name(fact: dict) -> str:
    if fact.get("signal_name"):
        return fact["signal_name"]
    try:
        return signal.Signals(int(fact.get("signal"))).name
    except (TypeError, ValueError):
        return f"signal {fact.get('signal')}"


def classify(fact: dict, expect_error: bool, max_processes: int | None = None) -> tuple[str, str | None]:
    """(status, reason) for one snippet's facts from the worker."""
    outcome = fact.get("outcome")
    exc = f"{fact.get('exc_type', 'Error')}: {fact.get('message', '')}".rstrip(": ")
    if outcome == "ok":
        if expect_error:
            return "fail", "expected an error (kb:expect-error), but it ran without one"
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
            return "fail", f"no network in the sandbox (mark it kb:requires=network): {exc}"
        return "fail", exc
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
