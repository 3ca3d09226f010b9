"""Ticking PARTs: the status-line hint gives the same bytes as a full parse; ticks that arrive together commit once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from kb.plan import load_plan
import kb.plan.edit as edit
from kb.plan.edit import set_part_status
from kb.plan.parser import parse_plan
from kb.runner import ticker as ticker_module
from kb.runner.ticker import PlanTicker, TickFailed

sys.path.insert(0, str(Path(__file__).parent))
from runplan_fakes import plan_text  # noqa: E402

NOW = __import__("datetime").datetime(2025, 11, 16, 14, 38)


@pytest.fixture
def plan(tmp_path) -> Path:
    path = tmp_path / "p.md"
    # CRLF endings and an already ticked PART: the hinted edit must keep every other byte.
    text = plan_text([3, 2]).replace("- [ ] PART 2:", "- [x] PART 2:", 1)
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    return path


def test_status_line_hints_edit_exactly_like_a_full_parse(plan, tmp_path):
    lines = {p.number: p.status_line for p in load_plan(plan).parts}
    twin = tmp_path / "twin.md"
    twin.write_bytes(plan.read_bytes())
    set_part_status(plan, {1: "done", 4: "done", 2: "pending"}, NOW, status_lines=lines)
    set_part_status(twin, {1: "done", 4: "done", 2: "pending"}, NOW)
    assert plan.read_bytes() == twin.read_bytes()
    assert {p.number: p.status for p in load_plan(plan).parts} == {1: "done", 2: "pending", 3: "pending", 4: "done",
                                                                   5: "pending"}


def test_a_stale_hint_falls_back_to_parsing(plan, monkeypatch):
    lines = {p.number: p.status_line for p in load_plan(plan).parts}
    plan.write_bytes(b"Intro line added above.\r\n" + plan.read_bytes())  # every status line moved down one
    parsed = []
    monkeypatch.setattr(edit, "parse_plan", lambda *a: parsed.append(1) or parse_plan(*a))
    set_part_status(plan, {3: "done"}, NOW, status_lines=lines)
    assert parsed and load_plan(plan).part(3).status == "done"
    assert b"Intro line added above." in plan.read_bytes()
    parsed.clear()
    fresh = {p.number: p.status_line for p in load_plan(plan).parts}
    set_part_status(plan, {5: "done"}, NOW, status_lines=fresh)
    assert not parsed and load_plan(plan).part(5).status == "done"


def test_ticks_arriving_together_are_one_edit(plan, monkeypatch):
    calls = []
    real = ticker_module.set_part_status

    def counting(path, updates, now=None, **kw):
        calls.append(sorted(updates))
        return real(path, updates, now, **kw)

    monkeypatch.setattr(ticker_module, "set_part_status", counting)
    lines = {p.number: p.status_line for p in load_plan(plan).parts}

    async def main():
        ticker = PlanTicker()
        await asyncio.gather(*(ticker.tick(plan, n, lines[n]) for n in (1, 3, 4, 5)))

    asyncio.run(main())
    assert sum(len(c) for c in calls) == 4 and len(calls) < 4  # grouped
    assert {p.number for p in load_plan(plan).parts if p.status == "done"} == {1, 2, 3, 4, 5}


def test_a_part_that_cannot_be_ticked_fails_alone(plan):
    async def main():
        ticker = PlanTicker()
        return await asyncio.gather(ticker.tick(plan, 1), ticker.tick(plan, 99), ticker.tick(plan, 3),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], TickFailed) and "PART 99" in str(results[1])
    assert {p.number for p in load_plan(plan).parts if p.status == "done"} == {1, 2, 3}


def test_written_files_reach_the_disk_before_the_plan_is_ticked(plan, tmp_path, monkeypatch):
    order: list[tuple[str, list[str]]] = []
    flushed = ticker_module.flush_to_disk
    real = ticker_module.set_part_status
    monkeypatch.setattr(ticker_module, "flush_to_disk",
                        lambda paths: order.append(("flush", sorted(Path(p).name for p in paths))) or flushed(paths))
    monkeypatch.setattr(ticker_module, "set_part_status",
                        lambda path, updates, now=None, **kw: order.append(("tick", sorted(map(str, updates))))
                        or real(path, updates, now, **kw))
    files = {n: [tmp_path / f"k{n}.md", tmp_path / f"d{n}.md"] for n in (1, 3)}
    for paths in files.values():
        for path in paths:
            path.write_text("written without fsync\n", encoding="utf-8")

    async def main():
        ticker = PlanTicker()
        await asyncio.gather(*(ticker.tick(plan, n, written=[str(p) for p in files[n]]) for n in (1, 3)))

    asyncio.run(main())
    flushed_names = [name for kind, names in order if kind == "flush" for name in names]
    assert sorted(flushed_names) == ["d1.md", "d3.md", "k1.md", "k3.md"]
    # Each tick comes after the flush that holds its PART's files.
    for number in (1, 3):
        tick_at = next(i for i, (kind, names) in enumerate(order) if kind == "tick" and str(number) in names)
        flush_at = next(i for i, (kind, names) in enumerate(order) if kind == "flush" and f"k{number}.md" in names)
        assert flush_at < tick_at
    assert {p.number for p in load_plan(plan).parts if p.status == "done"} == {1, 2, 3}


def test_a_failed_flush_fails_the_tick_and_leaves_the_plan_alone(plan, monkeypatch):
    before = plan.read_bytes()

    def broken(paths):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ticker_module, "flush_to_disk", broken)

    async def main():
        return await PlanTicker().tick(plan, 1, written=["/nowhere/k1.md"])

    with pytest.raises(TickFailed, match="could not be flushed to disk"):
        asyncio.run(main())
    assert plan.read_bytes() == before
