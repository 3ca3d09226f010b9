"""WebResearcher: per section, questions -> web search -> fetched, extracted pages -> ranked passages.

Implements the Researcher protocol of kb.engine.types. Each section gets its own
questions (from the research model, ``runners/researcher.md``, or the plan's words),
and follow-up questions while it is thin, within the PART's budget. Sources are
numbered 1..n in the order the sections first use them; only pages (or, for pages
that could not be fetched, search snippets) research really retrieved are sources.
Everything asked, searched, read, refused and kept goes into ``Research.log`` (the drop).
"""

from __future__ import annotations

import asyncio
from datetime import date

from kb.config import ResearchConfig
from kb.corpus.tokenize import terms
from kb.engine.types import ContextDoc, Passage, Research
from kb.net.retry import ProviderError
from kb.plan.model import Part, Section
from kb.web.budget import KINDS, Budget, merge_limits
from kb.web.planner import QuestionPlanner
from kb.records import SourceRef
from kb.web.extract import split_passages
from kb.web.fetch import Fetcher, Page
from kb.web.rank import PassageRanker
from kb.web.search import SearchProvider, SearchResult


def section_terms(title: str, details: str) -> list[str]:
    """What a section is about, as search terms: its title and the plan's details for it."""
    return terms(f"{title} {details}")


def serves(passage_terms: set[str], wanted: list[str], min_overlap: float) -> bool:
    """Whether a passage is about the section: it holds enough of the section's words, and never only one
    (a passage sharing one word with the title fills nothing)."""
    if not wanted:
        return True
    shared = sum(1 for t in wanted if t in passage_terms)
    return shared / len(wanted) >= min_overlap and shared >= min(2, len(wanted))


class WebResearcher:
    """Researches a PART section by section: questions (the model's, or the plan's words), searches, pages,
    passages ranked per section; follow-up questions where a section is still thin; all within a budget."""

    def __init__(
        self,
        provider: SearchProvider,
        fetcher: Fetcher,
        *,
        pages_per_query: int = 3,
        passages_per_section: int = 3,
        passage_chars: int = 900,
        planner: QuestionPlanner | None = None,
        settings: ResearchConfig | None = None,
        limits: dict | None = None,
        prices: dict | None = None,
    ) -> None:
        self.provider = provider
        self.fetcher = fetcher
        self.name = provider.name
        self.pages_per_query = pages_per_query
        self.passages_per_section = passages_per_section
        self.passage_chars = passage_chars
        self.planner = planner
        self.settings = settings or ResearchConfig()
        self.limits = merge_limits(limits)
        self.prices = prices or {}

    async def _search(self, query: str) -> tuple[str, list[SearchResult] | ProviderError]:
        try:
            return query, await self.provider.search(query)
        except ProviderError as exc:
            return query, exc

    async def research(self, part: Part, context: list[ContextDoc], *, plan_title: str | None = None) -> Research:
        """Ranked web passages for each planned section of ``part``, and the numbered sources they come from."""
        run = _Run(self, part, plan_title)
        sections = part.sections or [Section(number=0, title=part.title, details="", line=0)]
        plan_queries = [(q, None, "the plan") for q in dict.fromkeys(q.strip() for q in part.searches if q.strip())]
        asked = await asyncio.gather(*(run.questions(section, follow_up=False) for section in sections))
        await run.search([*plan_queries, *(q for questions in asked for q in questions)])
        if run.searched and run.failed == run.searched:
            raise ProviderError(f"research failed: every search failed ({run.warnings[0] if run.warnings else ''})")
        chosen = run.rank(sections)
        for _round in range(self.settings.follow_up_rounds):
            thin = [s for s in sections if len(chosen[s.number]) < self.passages_per_section]
            if 1 - len(thin) / len(sections) >= self.settings.coverage or run.budget.stopped or not thin:
                break
            follow = [q for questions in await asyncio.gather(*(
                run.questions(s, follow_up=True, found=chosen[s.number]) for s in thin)) for q in questions]
            if not follow or not await run.search(follow):
                break
            chosen = run.rank(sections)
        return run.finish(sections, chosen)


PLAN_WORDS = QuestionPlanner(None, None, model=None, temperature=None, max_tokens=0, perspectives=[])  # type: ignore[arg-type]


