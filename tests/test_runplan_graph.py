"""The batch graph in-process, on fake engines: fan-out, failures, the check loop, retries, review, protection."""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from langgraph.types import RetryPolicy

from kb.plan import load_plan
from kb.records import read_drop, read_knowledge
from kb.runner.graph import build_batch_graph
from kb.runner.nodes import is_transient
from kb.runner.run import RunOptions, run_unit, unfinished
from kb.runner.select import Unit
from kb.runner.state import RunContext
from kb.workspace import init_workspace

sys.path.insert(0, str(Path(__file__).parent))
from runplan_fakes import make_engine, plan_text  # noqa: E402

FAST_RETRY = RetryPolicy(initial_interval=0.01, backoff_factor=1.0, max_attempts=3, jitter=False, retry_on=is_transient)


@pytest.fixture
def ws(tmp_path):
    workspace, _ = init_workspace(tmp_path / "ws")
    return workspace


def write_plan(ws, batches, **kw) -> str:
    (ws.plans_dir / "p.md").write_text(plan_text(batches, **kw), encoding="utf-8")
    return "plans/p.md"


def run(ws, engine, *, batch=1, part=None, runners=4, force=False, redo=False, review=False, ask=None, events=None):
    unit = Unit("plans/p.md", f"PART {part}" if part else f"BATCH {batch}", batch, part)
    ctx = RunContext(workspace=ws, researcher=engine.researcher, writer=engine.writer, check=engine.check,
                     max_rewrites=ws.config.run.max_rewrites, force=force)
    return asyncio.run(run_unit(ws, unit, ctx, RunOptions(runners=runners, redo=redo, review=review),
                                on_event=events.append if events is not None else None, ask=ask, retry=FAST_RETRY))


def statuses(ws) -> dict[int, str]:
    return {p.number: p.status for p in load_plan(ws.plans_dir / "p.md").parts}


def drops_by_part(ws) -> dict[int, list]:
    out: dict[int, list] = {}
    for path in sorted(ws.drops_dir.glob("KNOWLEDGE-DROP-*.md")):
        drop = read_drop(path)
        out.setdefault(drop.part, []).append(drop)
    return out


def test_batch_writes_files_drops_and_ticks_only_its_parts(ws):
    write_plan(ws, [3, 2])
    engine = make_engine(ws)
    events: list[dict] = []
    outcome = run(ws, engine, events=events)
    assert [r["status"] for r in outcome.summary["rows"]] == ["done"] * 3
    assert statuses(ws) == {1: "done", 2: "done", 3: "done", 4: "pending", 5: "pending"}
    doc = read_knowledge(ws.knowledge_dir / "topic/01-part-1.md")
    assert not doc.edited_by_hand and doc.meta.content_hash
    assert (doc.meta.plan, doc.meta.batch, doc.meta.part, doc.meta.engine) == ("plans/p.md", 1, 1, "fake")
    assert doc.meta.sections == ["Alpha 1", "Beta 1"] and doc.meta.sources[0].locator == "fake.module.function"
    assert doc.meta.created
    drops = drops_by_part(ws)
    assert sorted(drops) == [1, 2, 3]
    drop = drops[1][0]
    assert drop.status == "complete" and drop.knowledge_file == "knowledge/topic/01-part-1.md"
    assert drop.tokens == {"input": 10, "output": 20} and drop.seconds is not None and drop.snippets_written == 2
    # The missing Step 0 file is a warning in the drop, not a failure.
    assert any("topic/not-there.md does not exist" in w for w in drop.warnings)
    assert drop.path.name.startswith("KNOWLEDGE-DROP-part-1-")
    # Every stage was reported on the custom stream, for the progress view.
    stages_of_1 = [e["stage"] for e in events if e.get("part") == 1]
    assert stages_of_1 == ["context", "research", "write", "check", "drop", "tick", "done"]
    # The finished run's checkpoint thread is gone; a new run of the batch starts afresh.
    assert not asyncio.run(unfinished(ws, outcome.unit))


