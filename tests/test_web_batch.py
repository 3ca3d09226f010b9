"""`kb run-plan` end to end with the LLM engines and SearXNG research, against loopback servers.

Each test starts real servers on 127.0.0.1 (an OpenAI/Anthropic-shaped LLM, a
SearXNG-shaped search endpoint, a static site) and runs the real CLI in a
subprocess, then counts requests on the server side.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import pytest

from kb.plan import load_plan
from kb.records import read_drop, read_knowledge
from servers import FaultPlan, LLMServer, PageServer, SearchServer
from kb.engine.llm_writer import cited_numbers
from kb.llm.support import review
from servers.fixtures import KEY_ENV, make_workspace
from servers.llm import SMOOTH_TRANSITION
from servers.pages import PAGES, internal_service

KEY = "sk-batch-SECRET-9f8e7d6c5b4a3210"
PLAN = "plans/training.md"


class Stack:
    """The three loopback servers a web-research LLM run talks to."""

    def __init__(self, *, llm_faults=None, search_faults=None, pages=None, llm_down=False, llm_key=KEY,
                 redirects=None, lead_results=None, behaviour=None):
        self.pages = PageServer(pages=pages, redirects=redirects).start()
        self.search = SearchServer(self.pages.pages, self.pages.url, faults=search_faults, hang_s=5,
                                   lead=lead_results).start()
        self.llm = LLMServer(key=llm_key, faults=llm_faults, hang_s=5, behaviour=behaviour).start()
        self.llm_url = self.llm.url
        self.allow = [f"127.0.0.1:{self.pages.port}"]  # the test site is on loopback: allowed by name
        if llm_down:  # a port nothing listens on
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            self.llm_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            sock.close()

    def counts(self) -> tuple[int, int, int]:
        return self.llm.total(), self.search.total(), self.pages.total()

    def stop(self) -> None:
        for server in (self.pages, self.search, self.llm):
            server.stop()


@pytest.fixture
def stacks():
    made: list[Stack] = []

    def make(**kw) -> Stack:
        made.append(Stack(**kw))
        return made[-1]

    yield make
    for stack in made:
        stack.stop()


@pytest.fixture
def run_plan(kb_cli):
    def run(ws, *args: str):
        return kb_cli("run-plan", PLAN, "--batch", "1", *args, cwd=ws.root, env={KEY_ENV: KEY}, timeout=120)

    return run


def knowledge_files(ws) -> list[Path]:
    return sorted(ws.knowledge_dir.rglob("*.md"))


def drops(ws):
    return [read_drop(p) for p in sorted(ws.drops_dir.glob("KNOWLEDGE-DROP-*.md"))]


@pytest.mark.parametrize("engine", ["openai", "anthropic"])
def test_a_four_part_batch_completes_citing_fetched_pages(tmp_path, stacks, run_plan, engine):
    stack = stacks()
    ws = make_workspace(tmp_path / "ws", engine=engine, llm_url=stack.llm_url, search_url=stack.search.url, allow_private=stack.allow)
    result = run_plan(ws)
    assert result.code == 0, result.out + result.err
    assert "4 done, 0 failed" in result.out
    assert re.search(r"tokens by stage: research [\d,]+ in / [\d,]+ out, \$[\d.]+; write sections [\d,]+ in", result.out)
    files = knowledge_files(ws)
    assert len(files) == 4
    fetched = {stack.pages.url + path for path in stack.pages.counts}
    for f in files:
        doc = read_knowledge(f)
        cited = {url.split("#", 1)[0] for url in re.findall(r"\]\((http://127\.0\.0\.1:\d+/[^)]+)\)", doc.body)}
        assert cited and cited <= fetched, f.name
        assert doc.meta.engine == engine and doc.meta.model == "loopback-1"
        assert doc.meta.sources and all(s.kind == "web" and s.locator in fetched for s in doc.meta.sources)
    records = drops(ws)
    assert len(records) == 4
    assert all(d.status == "complete" and d.tokens["input"] > 0 and d.tokens["output"] > 0 for d in records)
    assert all(d.cost_usd and d.cost_usd > 0 for d in records)
    assert all(p.status == "done" for p in load_plan(ws.plans_dir / "training.md").parts)
    assert_faithful(ws, records)
    # No faults: one model request per research question round, per section research found passages for, per
    # overview, per support judgement and one whole-file pass; one search request per query the drops list.
    written = sum(len(d.sections_written) - len(d.sections_empty) for d in records)
    for d in records:
        usage = d.research["usage"]
        assert usage["write_sections"]["calls"] == len(d.sections_written) - len(d.sections_empty)
        assert usage["write_overview"]["calls"] == usage["write_smooth"]["calls"] == 1
        # Each section draft and the overview were judged; the whole-file pass's reworded sentences too.
        assert usage["check_support"]["calls"] >= usage["write_sections"]["calls"] + 1
        assert d.research["smooth"]["rewritten"] > 0 and d.research["support"]["judged"] > 0
    asked = sum(d.research["usage"]["research"]["calls"] for d in records)
    assert asked >= written
    assert stack.llm.total() == sum(stage["calls"] - stage.get("cached_calls", 0) for d in records
                                    for stage in d.research["usage"].values())
    assert stack.search.total() == sum(len(d.research["searched"]) for d in records)
    assert all(q["perspective"] for d in records for q in d.research["questions"])


def assert_faithful(ws, records) -> None:
    """The issue's bar: every factual sentence cited, every citation a passage kept in the drop, each supported."""
    by_file = {d.knowledge_file: d for d in records}
    for f in knowledge_files(ws):
        drop = by_file[ws.rel(f)]
        evidence = {e["id"]: e for e in drop.research["evidence"]}
        body = read_knowledge(f).body.split("## Sources")[0]
        failing = review(body, {n: "\n".join([e["text"], *e.get("code", [])]) for n, e in evidence.items()}).reasons
        assert failing == [], (f.name, failing)
        cited = cited_numbers(body)  # in prose: "[1, 2, 3]" in code is a list
        assert cited and cited <= set(evidence), f.name
        assert all(evidence[n]["text"] and evidence[n]["locator"] for n in cited)
        support = drop.research["support"]
        assert support["kept"] > 0 and support["sentences"] >= support["supported"]
        for title in drop.sections_empty:
            section = re.split(rf"(?m)^## (?:Section \d+: )?{re.escape(title)}$", body, maxsplit=1)[1]
            section = section.split("\n## ", 1)[0].strip()
            assert section.startswith("Research found nothing for this section")