class _Run:
    """One PART's research: what was asked, searched, read, refused and kept, and the budget spent."""

    def __init__(self, researcher: WebResearcher, part: Part, plan_title: str | None) -> None:
        self.r = researcher
        self.part = part
        self.plan_title = plan_title
        self.budget = Budget(limits=dict(researcher.limits))
        self.warnings: list[str] = []
        self.log: dict = {"questions": [], "searched": [], "read": [], "refused": []}
        self.hits: dict[str, SearchResult] = {}
        self.pages: dict[str, Page] = {}
        self.candidates: list[Passage] = []
        self.asked: dict[int, list[str]] = {}
        self.done: set[str] = set()
        self.searched = 0
        self.failed = 0
        self.tokens = {"input": 0, "output": 0, "calls": 0}
        self.model_down = False

    async def questions(self, section, *, follow_up: bool, found: list[Passage] = ()) -> list[tuple[str, int, str]]:
        planner = self.r.planner
        n = self.r.settings.questions_per_section if not follow_up else max(1, self.r.settings.questions_per_section - 1)
        if planner is None or self.model_down or (
                planner.uses_model and not (self.budget.allows("tokens", 1) and self.budget.allows("usd", 1e-9))):
            planner = PLAN_WORDS  # no model, it is down, or its budget is spent: the plan's own words are the questions
        seen = [" ".join(p.text.split()[:16]) for p in found]  # research's passages open with their heading
        try:
            questions, tokens_in, tokens_out, notes = await planner.ask(
                self.part, section, n=n, plan_title=self.plan_title, found=seen, follow_up=follow_up)
        except ProviderError as exc:
            # Its retries are spent: asking again for the next section would only wait as long again.
            if not self.model_down:
                self.warnings.append(f"the research model gave no questions ({exc}); the plan's words were searched instead")
            self.model_down = True
            planner = PLAN_WORDS
            questions, tokens_in, tokens_out, notes = await planner.ask(self.part, section, n=n, follow_up=follow_up)
        self.warnings += notes
        self.budget.spend("tokens", tokens_in + tokens_out)
        self.tokens["input"] += tokens_in
        self.tokens["output"] += tokens_out
        self.tokens["calls"] += 1 if planner.uses_model else 0
        if planner.uses_model and planner.model:
            from kb.engine.llm_writer import cost_usd  # one price table for every model call

            self.budget.spend("usd", cost_usd(self.r.prices, planner.model, tokens_in, tokens_out) or 0.0)
        for q in questions:
            self.log["questions"].append({"section": q.section, "perspective": q.perspective, "query": q.query,
                                          **({"follow_up": True} if follow_up else {})})
            self.asked.setdefault(section.number, []).append(q.query)
        return [(q.query, q.section, q.perspective) for q in questions]

    async def search(self, queries: list[tuple[str, int | None, str]]) -> int:
        """Search what was not searched yet (within the budget), fetch the new pages; returns the searches made."""
        todo = []
        for query, section, perspective in queries:
            if query.lower() in self.done:
                continue
            if not self.budget.allows("searches"):
                break
            self.budget.spend("searches", 1)
            self.done.add(query.lower())
            todo.append((query, section))
        answers = await asyncio.gather(*(self.r._search(q) for q, _s in todo))
        for (query, section), (_q, answer) in zip(todo, answers):
            self.searched += 1
            where = {"section": section} if section is not None else {}
            if isinstance(answer, ProviderError):
                self.failed += 1
                self.warnings.append(f"search {query!r} failed: {answer}")
                self.log["searched"].append({"query": query, **where, "error": str(answer)})
                continue
            if not answer:
                self.warnings.append(f"search {query!r} found nothing")
            self.log["searched"].append({"query": query, **where, "results": [r.url for r in answer]})
            for result in answer[: self.r.pages_per_query]:
                self.hits.setdefault(result.url, result)
        new = []
        for url in self.hits:
            if url in self.pages or url in new:
                continue
            if not self.budget.allows("pages"):
                break
            self.budget.spend("pages", 1)
            new.append(url)
        for page in await asyncio.gather(*(self.r.fetcher.fetch(url) for url in new)):
            self._take(page)
        return len(todo)

    def _take(self, page: Page) -> None:
        self.pages[page.url] = page
        hit = self.hits[page.url]
        if page.refused:
            self.log["refused"].append({"url": page.final_url, "reason": page.refused,
                                        **({"found_as": page.url} if page.url != page.final_url else {})})
        else:
            self.log["read"].append({"url": page.url, "final_url": page.final_url, "status": page.status,
                                     **({"error": page.error} if page.error else {})})
        if page.error:
            self.warnings.append(f"page {page.url} not used: {page.error}")
            if page.transient and hit.snippet.strip():
                # The page exists but did not answer now: the search engine's excerpt of it is
                # still something research retrieved. A 404 or a binary file is not cited at all.
                self.candidates.append(Passage(kind="web", locator=hit.url, title=hit.title, text=hit.snippet.strip()))
            return
        title = page.title or hit.title
        for chunk in split_passages(page.text, self.r.passage_chars):
            text = f"{chunk.heading}: {chunk.text}" if chunk.heading and chunk.text else (chunk.text or chunk.heading or "")
            self.candidates.append(Passage(kind="web", locator=page.final_url, title=title, text=text,
                                           examples=chunk.examples))

    def rank(self, sections) -> dict[int, list[Passage]]:
        """The best passages for each section, ranked by its own words and questions, about it or not at all."""
        ranker = PassageRanker(self.candidates)
        passage_terms = [set(terms(f"{p.title} {p.text}")) for p in self.candidates]
        chosen: dict[int, list[Passage]] = {}
        for s in sections:
            wanted = section_terms(s.title, s.details)
            query = " ".join([s.title, s.details, *self.asked.get(s.number, [])]).strip()
            picked = []
            for index, score in ranker.rank(query, max(self.r.passages_per_section * 4, 12)):
                if not serves(passage_terms[index], wanted, self.r.settings.min_overlap):
                    continue
                base = self.candidates[index]
                picked.append(Passage(kind=base.kind, locator=base.locator, title=base.title, text=base.text,
                                      score=score, examples=list(base.examples), query=query))
                if len(picked) == self.r.passages_per_section:
                    break
            chosen[s.number] = picked
        return chosen

    def finish(self, sections, chosen: dict[int, list[Passage]]) -> Research:
        for s in sections:
            if not chosen[s.number]:
                self.warnings.append(f"section {s.number} ({s.title}): no web passage matched")
        if self.budget.stopped:
            self.warnings.append(f"research stopped early: {self.budget.stopped}")
        today = date.today().isoformat()
        sources: list[SourceRef] = []
        for s in sections:
            for passage in chosen[s.number]:
                if not any(x.locator == passage.locator for x in sources):
                    sources.append(SourceRef(id=len(sources) + 1, title=passage.title, kind="web", locator=passage.locator,
                                             accessed=today))
        self.log["kept"] = [{"section": s.number, "passages": [p.locator for p in chosen[s.number]]} for s in sections]
        self.log["budget"] = self.budget.record()
        if self.tokens["input"] or self.tokens["output"]:
            usage = {**self.tokens, "cost_usd": round(self.budget.spent["usd"], 6)} if self.budget.spent["usd"] else self.tokens
            self.log["usage"] = {"research": usage}
        return Research(by_section=chosen, sources=sources, warnings=self.warnings, log=self.log)