def test_one_send_per_part_and_max_concurrency_is_honoured(ws):
    write_plan(ws, [7])
    engine = make_engine(ws, delay=0.15)
    outcome = run(ws, engine, runners=3)
    assert outcome.summary["counts"]["done"] == 7
    assert engine.writer.peak == 3  # max_concurrency at the top level of the config
    # Each PART ran as its own task of the "runner" node (its own checkpoint namespace).
    graph = build_batch_graph()
    assert set(graph.get_graph().nodes) >= {"select", "runner", "review"}


def test_failing_parts_get_failed_drops_and_stay_unticked(ws):
    write_plan(ws, [4], targets={3: "../../x.md"})
    engine = make_engine(ws, fail={2})
    outcome = run(ws, engine)
    rows = {r["part"]: r for r in outcome.summary["rows"]}
    assert rows[1]["status"] == rows[4]["status"] == "done"
    assert rows[3]["status"] == "failed" and "escapes its folder" in rows[3]["reason"]
    assert rows[2]["status"] == "failed" and "fake writer exploded" in rows[2]["reason"]
    assert statuses(ws) == {1: "done", 2: "pending", 3: "pending", 4: "done"}
    drops = drops_by_part(ws)
    assert drops[3][0].status == "failed" and "knowledge/" in drops[3][0].reason
    assert drops[2][0].status == "failed" and "RuntimeError" in drops[2][0].reason
    assert not (ws.root.parent.parent / "x.md").exists()
    assert [p.name for p in ws.knowledge_dir.rglob("*.md")] and not (ws.knowledge_dir / "topic/02-part-2.md").exists()


def test_failed_check_goes_back_to_write_with_reasons(ws):
    write_plan(ws, [2])
    engine = make_engine(ws, bad={1}, always_bad={2})
    outcome = run(ws, engine)
    rows = {r["part"]: r for r in outcome.summary["rows"]}
    assert rows[1]["status"] == "done" and rows[1]["writes"] == 2
    # max_rewrites = 2 (kb.toml): one write and two rewrites, then the PART fails with the check's reasons.
    assert rows[2]["status"] == "failed" and rows[2]["writes"] == 3
    assert "still failed the check after 3 writes" in rows[2]["reason"] and "section 1 is missing" in rows[2]["reason"]
    assert [a for n, a in engine.writer.calls if n == 2] == [0, 1, 2]
    assert drops_by_part(ws)[2][0].tokens == {"input": 30, "output": 60}


def test_transient_errors_are_retried_by_the_retry_policy(ws):
    write_plan(ws, [2])
    engine = make_engine(ws, transient={1: 2, 2: 5})
    outcome = run(ws, engine)
    rows = {r["part"]: r for r in outcome.summary["rows"]}
    assert rows[1]["status"] == "done"
    assert [n for n, _ in engine.writer.calls].count(1) == 3
    assert rows[2]["status"] == "failed" and "after 3 attempts" in rows[2]["reason"]
    assert "ConnectionError" in rows[2]["reason"]


def test_human_edits_are_not_overwritten_without_force(ws):
    write_plan(ws, [2])
    engine = make_engine(ws)
    run(ws, engine)
    path = ws.knowledge_dir / "topic/01-part-1.md"
    edited = path.read_text(encoding="utf-8").replace("Text about Alpha 1", "My own words about Alpha 1")
    path.write_text(edited, encoding="utf-8")
    outcome = run(ws, engine, redo=True)
    rows = {r["part"]: r for r in outcome.summary["rows"]}
    assert rows[1]["status"] == "failed" and "edited since kb wrote it" in rows[1]["reason"]
    assert "--force" in rows[1]["reason"]
    assert rows[2]["status"] == "done"
    assert path.read_text(encoding="utf-8") == edited
    assert any(d.status == "failed" and d.knowledge_file == "knowledge/topic/01-part-1.md" for d in drops_by_part(ws)[1])
    # A file kb never wrote (no front matter) is protected the same way.
    other = ws.knowledge_dir / "topic/02-part-2.md"
    other.write_text("# Mine\n\nHand-written.\n", encoding="utf-8")
    outcome = run(ws, engine, redo=True)
    assert {r["part"]: r["status"] for r in outcome.summary["rows"]} == {1: "failed", 2: "failed"}
    assert other.read_text(encoding="utf-8") == "# Mine\n\nHand-written.\n"
    # --force replaces both, and says so in the drop.
    outcome = run(ws, engine, redo=True, force=True)
    assert outcome.summary["counts"]["done"] == 2
    assert not read_knowledge(path).edited_by_hand and "My own words" not in path.read_text(encoding="utf-8")
    forced = [d for d in drops_by_part(ws)[1] if d.status == "complete" and any("--force" in w for w in d.warnings)]
    assert forced