MISBEHAVING = {"wrong_cite", "invent_number", "uncited", "drift", "broken_snippet", "failing_snippet", "fill_empty",
               "smooth_invent"}


@pytest.mark.parametrize("behaviour", [MISBEHAVING, {*MISBEHAVING, "stubborn"}],
                         ids=["fixes-when-told", "stubborn"])
def test_a_misbehaving_model_yields_only_cited_supported_sentences(tmp_path, stacks, run_plan, kb_cli, behaviour):
    stack = stacks(behaviour=behaviour)
    ws = make_workspace(tmp_path / "ws", engine="openai", llm_url=stack.llm_url, search_url=stack.search.url,
                        allow_private=stack.allow)
    result = run_plan(ws)
    assert result.code == 0, result.out + result.err
    assert "4 done, 0 failed" in result.out
    records = drops(ws)
    assert_faithful(ws, records)
    for f in knowledge_files(ws):
        text = f.read_text(encoding="utf-8")
        # Each way the model misbehaves: a passage cited for what it does not say (other words; its own words made a
        # stronger claim), a number no passage has, a claim with no citation, code that does not parse or fails, a
        # section filled from memory, and a whole-file pass that adds an uncited transition and an invented number.
        for bad in ("Quantum annealing", "73 percent", "ZeRO-3 partitions", "never needed in practice", "def broken(",
                    "frees GPU memory on small", "failing_values", SMOOTH_TRANSITION):
            assert bad not in text, (f.name, bad)
    # A model that fixes what it is told drops the failing snippet in the support rewrite, before the sandbox
    # run; a stubborn one keeps it, is told the sandbox's reason, keeps it again, and it is removed.
    expected = 1 if "stubborn" in behaviour else 0
    assert all(d.research["snippets"]["failed"] == d.research["snippets"]["removed"] == expected for d in records)
    # Every snippet that landed passes (or is skipped with its reason) when kb validates the tree.
    validated = kb_cli("validate-snippets", "--json", cwd=ws.root, timeout=300)
    rows = json.loads(validated.out)["snippets"] if validated.out.strip().startswith("{") else []
    assert validated.code == 0, validated.out + validated.err
    assert rows and all(r["status"] in ("pass", "skip", "not-executable") for r in rows), rows
    support = [d.research["support"] for d in records]
    assert all(s["sent_back"] > 0 and s["supported"] < s["sentences"] for s in support)
    assert all(s["judge_rejected"] > 0 for s in support)  # the drift only the judge sees was seen in every PART
    assert all(d.research["smooth"]["removed"] > 0 for d in records)
    report = json.loads(kb_cli("report", "--json", cwd=ws.root).out)
    rates = {f["file"]: f["drops"][-1]["support_rate"] for f in report["files"]}
    assert rates == {d.knowledge_file: s["rate"] for d, s in zip(records, support)} and all(0 < r < 1 for r in rates.values())
    if "stubborn" in behaviour:
        assert all(s["removed"] > 0 for s in support)
        assert all("## Citation Support" in d.path.read_text(encoding="utf-8") for d in records)
    else:
        assert all(s["removed"] == 0 for s in support)


