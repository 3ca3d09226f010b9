"""SearXNG, Tavily and Brave over httpx against loopback endpoints shaped like each API."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from kb.cache import DiskCache
from kb.config import SearchProviderConfig
from kb.net.retry import ProviderError
from kb.web.search import Brave, SearXNG, Tavily
from servers import FaultPlan, LoopbackServer, PageServer, SearchServer
from servers.base import json_reply

KEY = "tvly-SECRET-search-key-0123456789"


class ApiShaped(LoopbackServer):
    """Answers Tavily's POST /search and Brave's GET /res/v1/web/search, checking their auth headers."""

    def handle(self, method, path, query, headers, body):
        h = {k.lower(): v for k, v in headers.items()}
        if path == "/search" and method == "POST":
            if h.get("authorization") != f"Bearer {KEY}":
                return json_reply({"detail": {"error": f"Unauthorized: {h.get('authorization')}"}}, 401)
            q = json.loads(body)["query"]
            return json_reply({"query": q, "results": [
                {"title": "T1", "url": "https://a.example/1", "content": f"about {q}", "score": 0.9},
                {"title": "bad", "url": "javascript:alert(1)", "content": "x"}]})
        if path == "/res/v1/web/search":
            if h.get("x-subscription-token") != KEY:
                return json_reply({"error": "bad token"}, 401)
            return json_reply({"type": "search", "web": {"results": [
                {"title": "B1", "url": "https://b.example/1", "description": "brave says"}]}})
        return 404, {}, b""


def cfg(url: str, **kw) -> SearchProviderConfig:
    return SearchProviderConfig(**{"url": url, "max_retries": 6, "backoff_s": 0.02, "timeout_s": 5.0, **kw})


def test_searxng_json_api():
    with PageServer() as pages, SearchServer(pages.pages, pages.url) as srv:
        results = asyncio.run(SearXNG(cfg(srv.url)).search("gradient checkpointing"))
        assert results and results[0].url == pages.url + "/blog/gradient-checkpointing.html"
        assert results[0].title == "Gradient checkpointing in PyTorch" and results[0].snippet
        assert "format=json" in srv.log[0]["query"]


def test_tavily_and_brave_send_their_keys_and_map_results(tmp_path):
    with ApiShaped() as srv:
        cache = DiskCache(tmp_path)
        tavily = asyncio.run(Tavily(cfg(srv.url), api_key=KEY, cache=cache).search("amp"))
        brave = asyncio.run(Brave(cfg(srv.url), api_key=KEY, cache=cache).search("amp"))
        assert [(r.title, r.url, r.snippet) for r in tavily] == [("T1", "https://a.example/1", "about amp")]
        assert [(r.title, r.url, r.snippet) for r in brave] == [("B1", "https://b.example/1", "brave says")]
        with pytest.raises(ProviderError) as err:
            asyncio.run(Tavily(cfg(srv.url), api_key=KEY + "-wrong").search("amp"))
        assert "401" in str(err.value) and KEY not in str(err.value)
    for f in tmp_path.rglob("*.json"):
        assert KEY not in f.read_text()


def test_searches_survive_thirty_percent_faults():
    faults = FaultPlan(rate=0.3, kinds=("500", "429", "hang", "garbage"), seed=7)
    with PageServer() as pages, SearchServer(pages.pages, pages.url, faults=faults, hang_s=5) as srv:
        provider = SearXNG(cfg(srv.url, timeout_s=1.0))  # a hung request costs 1 s, then is retried

        async def many():
            return await asyncio.gather(*(provider.search(q) for q in ("memory", "dataloader", "precision", "batch", "checkpointing", "profiling")))

        answers = asyncio.run(many())
        assert all(answers)
        assert sum(srv.faults_injected.values()) > 0


def test_search_cache_avoids_a_second_request(tmp_path):
    with PageServer() as pages, SearchServer(pages.pages, pages.url) as srv:
        asyncio.run(SearXNG(cfg(srv.url), cache=DiskCache(tmp_path)).search("memory"))
        asyncio.run(SearXNG(cfg(srv.url), cache=DiskCache(tmp_path)).search("memory"))
        assert srv.total() == 1


def _researcher(search_url: str, **cfg_kw):
    from kb.config import FetchConfig
    from kb.web.fetch import Fetcher
    from kb.web.research import WebResearcher

    # The test sites listen on loopback, which kb fetches only when allowed by name.
    fetcher = Fetcher(FetchConfig(timeout_s=5.0, backoff_s=0.01, max_retries=0, allow_private=["127.0.0.1"]))
    return WebResearcher(SearXNG(cfg(search_url, results=10, **cfg_kw)), fetcher, pages_per_query=10,
                         passages_per_section=2)


def test_web_research_numbers_the_sources_it_ranked():
    from kb.plan import parse_plan
    from servers.fixtures import PLAN

    part = parse_plan(PLAN, "plans/training.md").part(1)
    with PageServer() as pages:
        broken = {"title": "Gone page", "url": pages.url + "/gone.html", "content": "gradient checkpointing memory gone"}
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        down_url = f"http://127.0.0.1:{sock.getsockname()[1]}/down.html"
        sock.close()  # a site that is down now: its search snippet is used instead
        down = {"title": "Offloading notes", "url": down_url, "content": "CPU offloading: ZeRO-Offload optimizer states"}
        with SearchServer(pages.pages, pages.url, extra=[broken, down]) as srv:
            research = asyncio.run(_researcher(srv.url).research(part, []))
    assert sorted(research.by_section) == [1, 2, 3]
    assert [s.id for s in research.sources] == list(range(1, len(research.sources) + 1))
    located = {s.locator for s in research.sources}
    for passages in research.by_section.values():
        assert 0 < len(passages) <= 2
        assert all(p.locator in located and p.kind == "web" and p.score > 0 for p in passages)
    assert research.by_section[1][0].locator.endswith("/blog/gradient-checkpointing.html")
    assert any("gone.html not used: HTTP 404" in w for w in research.warnings)
    assert not any(s.locator.endswith("/gone.html") for s in research.sources)  # a 404 is never cited
    assert any(p.locator == down_url and "ZeRO-Offload" in p.text for p in research.by_section[3])


def test_web_research_fails_when_every_search_fails():
    from kb.plan import parse_plan
    from servers.fixtures import PLAN

    part = parse_plan(PLAN, "plans/training.md").part(2)
    with PageServer() as pages, SearchServer(pages.pages, pages.url, faults=FaultPlan(rate=1.0, kinds=("500",))) as srv:
        with pytest.raises(ProviderError, match="every search failed"):
            asyncio.run(_researcher(srv.url, max_retries=1).research(part, []))