def test_nothing_pending_runs_nothing_and_redo_reruns(ws):
    write_plan(ws, [2])
    engine = make_engine(ws)
    run(ws, engine)
    assert len(engine.writer.calls) == 2
    before = (ws.plans_dir / "p.md").read_bytes()
    outcome = run(ws, engine)
    assert outcome.summary["rows"] == [] and len(engine.writer.calls) == 2
    assert (ws.plans_dir / "p.md").read_bytes() == before
    outcome = run(ws, engine, redo=True)
    assert outcome.summary["counts"]["done"] == 2 and len(engine.writer.calls) == 4


def test_single_part(ws):
    write_plan(ws, [3])
    engine = make_engine(ws)
    outcome = run(ws, engine, part=2)
    assert [r["part"] for r in outcome.summary["rows"]] == [2]
    assert statuses(ws) == {1: "pending", 2: "done", 3: "pending"}


def test_review_interrupt_pauses_durably_then_resumes(ws):
    write_plan(ws, [2])
    engine = make_engine(ws)
    seen: list[dict] = []

    class Walkaway(Exception):
        pass

    def leave(payload):
        seen.append(payload)
        raise Walkaway  # the person closed the terminal at the prompt

    with pytest.raises(Walkaway):
        run(ws, engine, review=True, ask=leave)
    unit = Unit("plans/p.md", "BATCH 1", 1)
    assert seen[0]["summary"]["counts"]["done"] == 2 and seen[0]["label"] == "BATCH 1"
    assert statuses(ws) == {1: "done", 2: "done"}
    assert asyncio.run(unfinished(ws, unit))  # paused at interrupt(), checkpointed
    assert not (ws.state_dir / "reviews.json").exists()
    # The next run resumes at the gate: no PART is written again.
    outcome = run(ws, engine, review=True, ask=lambda payload: {"approved": True})
    assert len(engine.writer.calls) == 2
    assert outcome.resumed and outcome.reviewed["approved"] is True
    assert [r["part"] for r in outcome.summary["rows"]] == [1, 2]
    reviews = json.loads((ws.state_dir / "reviews.json").read_text())
    assert reviews["plans/p.md"]["BATCH 1"]["approved"] is True


def test_review_decline_is_recorded(ws):
    write_plan(ws, [1])
    engine = make_engine(ws)
    outcome = run(ws, engine, review=True, ask=lambda payload: {"approved": False, "note": "too thin"})
    assert outcome.reviewed == {"approved": False, "note": "too thin", "at": outcome.reviewed["at"]}
    assert json.loads((ws.state_dir / "reviews.json").read_text())["plans/p.md"]["BATCH 1"]["note"] == "too thin"


def test_checkpoints_live_in_sqlite_under_dot_kb_one_saved_task_per_part(ws):
    write_plan(ws, [3])
    engine = make_engine(ws)
    seen: list[tuple[set, dict]] = []

    def look(payload):
        with sqlite3.connect(ws.state_dir / "checkpoints.sqlite") as db:
            namespaces = {ns for (ns,) in db.execute("select checkpoint_ns from checkpoints where thread_id = ?",
                                                     ("run-plan:plans/p.md:batch-1",))}
            results = db.execute("select task_id, count(*) from writes where thread_id = ? and channel = 'results' "
                                 "group by task_id", ("run-plan:plans/p.md:batch-1",)).fetchall()
        seen.append((namespaces, dict(results)))
        return {"approved": True}

    run(ws, engine, review=True, ask=look)
    namespaces, results = seen[0]
    # Checkpoints are the batch graph's only: the runner subgraph keeps none of its own.
    assert namespaces == {""}
    # One Send per PART: three runner tasks, each one's output saved as its own write.
    assert len(results) == 3 and set(results.values()) == {1}
    assert not asyncio.run(unfinished(ws, Unit("plans/p.md", "BATCH 1", 1)))  # deleted once finished


