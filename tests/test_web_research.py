"""Web research per section: the model's questions from several points of view, follow-ups where a section is
thin, the PART's budget (researcher.md, kb.toml, the command line), and everything it did in the drop."""

from __future__ import annotations

import asyncio

import pytest

from kb.config import FetchConfig, ResearchConfig, SearchProviderConfig
from kb.plan import parse_plan
from kb.records import read_drop
from kb.web.budget import Budget, merge_limits
from kb.web.fetch import Fetcher
from kb.web.planner import Question, parse_questions
from kb.web.research import WebResearcher, build_web_researcher
from kb.web.search import SearXNG
from servers import LLMServer, PageServer, SearchServer
from servers.fixtures import KEY_ENV, PLAN, make_workspace

KEY = "sk-research-SECRET-0123456789abcdef"


class ScriptedPlanner:
    """Asks fixed questions: ``first`` for a section's first round, ``more`` for its follow-ups."""

    uses_model = True
    model = None

    def __init__(self, first: dict[int, list[str]], more: dict[int, list[str]]) -> None:
        self.first, self.more = first, more
        self.calls: list[tuple[int, bool, list[str]]] = []

    async def ask(self, part, section, *, n, plan_title=None, found=None, follow_up=False):
        self.calls.append((section.number, follow_up, list(found or [])))
        queries = (self.more if follow_up else self.first).get(section.number, [])
        return [Question(q, "scripted", section.number) for q in queries], 10, 5, []


def researcher(search_url: str, planner=None, **settings) -> WebResearcher:
    fetcher = Fetcher(FetchConfig(timeout_s=5.0, backoff_s=0.01, max_retries=0, allow_private=["127.0.0.1"]))
    limits = {k: settings.pop(k) for k in ("searches", "pages", "tokens", "usd") if k in settings}
    return WebResearcher(SearXNG(SearchProviderConfig(url=search_url, results=5)), fetcher, planner=planner,
                         settings=ResearchConfig(**settings), limits=limits, passages_per_section=2)


def part(number: int = 1):
    return parse_plan(PLAN, "plans/training.md").part(number)


def test_a_thin_section_gets_follow_up_questions():
    planner = ScriptedPlanner(first={1: ["gradient checkpointing recomputation"], 2: ["memory_summary OOM debugging"],
                                     3: ["unrelated words nothing matches"]},
                              more={3: ["ZeRO-Offload optimizer states CPU offloading"]})
    with PageServer() as pages, SearchServer(pages.pages, pages.url) as srv:
        found = asyncio.run(researcher(srv.url, planner, follow_up_rounds=1).research(part(1), []))
    assert [(n, follow) for n, follow, _ in planner.calls] == [(1, False), (2, False), (3, False), (3, True)]
    # Told what section 3 had so far: one forum passage (the plan's searches found it), fewer than the 2 wanted.
    assert [f.split(":")[0] for f in planner.calls[-1][2]] == ["Ten memory tricks for training (forum)"]
    assert found.by_section[3] and all("ZeRO-Offload" in p.text for p in found.by_section[3])
    assert {q["query"] for q in found.log["questions"] if q.get("follow_up")} == {"ZeRO-Offload optimizer states CPU offloading"}
    searched = [s["query"] for s in found.log["searched"]]
    assert searched[:2] == part(1).searches and "ZeRO-Offload optimizer states CPU offloading" in searched
    assert found.log["usage"]["research"] == {"input": 40, "output": 20, "calls": 4}
    assert found.log["kept"][2]["passages"]


def test_a_passage_sharing_one_word_with_the_section_fills_nothing():
    planner = ScriptedPlanner(first={3: ["memory"]}, more={})
    only_profiling = {k: v for k, v in PageServer().pages.items() if "profiling" in k or "dataloader" in k}
    with PageServer(pages=only_profiling) as pages, SearchServer(pages.pages, pages.url) as srv:
        found = asyncio.run(researcher(srv.url, planner, follow_up_rounds=1).research(part(1), []))
    # "CPU offloading (ZeRO-Offload optimizer states)": the profiling page says "memory" and "CPU", not offloading.
    assert found.by_section[3] == []
    assert any(w.startswith("section 3 (CPU offloading): no web passage matched") for w in found.warnings)


def test_the_budget_stops_research_and_says_why():
    planner = ScriptedPlanner(first={n: [f"q{n} a", f"q{n} b", f"q{n} c"] for n in (1, 2, 3)},
                              more={n: ["more"] for n in (1, 2, 3)})
    with PageServer() as pages, SearchServer(pages.pages, pages.url) as srv:
        found = asyncio.run(researcher(srv.url, planner, searches=4, pages=2).research(part(1), []))
        assert srv.total() == 4
    assert len(found.log["searched"]) == 4 and len(found.log["read"]) <= 2 and pages.total() <= 2
    budget = found.log["budget"]
    assert budget["limits"] == {"searches": 4, "pages": 2} and budget["spent"]["searches"] == 4
    assert "budget" in budget["stopped"] and any(w.startswith("research stopped early") for w in found.warnings)