def test_thirty_percent_faults_still_complete_in_bounded_time(tmp_path, stacks, run_plan):
    faults = dict(rate=0.3, kinds=("500", "429", "hang"), retry_after="0")
    stack = stacks(llm_faults=FaultPlan(seed=4, **faults), search_faults=FaultPlan(seed=8, **faults))
    ws = make_workspace(tmp_path / "ws", engine="openai", llm_url=stack.llm_url, search_url=stack.search.url, allow_private=stack.allow,
                        timeout_s=2.0)  # a hung request costs 2 s, then is retried
    start = time.monotonic()
    result = run_plan(ws)
    elapsed = time.monotonic() - start
    assert result.code == 0, result.out + result.err
    assert len(knowledge_files(ws)) == 4
    assert sum(stack.llm.faults_injected.values()) > 0 and sum(stack.search.faults_injected.values()) > 0
    assert elapsed < 60


def test_llm_down_fails_every_part_cleanly_and_ticks_nothing(tmp_path, stacks, run_plan):
    stack = stacks(llm_down=True)
    ws = make_workspace(tmp_path / "ws", engine="anthropic", llm_url=stack.llm_url, search_url=stack.search.url, allow_private=stack.allow)
    plan_before = (ws.plans_dir / "training.md").read_bytes()
    start = time.monotonic()
    result = run_plan(ws)
    assert time.monotonic() - start < 45
    assert result.code == 1
    assert "0 done, 4 failed" in result.out
    assert knowledge_files(ws) == []
    records = drops(ws)
    assert len(records) == 4
    assert all(d.status == "failed" and "anthropic LLM at" in d.reason and "connection failed" in d.reason for d in records)
    assert (ws.plans_dir / "training.md").read_bytes() == plan_before