def test_a_finished_part_is_saved_while_later_parts_still_wait_for_a_runner(ws):
    # LangGraph queues checkpoint writes behind the tasks waiting for a max_concurrency slot; kb's
    # saver starts them at once, so a kill at this point would not lose PART 1's finished task.
    write_plan(ws, [3])
    engine = make_engine(ws)
    plain_write = engine.writer.write
    saved_while_part_2_writes: list[int] = []

    def saved_results() -> int:
        with sqlite3.connect(ws.state_dir / "checkpoints.sqlite") as db:
            return db.execute("select count(*) from writes where channel = 'results'").fetchone()[0]

    async def write(request):
        if request.part.number == 2:  # PART 3 waits for this runner (runners=1)
            for _ in range(200):
                if saved_results():
                    break
                await asyncio.sleep(0.01)
            saved_while_part_2_writes.append(saved_results())
        return await plain_write(request)

    engine.writer.write = write
    outcome = run(ws, engine, runners=1)
    assert [r["status"] for r in outcome.summary["rows"]] == ["done"] * 3
    assert saved_while_part_2_writes == [1]


def test_parts_sharing_a_drop_name_get_separate_drops(ws):
    write_plan(ws, [3], drops={1: "same", 2: "same"})
    run(ws, make_engine(ws))
    names = sorted(p.name.rsplit("-", 4)[0] for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*.md"))
    assert names == ["KNOWLEDGE-DROP-part-3", "KNOWLEDGE-DROP-same-part-1", "KNOWLEDGE-DROP-same-part-2"]
    assert sorted(d.part for ds in drops_by_part(ws).values() for d in ds) == [1, 2, 3]


class Killed(BaseException):
    """Stands in for a kill -9: nothing in kb catches it, so the run stops where it is."""


def test_a_part_cut_off_between_drop_and_tick_reruns_and_rewrites_its_own_drop(ws, monkeypatch):
    import kb.runner.nodes as nodes

    write_plan(ws, [3])
    engine = make_engine(ws)
    real_tick = nodes.stages.tick

    async def tick_dies_on_part_2(ticker, plan_path, part, written=()):
        if part.number == 2:
            raise Killed()
        return await real_tick(ticker, plan_path, part, written)

    monkeypatch.setattr(nodes.stages, "tick", tick_dies_on_part_2)
    with pytest.raises(Killed):
        run(ws, engine, runners=1)
    # A real kill ends the process. Killed in-process, a background checkpoint write cut off
    # between its insert and its commit stays in a reference cycle, and SQLite keeps its
    # closed connection (write lock included) until the statement is freed: free it, as the
    # end of the process would. (tests/test_runplan_cli.py kills a real process with SIGKILL.)
    gc.collect()
    assert statuses(ws) == {1: "done", 2: "pending", 3: "pending"}
    assert [d.part for ds in drops_by_part(ws).values() for d in ds] == [1, 2]  # PART 2's drop, unticked
    written_before = len(engine.writer.calls)

    # The resumed run starts PART 2 again from its first stage, minutes later by the clock.
    monkeypatch.setattr(nodes.stages, "tick", real_tick)
    monkeypatch.setattr(nodes.stages, "start_stamp", lambda now=None: "2031-01-01T09:59")
    outcome = run(ws, engine, runners=1)
    assert outcome.resumed
    assert len(engine.writer.calls) - written_before == 2  # PARTs 2 and 3; PART 1 was finished
    assert statuses(ws) == {1: "done", 2: "done", 3: "done"}
    drops = drops_by_part(ws)
    assert {n: len(ds) for n, ds in drops.items()} == {1: 1, 2: 1, 3: 1}  # PART 2 rewrote its drop, not a second one
    assert all(ds[0].status == "complete" for ds in drops.values())


def test_finishing_stages_run_one_part_at_a_time(ws):
    # Runners whose writers return together would otherwise take turns step by step and free
    # their slots only when the last of them is done (kb.runner.lane).
    write_plan(ws, [6])
    events: list[dict] = []
    outcome = run(ws, make_engine(ws), runners=6, events=events)
    assert [r["status"] for r in outcome.summary["rows"]] == ["done"] * 6
    holder = None
    finishing = 0
    for event in events:
        stage, part = event["stage"], event["part"]
        if stage in ("check", "drop", "tick"):
            assert holder in (None, part), f"PART {part} entered {stage} while PART {holder} was finishing: {events}"
            holder = part
            finishing += 1
        elif part == holder:  # its result (done/failed), or back to write
            holder = None
    assert finishing == 18


def test_the_finish_lane_is_held_by_one_part_until_it_leaves():
    from kb.runner.lane import FinishLane

    async def scenario() -> list[str]:
        lane, order = FinishLane(), []
        await lane.enter(1)
        await lane.enter(1)  # the same PART, a later stage: no wait
        lane.leave(2)  # not the holder: nothing happens

        async def second():
            await lane.enter(2)
            order.append("2 in")
            lane.leave(2)

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.01)
        order.append(f"holder {lane.holder}")
        lane.leave(1)
        await waiting
        order.append(f"holder {lane.holder}")
        return order

    assert asyncio.run(scenario()) == ["holder 1", "2 in", "holder None"]