def test_a_spent_token_budget_falls_back_to_the_plan_words():
    planner = ScriptedPlanner(first={n: ["gradient checkpointing"] for n in (1, 2, 3)}, more={})
    with PageServer() as pages, SearchServer(pages.pages, pages.url) as srv:
        found = asyncio.run(researcher(srv.url, planner, tokens=15).research(part(1), []))
    assert len(planner.calls) == 1  # 15 tokens: one call (10 + 5), then the plan's own words
    assert [q["perspective"] for q in found.log["questions"]][1:] == ["the plan", "the plan"]


def test_budget_limits_layer_runner_then_kb_toml_then_command_line():
    assert merge_limits({"searches": 30, "pages": 40}, {"searches": 10, "tokens": None}, {"pages": 5}) == {
        "searches": 10, "pages": 5, "tokens": None, "usd": None}
    budget = Budget(limits={"searches": 1, "pages": None, "tokens": None, "usd": 0.5})
    assert budget.allows("searches") and budget.allows("pages", 10 ** 6)
    budget.spend("searches", 1)
    assert not budget.allows("searches") and budget.stopped == "the searches budget (1) is spent"


def test_questions_are_read_from_json_or_lines():
    reply = 'Here you go:\n[{"perspective": "docs", "query": "torch.utils.checkpoint API"}, "plain string query", {"query": ""}]'
    assert [(q.query, q.perspective) for q in parse_questions(reply, 2, 5)] == [
        ("torch.utils.checkpoint API", "docs"), ("plain string query", "")]
    assert [q.query for q in parse_questions("- first query here\n- second query here\n", 1, 1)] == ["first query here"]


def test_researcher_md_kb_toml_and_cli_budgets_reach_the_researcher(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "ws", engine="openai", llm_url="http://127.0.0.1:9", search_url="http://127.0.0.1:9",
                        extra="[research]\npages = 7\n")
    monkeypatch.setenv(KEY_ENV, KEY)
    r = build_web_researcher(ws, "searxng", engine="openai", budget={"usd": 0.25})
    assert r.limits == {"searches": 30, "pages": 7, "tokens": 250000, "usd": 0.25}  # researcher.md, kb.toml, CLI
    assert r.planner is not None and r.planner.model == "loopback-1" and len(r.planner.perspectives) == 3
    assert build_web_researcher(ws, "searxng").planner is None  # no LLM engine: the plan's words are searched
    (ws.runners_dir / "researcher.md").write_text("---\nname: researcher\ndescription: d\nbudget: {searchez: 3}\n---\nx\n")
    from kb.errors import ConfigError

    with pytest.raises(ConfigError, match="budget"):
        build_web_researcher(ws, "searxng")


def test_the_command_line_budget_caps_every_part_of_a_batch(tmp_path, kb_cli):
    with PageServer() as pages, SearchServer(pages.pages, pages.url) as search, LLMServer(key=KEY) as llm:
        ws = make_workspace(tmp_path / "ws", engine="openai", llm_url=llm.url, search_url=search.url,
                            allow_private=[f"127.0.0.1:{pages.port}"])
        result = kb_cli("run-plan", "plans/training.md", "--batch", "1", "--budget-searches", "3", "--budget-pages", "2",
                        cwd=ws.root, env={KEY_ENV: KEY}, timeout=120)
        assert result.code == 0, result.out + result.err
        drops = [read_drop(p) for p in sorted(ws.drops_dir.glob("KNOWLEDGE-DROP-*.md"))]
        assert len(drops) == 4 and search.total() <= 4 * 3
        for d in drops:
            assert len(d.research["searched"]) <= 3 and len(d.research["read"]) <= 2
            assert d.research["budget"]["limits"]["searches"] == 3 and d.research["budget"].get("stopped")
            assert d.research["usage"]["research"]["calls"] >= 1
            assert d.tokens["input"] >= d.research["usage"]["research"]["input"] + d.research["usage"]["write_sections"]["input"]


def test_a_research_model_that_is_down_is_asked_once_then_the_plan_words_are_searched():
    from kb.net.retry import ProviderError

    class Down(ScriptedPlanner):
        async def ask(self, part, section, *, n, plan_title=None, found=None, follow_up=False):
            self.calls.append((section.number, follow_up, []))
            raise ProviderError("openai LLM at http://127.0.0.1:9/v1: gave up after 7 attempts")

    planner = Down({}, {})
    with PageServer() as pages, SearchServer(pages.pages, pages.url) as srv:
        found = asyncio.run(researcher(srv.url, planner, follow_up_rounds=1).research(part(1), []))
    assert len(planner.calls) <= 3  # the first round's questions were asked at once; none after it failed
    assert sum("the research model gave no questions" in w for w in found.warnings) == 1
    assert {q["perspective"] for q in found.log["questions"]} == {"the plan"} and found.by_section[1]