def test_a_rerun_sends_no_request_the_cache_can_answer(tmp_path, stacks, run_plan):
    stack = stacks()
    ws = make_workspace(tmp_path / "ws", engine="openai", llm_url=stack.llm_url, search_url=stack.search.url, allow_private=stack.allow)
    assert run_plan(ws).code == 0
    before = stack.counts()
    assert all(before)
    bodies = {f.name: read_knowledge(f).body for f in knowledge_files(ws)}
    # --force as well as --redo: kb's human-edit guard is not what this test is about.
    again = run_plan(ws, "--redo", "--force")
    assert again.code == 0, again.out + again.err
    assert "4 done" in again.out
    assert stack.counts() == before  # the LLM, search and page servers saw nothing new
    assert {f.name: read_knowledge(f).body for f in knowledge_files(ws)} == bodies
    fresh = run_plan(ws, "--redo", "--force", "--no-cache")
    assert fresh.code == 0
    # Without the cache every call of the run is a request (a judgement asked twice in the run is sent twice).
    latest = {}
    for d in sorted(drops(ws), key=lambda d: d.created):
        latest[d.part] = d
    sent = [stage for d in latest.values() for stage in d.research["usage"].values()]
    assert all(stage.get("cached_calls", 0) == 0 for stage in sent)
    assert stack.llm.total() == before[0] + sum(stage["calls"] for stage in sent) >= 2 * before[0]


def test_the_injection_page_changes_nothing_beyond_being_evidence(tmp_path, stacks, run_plan):
    clean = stacks(pages={k: v for k, v in PAGES.items() if "forum" not in k})
    attacked = stacks()
    ws_clean = make_workspace(tmp_path / "clean", engine="openai", llm_url=clean.llm_url, search_url=clean.search.url, allow_private=clean.allow)
    ws_attacked = make_workspace(tmp_path / "attacked", engine="openai", llm_url=attacked.llm_url,
                                 search_url=attacked.search.url, allow_private=attacked.allow)
    assert run_plan(ws_clean).code == 0 and run_plan(ws_attacked).code == 0
    assert attacked.pages.counts["/forum/memory-tricks.html"] == 1  # the page was fetched
    forum_kept = any(e["url"].endswith("/forum/memory-tricks.html") for d in drops(ws_attacked)
                     for e in d.research["evidence"])
    for a, c in zip(knowledge_files(ws_attacked), knowledge_files(ws_clean), strict=True):
        body_a, body_c = read_knowledge(a).body, read_knowledge(c).body
        assert "PWNED" not in body_a
        assert re.findall(r"(?m)^#+ .*$", body_a) == re.findall(r"(?m)^#+ .*$", body_c)
        # Apart from the source list and the citation numbers, every section the clean run filled reads the same
        # (a section research found nothing for without the forum page may be filled from that page's own words).
        def sections(body):
            parts = re.split(r"(?m)^## ", re.sub(r"\[\d+\]", "", body.split("## Sources")[0]))
            return {p.split("\n", 1)[0]: p for p in parts[1:]}

        clean_sections, attacked_sections = sections(body_c), sections(body_a)
        for heading, text in clean_sections.items():
            if "Research found nothing for this section" not in text and heading != "Overview":
                assert attacked_sections[heading] == text, heading
    assert forum_kept  # its passages reached the writer, as quoted data


def test_the_api_key_appears_in_no_output(tmp_path, stacks, run_plan):
    stack = stacks(llm_faults=FaultPlan(queue=["500", "429"]))
    ws = make_workspace(tmp_path / "ws", engine="openai", llm_url=stack.llm_url, search_url=stack.search.url, allow_private=stack.allow)
    ok = run_plan(ws)
    assert ok.code == 0
    # A server expecting another key echoes the one it got, as real APIs do: the reason must not carry it.
    strict = stacks(llm_key="the-server-expects-another-key")
    ws2 = make_workspace(tmp_path / "ws2", engine="openai", llm_url=strict.llm_url, search_url=strict.search.url, allow_private=strict.allow)
    failed = run_plan(ws2)
    assert failed.code == 1 and "401" in failed.out
    assert any("[redacted]" in (d.reason or "") for d in drops(ws2))
    texts = [ok.out, ok.err, failed.out, failed.err]
    for root in (ws.root, ws2.root):  # .kb included: checkpoints and caches must not hold the key either
        texts += [p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()]
    assert all(KEY not in text for text in texts)
    assert sum(1 for p in (ws.root / ".kb").rglob("*") if p.is_file()) > 0  # there was something to search


