"""Web search providers over httpx: SearXNG (self-hosted JSON API), Tavily and Brave.

Each answers a query with a list of {title, url, snippet}; requests are cached
on disk by provider + endpoint + parameters (never the key), rate limited per
provider and retried on transient faults.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from kb.cache import DiskCache
from kb.config import SearchProviderConfig
from kb.net.client import LoopClients, timeout
from kb.net.ratelimit import RateLimiter
from kb.net.retry import MalformedReply, RetryPolicy, request_json


@dataclass
class SearchResult:
    title: str
    url: str
    snippet: str


class SearchProvider:
    """Base: subclasses say how to ask and how to read the answer."""

    name = "search"
    default_url: str | None = None

    def __init__(
        self,
        config: SearchProviderConfig,
        *,
        api_key: str | None = None,
        cache: DiskCache | None = None,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url = config.url or self.default_url
        if not url:
            from kb.errors import ConfigError

            raise ConfigError(f"search provider {self.name}: set url in [search.{self.name}] of kb.toml")
        self.base_url = url.rstrip("/")
        self.config = config
        self._api_key = api_key
        self.cache = cache or DiskCache.disabled()
        self.limiter = limiter or RateLimiter(config.requests_per_minute)
        self.policy = RetryPolicy(
            max_retries=config.max_retries,
            backoff_s=config.backoff_s,
            backoff_max_s=20.0,
            retry_after_max_s=30.0,
            attempt_timeout_s=config.timeout_s,
        )
        self._rng = rng or random.Random()
        self._clients = LoopClients(lambda: httpx.AsyncClient(timeout=timeout(config.timeout_s), transport=transport))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.base_url!r})"

    def request(self, query: str) -> tuple[str, str, dict[str, Any]]:
        """(method, url, httpx kwargs without auth headers)."""
        raise NotImplementedError

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def items(self, data: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def parse(self, data: Any) -> list[SearchResult]:
        if not isinstance(data, dict):
            raise MalformedReply("the search reply is not a JSON object")
        items = self.items(data)
        if not isinstance(items, list):
            raise MalformedReply("the search reply has no result list")
        out: list[SearchResult] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            url = str(item.get("url") or "")
            if urlsplit(url).scheme not in ("http", "https"):
                continue
            snippet = item.get("content") or item.get("description") or item.get("snippet") or ""
            out.append(SearchResult(title=str(item.get("title") or url), url=url, snippet=str(snippet)))
        return out[: self.config.results]

    async def search(self, query: str) -> list[SearchResult]:
        """Up to ``results`` hits for ``query`` (from the cache when this exact request was made before)."""
        method, url, kwargs = self.request(query)
        key = {"provider": self.name, "method": method, "url": url, **{k: v for k, v in kwargs.items() if k != "headers"}}
        hit = self.cache.get("search", key)
        if hit is not None:
            return [SearchResult(**r) for r in hit]
        headers = {**kwargs.pop("headers", {}), **self.auth_headers()}
        results, _attempts = await request_json(
            self._clients.get(),
            method,
            url,
            what=f"{self.name} search at {self.base_url}",
            policy=self.policy,
            secrets=(self._api_key,),
            parse=self.parse,
            limiter=self.limiter,
            rng=self._rng,
            headers=headers,
            **kwargs,
        )
        self.cache.put("search", key, [asdict(r) for r in results])
        return results

    async def aclose(self) -> None:
        await self._clients.aclose()


class SearXNG(SearchProvider):
    """``GET {url}/search?q=...&format=json`` (the instance must enable the json format in settings.yml)."""

    name = "searxng"

    def request(self, query):
        return "GET", f"{self.base_url}/search", {"params": {"q": query, "format": "json", "pageno": 1}}

    def items(self, data):
        return data.get("results")


class Tavily(SearchProvider):
    """``POST https://api.tavily.com/search`` with a Bearer key."""

    name = "tavily"
    default_url = "https://api.tavily.com"

    def request(self, query):
        body = {"query": query, "max_results": self.config.results, "search_depth": "basic"}
        return "POST", f"{self.base_url}/search", {"json": body}

    def items(self, data):
        return data.get("results")


class Brave(SearchProvider):
    """``GET https://api.search.brave.com/res/v1/web/search`` with ``X-Subscription-Token``."""

    name = "brave"
    default_url = "https://api.search.brave.com"

    def request(self, query):
        return (
            "GET",
            f"{self.base_url}/res/v1/web/search",
            {"params": {"q": query, "count": self.config.results}, "headers": {"Accept": "application/json"}},
        )

    def auth_headers(self):
        return {"X-Subscription-Token": self._api_key} if self._api_key else {}

    def items(self, data):
        web = data.get("web")
        if web is None:  # no web results at all is an empty answer, not a malformed one
            return []
        return web.get("results") if isinstance(web, dict) else None


PROVIDERS: dict[str, type[SearchProvider]] = {"searxng": SearXNG, "tavily": Tavily, "brave": Brave}
