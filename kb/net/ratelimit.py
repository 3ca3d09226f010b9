"""A per-provider rate limiter (requests and tokens per minute) shared by every runner in the process.

``--runners`` bounds how many PARTs run at once; this bounds what they send to
one provider together. It works by reservation under a thread lock (no asyncio
primitives), so one limiter serves every event loop and thread in the process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Evenly spaced requests (``requests_per_minute``) and a token bucket (``tokens_per_minute``)."""

    def __init__(
        self,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm = requests_per_minute or None
        self.tpm = tokens_per_minute or None
        self._clock = clock
        self._lock = threading.Lock()
        self._next_request = 0.0
        self._tokens = float(self.tpm or 0)
        self._refilled = clock()
        self.waited_s = 0.0  # total time callers were held back, for reports and tests

    def reserve(self, tokens: int = 0) -> float:
        """Book a request of ``tokens`` estimated tokens; returns how long the caller must wait first."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            if self.rpm:
                start = max(now, self._next_request)
                self._next_request = start + 60.0 / self.rpm
                wait = start - now
            if self.tpm:
                rate = self.tpm / 60.0
                self._tokens = min(float(self.tpm), self._tokens + (now - self._refilled) * rate)
                self._refilled = now
                # A request larger than a minute's budget still goes, once the bucket is full.
                self._tokens -= min(tokens, self.tpm)
                if self._tokens < 0:
                    wait = max(wait, -self._tokens / rate)
            self.waited_s += wait
            return wait

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until a request of ``tokens`` estimated tokens may be sent."""
        wait = self.reserve(tokens)
        if wait > 0:
            await asyncio.sleep(wait)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the bucket once the reply says how many tokens the request really used."""
        if not self.tpm:
            return
        with self._lock:
            self._tokens = min(float(self.tpm), self._tokens + min(estimated, self.tpm) - actual)


# One limiter per provider endpoint for the whole process: runners share the
# provider's quota, so they must share its limiter. Guarded by a lock because
# runners may build engines from several threads.
_SHARED: dict[tuple, RateLimiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(provider: str, endpoint: str, requests_per_minute: int | None, tokens_per_minute: int | None) -> RateLimiter:
    """The process-wide limiter for ``provider`` at ``endpoint`` with these limits."""
    key = (provider, endpoint, requests_per_minute or None, tokens_per_minute or None)
    with _SHARED_LOCK:
        limiter = _SHARED.get(key)
        if limiter is None:
            limiter = _SHARED[key] = RateLimiter(requests_per_minute, tokens_per_minute)
        return limiter
