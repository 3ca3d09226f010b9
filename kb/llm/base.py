"""What every chat client shares: the reply type, caching, rate limiting, retries, redaction."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from kb.cache import DiskCache
from kb.net.client import LoopClients, timeout
from kb.net.ratelimit import RateLimiter
from kb.net.retry import MalformedReply, ProviderError, RetryPolicy, request_json


@dataclass
class Completion:
    """One reply. ``finish`` is normalised: "stop", "length" (cut off by the token limit) or the raw reason."""

    text: str
    finish: str
    tokens_in: int = 0  # input tokens billed at the full price (a provider's cached prefix is counted apart)
    tokens_out: int = 0
    model: str | None = None
    cache_write: int = 0  # prompt tokens the provider stored in its prompt cache (Anthropic: 1.25x the input price)
    cache_read: int = 0  # prompt tokens read from the provider's prompt cache (Anthropic: 0.1x the input price)
    cached: bool = False
    attempts: int = 0

    def to_cache(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cached")
        data.pop("attempts")
        return data


def estimate_tokens(*texts: str) -> int:
    """A rough token count (4 characters a token) for the rate limiter, before the API says."""
    return sum(len(t) for t in texts) // 4 + 1


class ChatClient:
    """Base of the provider clients: subclasses say where to POST, what to send and how to read the reply."""

    provider = "llm"
    supports_prefill = False  # can the reply continue a trailing assistant message?

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str | None = None,
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        cache: DiskCache | None = None,
        timeout_s: float = 120.0,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.model = model
        self.policy = policy or RetryPolicy(attempt_timeout_s=timeout_s)
        self.limiter = limiter or RateLimiter()
        self.cache = cache or DiskCache.disabled()
        self._rng = rng or random.Random()
        self._clients = LoopClients(
            lambda: httpx.AsyncClient(timeout=timeout(timeout_s), transport=transport, follow_redirects=False)
        )
        self.replies_received = 0  # fresh (uncached) replies, for accounting and tests

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self._api_key,)

    @property
    def what(self) -> str:
        return f"{self.provider} LLM at {self.base_url}"

    # -- provider specifics -------------------------------------------------
    def endpoint(self) -> str:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    def body(self, system: str, messages: list[dict[str, str]], model: str, temperature: float | None, max_tokens: int) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, data: Any) -> Completion:
        raise NotImplementedError

    # -- the call ---------------------------------------------------------------
    async def complete(
        self,
        system: str,
        messages: list[dict[str, str]],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int = 4096,
    ) -> Completion:
        """One chat request (cached by its full body); retried on transient faults."""
        model = model or self.model
        if not model:
            raise ProviderError(f"{self.what}: no model configured (set model in runners/writer.md, kb.toml or --model)")
        body = self.body(system, messages, model, temperature, max_tokens)
        url = self.endpoint()
        key = {"provider": self.provider, "url": url, "body": body}
        hit = self.cache.get("llm", key)
        if hit is not None:
            return Completion(**hit, cached=True)
        estimate = estimate_tokens(system, *(m["content"] for m in messages)) + max_tokens

        def parse(data: Any) -> Completion:
            self.replies_received += 1
            return self.parse(data)

        completion, attempts = await request_json(
            self._clients.get(),
            "POST",
            url,
            what=self.what,
            policy=self.policy,
            secrets=self.secrets,
            parse=parse,
            limiter=self.limiter,
            tokens_estimate=estimate,
            rng=self._rng,
            json=body,
            headers=self.headers(),
        )
        completion.attempts = attempts
        self.limiter.settle(estimate, completion.tokens_in + completion.cache_write + completion.cache_read + completion.tokens_out)
        self.cache.put("llm", key, completion.to_cache())
        return completion

    async def aclose(self) -> None:
        await self._clients.aclose()


def require(condition: bool, message: str) -> None:
    """Raise MalformedReply (which is retried) unless ``condition``."""
    if not condition:
        raise MalformedReply(message)


def as_int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
