"""WebResearcher: a PART's search queries -> web search -> fetched, extracted pages -> ranked passages.

Implements the Researcher protocol of kb.engine.types. Sources are numbered
1..n in the order the sections first use them; only pages (or, for pages that
could not be fetched, search snippets) research really retrieved are sources.
"""

from __future__ import annotations

import asyncio
from datetime import date

from kb.engine.types import ContextDoc, Passage, Research
from kb.net.retry import ProviderError
from kb.plan.model import Part
from kb.records import SourceRef
from kb.web.extract import split_passages
from kb.web.fetch import Fetcher, Page
from kb.web.rank import PassageRanker
from kb.web.search import SearchProvider, SearchResult


def section_query(part: Part, title: str, details: str) -> str:
    """What a section is about, for ranking: its title, its details and the PART's searches."""
    return " ".join([title, details, *part.searches]).strip()


class WebResearcher:
    """Searches each query of a PART, fetches the best pages, and ranks their passages per section."""

    def __init__(
        self,
        provider: SearchProvider,
        fetcher: Fetcher,
        *,
        pages_per_query: int = 3,
        passages_per_section: int = 3,
        passage_chars: int = 900,
    ) -> None:
        self.provider = provider
        self.fetcher = fetcher
        self.name = provider.name
        self.pages_per_query = pages_per_query
        self.passages_per_section = passages_per_section
        self.passage_chars = passage_chars

    async def _search(self, query: str) -> tuple[str, list[SearchResult] | ProviderError]:
        try:
            return query, await self.provider.search(query)
        except ProviderError as exc:
            return query, exc

    async def research(self, part: Part, context: list[ContextDoc]) -> Research:
        """Ranked web passages for each planned section of ``part``, and the numbered sources they come from."""
        queries = list(dict.fromkeys(q.strip() for q in part.searches if q.strip())) or [part.title]
        warnings: list[str] = []
        answers = await asyncio.gather(*(self._search(q) for q in queries))
        hits: dict[str, SearchResult] = {}
        failed = 0
        log: dict[str, list] = {"searched": [], "read": [], "refused": []}
        for query, answer in answers:
            if isinstance(answer, ProviderError):
                failed += 1
                warnings.append(f"search {query!r} failed: {answer}")
                log["searched"].append({"query": query, "error": str(answer)})
                continue
            if not answer:
                warnings.append(f"search {query!r} found nothing")
            log["searched"].append({"query": query, "results": [r.url for r in answer]})
            for result in answer[: self.pages_per_query]:
                hits.setdefault(result.url, result)
        if failed == len(queries):
            raise ProviderError(f"research failed: every search failed ({warnings[0] if warnings else ''})")

        pages: list[Page] = await asyncio.gather(*(self.fetcher.fetch(url) for url in hits))
        candidates: list[Passage] = []
        for page in pages:
            hit = hits[page.url]
            if page.refused:
                log["refused"].append({"url": page.final_url, "reason": page.refused,
                                       **({"found_as": page.url} if page.url != page.final_url else {})})
            else:
                log["read"].append({"url": page.url, "final_url": page.final_url, "status": page.status,
                                    **({"error": page.error} if page.error else {})})
            if page.error:
                warnings.append(f"page {page.url} not used: {page.error}")
                if page.transient and hit.snippet.strip():
                    # The page exists but did not answer now: the search engine's excerpt of it is
                    # still something research retrieved. A 404 or a binary file is not cited at all.
                    candidates.append(Passage(kind="web", locator=hit.url, title=hit.title, text=hit.snippet.strip()))
                continue
            title = page.title or hit.title
            for chunk in split_passages(page.text, self.passage_chars):
                text = f"{chunk.heading}: {chunk.text}" if chunk.heading and chunk.text else (chunk.text or chunk.heading or "")
                candidates.append(Passage(kind="web", locator=page.final_url, title=title, text=text, examples=chunk.examples))

        sections = [(s.number, s.title, s.details) for s in part.sections] or [(0, part.title, "")]
        ranker = PassageRanker(candidates)
        by_section: dict[int, list[Passage]] = {}
        for number, title, details in sections:
            query = section_query(part, title, details)
            ranked = ranker.rank(query, self.passages_per_section)
            chosen = []
            for index, score in ranked:
                base = candidates[index]
                chosen.append(Passage(kind=base.kind, locator=base.locator, title=base.title, text=base.text,
                                      score=score, examples=list(base.examples), query=query))
            by_section[number] = chosen
            if not chosen:
                warnings.append(f"section {number} ({title}): no web passage matched")

        today = date.today().isoformat()
        sources: list[SourceRef] = []
        for number, _title, _details in sections:
            for passage in by_section[number]:
                if not any(s.locator == passage.locator for s in sources):
                    sources.append(SourceRef(id=len(sources) + 1, title=passage.title, kind="web", locator=passage.locator, accessed=today))
        return Research(by_section=by_section, sources=sources, warnings=warnings, log=log)


def build_web_researcher(workspace, search: str, *, no_cache: bool = False, transport=None, **_other) -> WebResearcher:
    """The ``searxng``/``tavily``/``brave`` researcher for a workspace, configured from kb.toml.

    Takes build_engine's overrides as they come; the ones meant for other engines are ignored.
    """
    from kb.cache import DiskCache
    from kb.config import SearchProviderConfig
    from kb.errors import ConfigError
    from kb.net.ratelimit import shared_limiter
    from kb.net.secrets import read_key
    from kb.web.search import PROVIDERS

    if search not in PROVIDERS:
        raise ConfigError(f"unknown search provider {search!r} (choose from {', '.join(PROVIDERS)})")
    config = workspace.config
    provider_cfg = config.search.get(search)
    if provider_cfg is None:
        if search == "searxng":
            raise ConfigError("search = \"searxng\" needs [search.searxng] with url = \"http://your-instance\" in kb.toml")
        provider_cfg = SearchProviderConfig(api_key_env=f"{search.upper()}_API_KEY")
    cls = PROVIDERS[search]
    key = read_key(provider_cfg.api_key_env, f"[search.{search}]")
    cache = DiskCache.for_workspace(workspace.state_dir, no_cache=no_cache)
    limiter = shared_limiter(search, provider_cfg.url or cls.default_url or "", provider_cfg.requests_per_minute, None)
    provider = cls(provider_cfg, api_key=key, cache=cache, limiter=limiter, transport=transport)
    # No transport for the fetcher: its connections always go through the address guard (kb.net.guard).
    fetcher = Fetcher(config.fetch, cache=cache)
    return WebResearcher(provider, fetcher, pages_per_query=config.fetch.pages_per_query,
                         passages_per_section=config.run.passages_per_section)
