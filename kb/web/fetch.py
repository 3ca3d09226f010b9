"""Fetching web pages politely and safely: public addresses only (kb.net.guard), timeouts, a size limit,
content types, bounded redirects, a per-host concurrency limit, a few retries for transient faults, and
the disk cache.

A page that cannot be had is not an exception: ``fetch`` returns a Page with
``error`` set (and ``refused`` when kb would not connect), and research goes on with the others.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from dataclasses import asdict, dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from kb import __version__
from kb.cache import DiskCache
from kb.config import FetchConfig
from kb.net.addresses import AddressPolicy, AddressRefused
from kb.net.client import LoopClients, timeout
from kb.net.guard import GuardedTransport, Resolver
from kb.net.retry import RETRY_STATUS, RetryPolicy, parse_retry_after
from kb.web.extract import EXTRACTOR, extract_html

USER_AGENT = f"kb/{__version__} (knowledge-base compiler; +https://pypi.org/project/kb-compiler/)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain", "text/markdown", "text/x-markdown")
REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class Page:
    url: str  # as requested
    final_url: str  # after redirects: the address the text came from, and the one cited
    title: str | None = None
    text: str = ""  # extracted Markdown
    status: int | None = None
    content_type: str | None = None
    error: str | None = None
    transient: bool = False  # the error may pass (timeouts, 5xx): the page exists, it did not answer now
    refused: str | None = None  # the URL kb would not fetch (it, or a redirect, named a private address or scheme)
    cached: bool = False

    def to_cache(self) -> dict:
        data = asdict(self)
        data.pop("cached")
        return data


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Fetcher:
    """Fetches pages and extracts their text; one instance is shared by every runner of a run."""

    def __init__(
        self,
        config: FetchConfig,
        *,
        cache: DiskCache | None = None,
        resolve: Resolver | None = None,
        network_backend=None,
        rng: random.Random | None = None,
    ) -> None:
        """``resolve`` and ``network_backend`` replace the system resolver and sockets (tests); the address
        check sits between them whatever they are."""
        self.config = config
        self.policy = AddressPolicy(config.allow_private)
        self.cache = cache or DiskCache.disabled()
        self._rng = rng or random.Random()
        self._policy = RetryPolicy(
            max_retries=config.max_retries,
            backoff_s=config.backoff_s,
            backoff_max_s=10.0,
            retry_after_max_s=30.0,
            attempt_timeout_s=config.timeout_s,
        )
        self._clients = LoopClients(
            lambda: httpx.AsyncClient(
                timeout=timeout(config.timeout_s),
                transport=GuardedTransport(self.policy, resolve=resolve, inner=network_backend),
                trust_env=False,  # no proxy from the environment: the guard must see the real destination
                follow_redirects=False,  # followed by hand, to check each hop's scheme and count them
                headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1"},
            )
        )
        # Per loop, per host: asyncio semaphores belong to one event loop.
        self._hosts: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]]" = weakref.WeakKeyDictionary()
        self._pending: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future]]" = weakref.WeakKeyDictionary()
        self.requests_sent = 0

    def _host_slot(self, url: str) -> asyncio.Semaphore:
        per_loop = self._hosts.setdefault(asyncio.get_running_loop(), {})
        host = urlsplit(url).netloc.lower()
        if host not in per_loop:
            per_loop[host] = asyncio.Semaphore(self.config.per_host)
        return per_loop[host]

    def _cache_key(self, url: str) -> dict:
        # The allow list is part of the key: a page fetched while a private host was allowed is not served
        # from the cache once it no longer is.
        return {"url": url, "extractor": EXTRACTOR, "max_bytes": self.config.max_bytes, "max_redirects": self.config.max_redirects,
                "allow_private": sorted(self.config.allow_private)}

    async def fetch(self, url: str) -> Page:
        """The page at ``url`` with its main text extracted; problems are reported in ``Page.error``.

        Runners asking for the same page at once share one request.
        """
        pending = self._pending.setdefault(asyncio.get_running_loop(), {})
        task = pending.get(url)
        if task is None:
            task = pending[url] = asyncio.ensure_future(self._fetch(url))
            task.add_done_callback(lambda _t: pending.pop(url, None))
        page = await asyncio.shield(task)
        return Page(**{**page.to_cache(), "cached": page.cached})

    async def _fetch(self, url: str) -> Page:
        if urlsplit(url).scheme not in ("http", "https"):
            reason = f"not an http(s) URL: {url}"
            return Page(url=url, final_url=url, error=reason, refused=reason)
        key = self._cache_key(url)
        hit = self.cache.get("fetch", key)
        if hit is not None:
            return Page(**hit, cached=True)
        last = ""
        for attempt in range(self._policy.max_retries + 1):
            try:
                async with asyncio.timeout(self.config.timeout_s * 2):
                    page = await self._fetch_once(url)
            except httpx.InvalidURL as exc:
                return Page(url=url, final_url=url, error=f"not a valid URL: {exc}")
            except AddressRefused as exc:
                # Never cached: allowing the host in kb.toml must take effect on the next run.
                return Page(url=url, final_url=exc.url, error=str(exc), refused=exc.reason)
            except _Transient as exc:
                last, retry_after = str(exc), exc.retry_after
            except (httpx.TimeoutException, TimeoutError):
                last, retry_after = "timed out", None
            except httpx.TransportError as exc:
                last, retry_after = f"connection failed ({type(exc).__name__})", None
            else:
                # Definitive answers (a page, a 404, a wrong content type) are cached; transient faults are not.
                self.cache.put("fetch", key, page.to_cache())
                return page
            if attempt < self._policy.max_retries:
                await asyncio.sleep(self._policy.delay(attempt, retry_after, self._rng))
        return Page(url=url, final_url=url, error=f"{last} (after {self._policy.max_retries + 1} attempts)", transient=True)

    async def _fetch_once(self, url: str) -> Page:
        hops = [url]
        try:
            return await self._follow(url, hops)
        except AddressRefused as exc:  # raised by the guard as host:port; said here with the URL and its way there
            via = f" (reached by a redirect from {url})" if len(hops) > 1 else ""
            raise AddressRefused(hops[-1], exc.reason + via) from None

    async def _follow(self, url: str, hops: list[str]) -> Page:
        client = self._clients.get()
        current = url
        for _hop in range(self.config.max_redirects + 1):
            async with self._host_slot(current):
                self.requests_sent += 1
                async with client.stream("GET", current) as response:
                    status = response.status_code
                    if status in REDIRECTS and response.headers.get("location"):
                        target = urljoin(current, response.headers["location"])
                        if urlsplit(target).scheme not in ("http", "https"):
                            reason = f"redirected to a non-http URL: {target}"
                            return Page(url=url, final_url=current, status=status, error=reason, refused=reason)
                        current = target
                        hops.append(current)
                        continue
                    if status in RETRY_STATUS or status >= 500:
                        raise _Transient(f"HTTP {status}", parse_retry_after(response.headers.get("retry-after")))
                    if status >= 400:
                        return Page(url=url, final_url=current, status=status, error=f"HTTP {status}")
                    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if ctype not in HTML_TYPES + TEXT_TYPES:
                        return Page(url=url, final_url=current, status=status, content_type=ctype,
                                    error=f"unsupported content type {ctype or '(none)'}")
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > self.config.max_bytes:
                        return Page(url=url, final_url=current, status=status, content_type=ctype,
                                    error=f"larger than the {self.config.max_bytes}-byte limit ({declared} bytes)")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > self.config.max_bytes:
                            return Page(url=url, final_url=current, status=status, content_type=ctype,
                                        error=f"larger than the {self.config.max_bytes}-byte limit")
                    encoding = response.encoding or "utf-8"
            return await self._extract(url, current, status, ctype, bytes(body), encoding)
        return Page(url=url, final_url=current, error=f"more than {self.config.max_redirects} redirects")

    async def _extract(self, url: str, final: str, status: int, ctype: str, body: bytes, encoding: str) -> Page:
        if ctype in TEXT_TYPES:
            text = body.decode(encoding, errors="replace").strip()
            return Page(url=url, final_url=final, title=None, text=text, status=status, content_type=ctype)
        # trafilatura is CPU work: keep it off the event loop so other runners keep moving.
        extracted = await asyncio.to_thread(extract_html, body, final)
        page = Page(url=url, final_url=final, title=extracted.title, text=extracted.text, status=status, content_type=ctype)
        if not extracted.text:
            page.error = "no readable text on the page"
        return page

    async def aclose(self) -> None:
        await self._clients.aclose()
