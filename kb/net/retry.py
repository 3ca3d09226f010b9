"""Bounded retries for JSON-over-HTTP calls: backoff with jitter, Retry-After, a wall clock per attempt.

Retried: 408/425/429 and every 5xx (with the server's Retry-After honoured, up to
a cap), connect/read/write timeouts, connection resets, a body that is not the
JSON promised, and a reply ``parse`` rejects as malformed. Anything else (401,
404, ...) fails at once. Every message is redacted of the caller's secrets.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from kb.net.ratelimit import RateLimiter
from kb.net.secrets import redact

log = logging.getLogger("kb.net")

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 425, 429})


class ProviderError(Exception):
    """A provider (LLM, search engine, web page) gave no usable answer. The message is safe to show."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class MalformedReply(ProviderError):
    """A reply that arrived but is not what the API promises (retried like a transient fault)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0
    attempt_timeout_s: float = 120.0  # wall clock for one attempt, however slowly the server trickles

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if retry_after is not None:
            # The server said when; a little jitter stops every runner returning at the same instant.
            return min(retry_after, self.retry_after_max_s) + rng.uniform(0, min(0.25, self.backoff_s))
        cap = min(self.backoff_max_s, self.backoff_s * (2**attempt))
        return rng.uniform(cap / 2, cap)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _snippet(response: httpx.Response) -> str:
    try:
        text = response.text
    except Exception:  # an undecodable body still gets a clear status line
        return ""
    text = " ".join(text.split())
    return (": " + text[:200]) if text else ""


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    policy: RetryPolicy,
    secrets: Iterable[str | None] = (),
    parse: Callable[[Any], T] = lambda data: data,
    limiter: RateLimiter | None = None,
    tokens_estimate: int = 0,
    rng: random.Random | None = None,
    **kwargs: Any,
) -> tuple[T, int]:
    """Send a request until it yields parsed JSON; returns (parse(json), attempts used).

    Raises ProviderError with a redacted reason when the retries are spent or the
    failure cannot be helped by retrying.
    """
    secrets = tuple(secrets)
    rng = rng or random.Random()
    last = "no attempt made"
    for attempt in range(policy.max_retries + 1):
        retry_after: float | None = None
        if limiter is not None:
            await limiter.acquire(tokens_estimate)
        try:
            async with asyncio.timeout(policy.attempt_timeout_s):
                response = await client.request(method, url, **kwargs)
        except (httpx.TimeoutException, TimeoutError):
            last = "timed out"
        except httpx.TransportError as exc:
            last = f"connection failed ({type(exc).__name__})"
        else:
            status = response.status_code
            if 200 <= status < 300:
                try:
                    data = response.json()
                except ValueError:
                    last = "malformed JSON in the reply"
                else:
                    try:
                        return parse(data), attempt + 1
                    except MalformedReply as exc:
                        last = str(exc)
            elif status in RETRY_STATUS or status >= 500:
                last = f"HTTP {status}{_snippet(response)}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            else:
                raise ProviderError(redact(f"{what}: HTTP {status}{_snippet(response)}", secrets), status=status)
        if attempt < policy.max_retries:
            pause = policy.delay(attempt, retry_after, rng)
            log.info(redact(f"{what}: {last}; retry {attempt + 1}/{policy.max_retries} in {pause:.2f}s", secrets))
            await asyncio.sleep(pause)
    # Not retryable: the retries were spent here; a caller retrying again would only multiply them.
    raise ProviderError(redact(f"{what}: gave up after {policy.max_retries + 1} attempts; last: {last}", secrets))