def load_researcher_definition(runners_dir):
    """The workspace's ``runners/researcher.md`` (kb's built-in one when it has none), its settings checked."""
    from pathlib import Path

    from kb.errors import ConfigError
    from kb.runners import builtin_runner, load_runner

    path = Path(runners_dir) / "researcher.md" if runners_dir is not None else None
    definition = load_runner(path) if path is not None and path.is_file() else builtin_runner("researcher")
    perspectives = definition.extra.get("perspectives", [])
    if not isinstance(perspectives, list) or not all(isinstance(p, str) and p.strip() for p in perspectives):
        raise ConfigError(f"{definition.path}: 'perspectives' must be a list of points of view (text)")
    budget = definition.extra.get("budget") or {}
    if not isinstance(budget, dict) or any(k not in KINDS for k in budget) or any(
            isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in budget.values()):
        raise ConfigError(f"{definition.path}: 'budget' takes non-negative numbers for {', '.join(KINDS)}")
    return definition


def build_web_researcher(workspace, search: str, *, no_cache: bool = False, transport=None, engine: str | None = None,
                         model: str | None = None, budget: dict | None = None, **_other) -> WebResearcher:
    """The ``searxng``/``tavily``/``brave`` researcher for a workspace, configured from kb.toml and
    runners/researcher.md; with an LLM ``engine``, that model asks each section's questions.

    Budget limits: researcher.md ``budget:``, then kb.toml ``[research]``, then ``budget`` (the command line).
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
    definition = load_researcher_definition(workspace.runners_dir)
    research = config.research
    limits = merge_limits(definition.extra.get("budget"), research.model_dump(include=set(KINDS)), budget)
    planner = None
    if engine in ("openai", "anthropic"):
        from kb.engine.llm_writer import DEFAULTS, make_client

        llm = config.llm.get(engine) or DEFAULTS[engine]
        model_name = definition.model or model or llm.model
        if model_name:
            client = make_client(engine, llm, cache=cache, transport=transport)
            planner = QuestionPlanner(client, definition, model=model_name, temperature=definition.temperature,
                                      max_tokens=definition.max_tokens or 1024,
                                      perspectives=list(definition.extra.get("perspectives") or []))
    return WebResearcher(provider, fetcher, pages_per_query=config.fetch.pages_per_query,
                         passages_per_section=config.run.passages_per_section, planner=planner, settings=research,
                         limits=limits, prices=config.prices)