def test_no_request_reaches_a_loopback_service_that_search_or_a_redirect_names(tmp_path, stacks, run_plan):
    with internal_service() as admin:
        admin_url = f"http://127.0.0.1:{admin.port}/admin"
        # Every search answer names the service twice: directly (as another spelling) and through a redirect.
        extra = [{"title": "Admin", "url": f"http://localhost:{admin.port}/admin", "content": "memory tips"},
                 {"title": "Moved", "url": "REDIRECT", "content": "gradient checkpointing memory"}]
        stack = stacks(redirects={"/moved": admin_url}, lead_results=extra)
        extra[1]["url"] = stack.pages.url + "/moved"
        ws = make_workspace(tmp_path / "ws", engine="openai", llm_url=stack.llm_url, search_url=stack.search.url,
                            allow_private=stack.allow)
        result = run_plan(ws)
        assert result.code == 0, result.out + result.err
        assert "4 done" in result.out
        assert admin.total() == 0
        assert stack.pages.counts["/moved"] > 0  # the redirect was followed as far as the guard
        records = drops(ws)
        for d in records:
            refused = {r["url"]: r["reason"] for r in d.research["refused"]}
            assert f"http://localhost:{admin.port}/admin" in refused and admin_url in refused, refused
            assert "loopback address" in refused[admin_url] and "redirect from" in refused[admin_url]
            assert "## Refused URLs" in d.path.read_text(encoding="utf-8")
        for f in knowledge_files(ws):
            assert "hunter2" not in f.read_text(encoding="utf-8")
        # The person allows the service by name: now it is read.
        allowed = make_workspace(tmp_path / "allowed", engine="openai", llm_url=stack.llm_url,
                                 search_url=stack.search.url, allow_private=[*stack.allow, f"127.0.0.1:{admin.port}"])
        assert run_plan(allowed).code == 0
        assert admin.total() > 0
        assert all(not d.research.get("refused") for d in drops(allowed))


def test_the_token_budget_stops_writing_and_the_rest_is_marked_empty(tmp_path, stacks, run_plan):
    stack = stacks()
    ws = make_workspace(tmp_path / "ws", engine="openai", llm_url=stack.llm_url, search_url=stack.search.url,
                        allow_private=stack.allow)
    result = run_plan(ws, "--budget-tokens", "2500")
    assert result.code == 0, result.out + result.err
    records = drops(ws)
    assert len(records) == 4
    for d in records:
        budget = d.research["budget"]
        assert budget["limits"]["tokens"] == 2500 and budget["spent"]["tokens"] >= 2500
        assert budget["writing_stopped"] == "the tokens budget (2500) is spent"
        # Research's questions and at least one section fit; the sections past the budget say so (a PART whose
        # sections all fit lost its overview call or whole-file pass instead), and the drop is partial.
        assert len(d.sections_empty) < len(d.sections_written)
        assert d.status == ("partial" if d.sections_empty else "complete")
        body = (ws.root / d.knowledge_file).read_text(encoding="utf-8")
        assert body.count("within the PART's budget: its tokens were spent") == len(d.sections_empty)
        assert d.research["usage"]["write_sections"]["calls"] == len(d.sections_written) - len(d.sections_empty)
        assert "writing stopped early: the tokens budget (2500) is spent" in d.warnings
    assert sum(1 for d in records if d.status == "partial") >= 3 and "partial" in result.out
    assert_faithful(ws, records)
