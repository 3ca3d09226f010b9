"""Plan edits change the PART status lines and not one other byte."""

from __future__ import annotations

from datetime import datetime

from kb.plan import load_plan, parse_plan
from kb.plan.edit import set_part_status
from kb.plan.encoding import decode_plan_bytes

PLAN = (
    "# Knowledge Expansion: E (2 runners in 1 batches)\r\n\r\n# BATCH 1: B\r\n\r\n"
    "## PART 1: A\r\n- [ ] PART 1: Create e/00-a.md\r\n\r\n"
    "## PART 2: B\r\n* [x] PART 2: Create e/01-b.md (Completed 2025-01-01 01:01) trailing note\r\n"
)


def test_tick_then_reset_restores_every_byte(tmp_path):
    path = tmp_path / "p.md"
    path.write_bytes(PLAN.encode())
    result = set_part_status(path, {1: "done"}, now=datetime(2026, 3, 4, 5, 6))
    assert result.changed_parts == [1]
    ticked = path.read_bytes().decode()
    assert "- [✓] PART 1: Create e/00-a.md (Completed 2026-03-04 05:06)\r\n" in ticked
    assert ticked.count("\r\n") == PLAN.count("\r\n")
    assert load_plan(path).part(1).status == "done"
    set_part_status(path, {1: "pending"})
    assert path.read_bytes() == PLAN.encode()


def test_reset_keeps_list_marker_and_trailing_text(tmp_path):
    path = tmp_path / "p.md"
    path.write_bytes(PLAN.encode())
    set_part_status(path, {2: "pending"})
    text = path.read_bytes().decode()
    assert "* [ ] PART 2: Create e/01-b.md trailing note\r\n" in text
    changed = [a for a, b in zip(PLAN.split("\r\n"), text.split("\r\n")) if a != b]
    assert len(changed) == 1


def test_no_change_writes_nothing(tmp_path):
    path = tmp_path / "p.md"
    path.write_bytes(PLAN.encode())
    before = path.stat().st_mtime_ns
    assert set_part_status(path, {1: "pending"}).changed_parts == []
    assert path.stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.md"]


def test_seed_reset_differs_from_repaired_seed_in_exactly_the_16_status_lines(tmp_path, seed_bytes):
    path = tmp_path / "seed.md"
    path.write_bytes(seed_bytes)
    result = set_part_status(path, {n: "pending" for n in range(1, 17)})
    assert result.changed_parts == list(range(1, 17))
    assert any("Mac Roman" in r for r in result.repairs_written)
    repaired = decode_plan_bytes(seed_bytes).text.split("\n")
    after = path.read_bytes().decode("utf-8").split("\n")
    assert len(repaired) == len(after)
    diff = [i for i, (a, b) in enumerate(zip(repaired, after)) if a != b]
    assert len(diff) == 16
    assert all(after[i].startswith("- [ ] PART ") and "Completed" not in after[i] for i in diff)
    plan = parse_plan(path.read_bytes())
    assert plan.repairs == [] and all(p.status == "pending" for p in plan.parts)
