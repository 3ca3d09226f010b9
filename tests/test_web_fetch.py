"""The page fetcher against a real loopback site: extraction, limits, redirects, per-host concurrency, cache."""

from __future__ import annotations

import asyncio
import time

import pytest

from kb.cache import DiskCache
from kb.config import FetchConfig
from kb.web.extract import extract_html, split_passages
from kb.web.fetch import Fetcher
from servers import FaultPlan, PageServer
from servers.pages import PAGES, page

CFG = FetchConfig(timeout_s=2.0, max_bytes=200_000, max_redirects=3, per_host=2, backoff_s=0.02,
                  allow_private=["127.0.0.1"])  # the test sites listen on loopback: allowed by name


def fetch(fetcher: Fetcher, *urls: str):
    async def go():
        return await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    return asyncio.run(go())


@pytest.fixture
def site():
    with PageServer() as srv:
        yield srv


def test_extraction_keeps_the_article_and_drops_the_chrome():
    title, html = PAGES["/blog/gradient-checkpointing.html"]
    extracted = extract_html(page(title, html))
    assert "activation recomputation" in extracted.text
    for chrome in ("Sign in", "Accept all", "90% off", "All rights reserved", "Subscribe", "Related posts"):
        assert chrome not in extracted.text
    chunks = split_passages(extracted.text)
    code = [c for chunk in chunks for c in chunk.examples]
    assert any("checkpoint(layer, x, use_reentrant=False)" in c for c in code)
    assert all("use_reentrant" not in c.text or "\\_" not in c.text for c in chunks)  # Markdown escapes undone


def test_fetch_follows_a_redirect_and_cites_the_final_url(site):
    (result,) = fetch(Fetcher(CFG), site.url + "/old/checkpointing")
    assert result.error is None
    assert result.final_url == site.url + "/blog/gradient-checkpointing.html"
    assert result.title == "Gradient checkpointing in PyTorch"


def test_refusals_are_reported_not_raised(site):
    binary, huge, loop, missing = fetch(Fetcher(CFG), *(site.url + p for p in ("/files/weights.bin", "/huge.html", "/loop/a", "/nope.html")))
    assert "unsupported content type application/octet-stream" in binary.error
    assert "200000-byte limit" in huge.error
    assert "more than 3 redirects" in loop.error
    assert missing.error == "HTTP 404"
    assert site.counts["/loop/a"] + site.counts["/loop/b"] == 4  # bounded: the first request and 3 hops


def test_per_host_concurrency_is_bounded(site):
    fetcher = Fetcher(CFG)
    start = time.monotonic()
    results = fetch(fetcher, *(f"{site.url}/slow/{i}" for i in range(6)))
    assert all(r.error is None for r in results)
    assert site.max_inflight <= 2
    assert time.monotonic() - start >= 0.55  # 6 pages of 0.2 s, two at a time


def test_transient_faults_are_retried():
    with PageServer(faults=FaultPlan(queue=["500", "reset"])) as srv:
        (result,) = fetch(Fetcher(CFG), srv.url + "/blog/mixed-precision.html")
        assert result.error is None and "autocast" in result.text
        assert srv.counts["/blog/mixed-precision.html"] == 3


def test_a_hung_server_does_not_hang_the_fetch():
    with PageServer(faults=FaultPlan(rate=1.0, kinds=("hang",)), hang_s=10) as srv:
        cfg = FetchConfig(timeout_s=0.5, max_retries=1, backoff_s=0.01, allow_private=[f"127.0.0.1:{srv.port}"])
        start = time.monotonic()
        (result,) = fetch(Fetcher(cfg), srv.url + "/blog/mixed-precision.html")
        assert result.error and "timed out" in result.error
        assert time.monotonic() - start < 4


def test_cache_answers_pages_and_definitive_failures(site, tmp_path):
    urls = [site.url + "/blog/dataloader-tuning.html", site.url + "/nope.html"]
    first = fetch(Fetcher(CFG, cache=DiskCache(tmp_path)), *urls)
    sent = site.total()
    again = fetch(Fetcher(CFG, cache=DiskCache(tmp_path)), *urls)
    assert site.total() == sent
    assert [p.text for p in again] == [p.text for p in first] and all(p.cached for p in again)
    fetch(Fetcher(CFG, cache=DiskCache(tmp_path, read=False)), *urls)
    assert site.total() == 2 * sent