def test_each_stage_names_a_successor_the_graph_declares():
    from langgraph.graph import END

    from kb.runner.graph import compiled_runner
    from kb.runner.nodes import DESTINATIONS, RETRY, next_stage

    edges = {(e.source, e.target) for e in compiled_runner(RETRY).get_graph().edges}
    states = {
        "ok": {},
        "failed": {"error": "boom"},
        "rejected": {"feedback": ["section 1 is missing"]},
        "skipped": {"skipped": "already done"},
    }
    expected = {
        ("context", "ok"): "research", ("context", "failed"): "drop", ("context", "skipped"): END,
        ("research", "ok"): "write", ("research", "failed"): "drop",
        ("write", "ok"): "check", ("write", "failed"): "drop",
        ("check", "ok"): "drop", ("check", "rejected"): "write", ("check", "failed"): "drop",
        ("drop", "ok"): "tick", ("drop", "failed"): END,
        ("tick", "ok"): END, ("tick", "failed"): END,
    }
    for (stage, name), successor in expected.items():
        assert next_stage(stage, states[name]) == successor, (stage, name)
        assert successor in DESTINATIONS[stage]
        assert (stage, "__end__" if successor == END else successor) in edges


def test_select_uses_the_plan_read_ahead_only_while_the_file_still_holds_it(ws):
    from kb.runner.nodes import _plan_now
    from kb.runner.run import read_plan_ahead

    rel = write_plan(ws, [2])
    path = ws.root / rel
    early = read_plan_ahead(path, rel)

    async def ahead():
        return early

    assert asyncio.run(_plan_now(path, rel, ahead())) is early[1]
    path.write_text(plan_text([3]), encoding="utf-8")  # changed after the early read
    assert [p.number for p in asyncio.run(_plan_now(path, rel, ahead())).parts] == [1, 2, 3]
    assert read_plan_ahead(ws.root / "plans/none.md", "plans/none.md") is None  # select reports that itself


def test_a_task_an_older_kb_checkpointed_flat_fails_with_a_clear_error(ws):
    # kb before 2026-12 sent each runner task its fields flat ({"plan_path": ..., "part": ...});
    # a resume of such a run finds no "task" and must say what to do, not raise a KeyError.
    from kb.errors import WorkspaceError
    from kb.runner.graph import compiled_runner

    write_plan(ws, [2])
    engine = make_engine(ws)
    ctx = RunContext(workspace=ws, researcher=engine.researcher, writer=engine.writer, check=engine.check)
    flat = {"plan_path": "plans/p.md", "part": {"number": 1, "title": "x"}, "was": {"status": "pending"},
            "drop_slug": "x", "stamp": "2026-11-30T10:00"}
    with pytest.raises(WorkspaceError, match="older kb .*--redo"):
        asyncio.run(compiled_runner(FAST_RETRY).ainvoke(flat, context=ctx))
    assert not any(ws.drops_dir.glob("KNOWLEDGE-DROP-*"))  # nothing written for it
