"""A plan is never destroyed by its encoding: one stray byte costs one line, no-ops write nothing,
and an edit writes back only what reads back as written (issue 25, item 1)."""

from __future__ import annotations

from datetime import datetime

import pytest

from kb.errors import PlanError
from kb.plan import parse_plan
from kb.plan.edit import set_part_status
from kb.plan.encoding import decode_plan_bytes

NOW = datetime(2026, 1, 2, 3, 4)

UTF8_PLAN = (
    "# Knowledge Expansion: Caching 🚀 (3 runners in 1 batches)\n\n"
    "**Date**: 2025-01-01\n\n"
    "# BATCH 1: Foundations 📚\n\n"
    "## PART 1: One\n- [✓] PART 1: Create t/00-one.md (Completed 2025-01-02 10:00)\n\n"
    "Notes about the caf\u00e9 next door.\n\n"
    "## PART 2: Two\n- [✓] PART 2: Create t/01-two.md (Completed 2025-01-02 11:00)\n\n"
    "## PART 3: Three\n- [ ] PART 3: Create t/02-three.md\n"
)


def stray_byte_plan() -> bytes:
    """The UTF-8 plan with its "café" written by a cp1252 editor: one byte 0xE9."""
    data = UTF8_PLAN.encode("utf-8").replace("caf\u00e9".encode("utf-8"), b"caf\xe9")
    assert b"caf\xe9" in data
    return data


def test_one_cp1252_byte_costs_one_line_not_the_file():
    plan = parse_plan(stray_byte_plan(), "p.md")
    assert {p.number: p.status for p in plan.parts} == {1: "done", 2: "done", 3: "pending"}
    assert [p.target for p in plan.parts] == ["t/00-one.md", "t/01-two.md", "t/02-three.md"]
    assert plan.problems == []
    assert plan.topic == "Caching 🚀"
    assert any("line 10 is not UTF-8" in r and "cp1252" in r for r in plan.repairs), plan.repairs
    assert decode_plan_bytes(stray_byte_plan()).lines[9] == "Notes about the caf\u00e9 next door.\n"


def test_a_noop_reset_of_a_stray_byte_plan_writes_nothing(tmp_path):
    path = tmp_path / "p.md"
    path.write_bytes(stray_byte_plan())
    before = path.stat().st_mtime_ns
    assert set_part_status(path, {3: "pending"}).changed_parts == []
    assert path.read_bytes() == stray_byte_plan()
    assert path.stat().st_mtime_ns == before


def test_an_edit_of_a_stray_byte_plan_changes_only_the_status_line(tmp_path):
    path = tmp_path / "p.md"
    path.write_bytes(stray_byte_plan())
    result = set_part_status(path, {1: "pending", 3: "done"}, now=NOW)
    assert result.changed_parts == [1, 3]
    after = path.read_bytes()
    old_lines, new_lines = stray_byte_plan().split(b"\n"), after.split(b"\n")
    assert len(old_lines) == len(new_lines)
    diff = [i for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    assert [new_lines[i].decode() for i in diff] == [
        "- [ ] PART 1: Create t/00-one.md",
        "- [✓] PART 3: Create t/02-three.md (Completed 2026-01-02 03:04)",
    ]
    assert b"caf\xe9 next door" in after  # the cp1252 line kept its byte
    assert "🚀".encode() in after and "[✓] PART 2".encode() in after
    plan = parse_plan(after, "p.md")
    assert {p.number: p.status for p in plan.parts} == {1: "pending", 2: "done", 3: "done"}


def test_a_status_line_in_cp1252_is_edited_and_reads_back(tmp_path):
    text = ("# Knowledge Expansion: X\n\n# BATCH 1: B\n\n## PART 1: Caf\u00e9\n"
            "- [ ] PART 1: Create t/caf\u00e9.md\n\n## PART 2: Two\n- [✓] PART 2: Create t/two.md (Completed 2025-01-01 01:01)\n")
    data = text.encode("utf-8").replace("t/caf\u00e9.md".encode(), b"t/caf\xe9.md")
    path = tmp_path / "p.md"
    path.write_bytes(data)
    set_part_status(path, {1: "done"}, now=NOW)
    plan = parse_plan(path.read_bytes(), "p.md")
    assert plan.part(1).status == "done" and plan.part(1).target == "t/caf\u00e9.md"
    assert plan.part(2).status == "done"
    old, new = data.split(b"\n"), path.read_bytes().split(b"\n")
    assert [i for i, (a, b) in enumerate(zip(old, new)) if a != b] == [5]


def test_a_bom_plan_keeps_its_bom_and_a_noop_writes_nothing(tmp_path):
    data = b"\xef\xbb\xbf" + UTF8_PLAN.encode()
    path = tmp_path / "p.md"
    path.write_bytes(data)
    assert parse_plan(data, "p.md").part(1).status == "done"
    assert set_part_status(path, {3: "pending"}).changed_parts == []
    assert path.read_bytes() == data
    set_part_status(path, {3: "done"}, now=NOW)
    set_part_status(path, {3: "pending"})
    assert path.read_bytes() == data


def test_a_noop_reset_of_a_mojibake_plan_writes_nothing(tmp_path):
    garbled = UTF8_PLAN.encode("utf-8").decode("mac_roman").encode("utf-8")
    path = tmp_path / "p.md"
    path.write_bytes(garbled)
    assert any("Mac Roman" in r for r in parse_plan(garbled, "p.md").repairs)
    assert set_part_status(path, {3: "pending"}).changed_parts == []
    assert path.read_bytes() == garbled
    # A real edit writes it back repaired, and says so.
    result = set_part_status(path, {3: "done"}, now=NOW)
    assert any("Mac Roman" in r for r in result.repairs_written)
    assert path.read_bytes().decode("utf-8").startswith("# Knowledge Expansion: Caching 🚀")


def lossy_plan() -> bytes:
    # cp1252 has no character for byte 0x9D (in "📝"), so the tool that misread this plan wrote U+FFFD
    # on the title line: the mojibake cannot be undone there, but can on every other line.
    lossy = UTF8_PLAN.replace("🚀", "📝").encode("utf-8").decode("cp1252", errors="replace")
    assert "\ufffd" in lossy.split("\n")[0] and "\ufffd" not in lossy.split("\n", 1)[1]
    return lossy.encode("utf-8")


def test_a_lossy_mojibake_plan_is_repaired_where_it_can_be_and_says_why_not_elsewhere():
    plan = parse_plan(lossy_plan(), "p.md")
    assert {p.number: p.status for p in plan.parts} == {1: "done", 2: "done", 3: "pending"}
    assert [p.target for p in plan.parts] == ["t/00-one.md", "t/01-two.md", "t/02-three.md"]
    assert plan.part(1).completed_at == "2025-01-02 10:00"
    assert [(p.line, "U+FFFD" in p.message and "wrong encoding" in p.message) for p in plan.problems] == [(1, True)]
    assert any("cp1252" in r for r in plan.repairs) and any("line 1 kept its mojibake" in r for r in plan.repairs)


def test_a_garbled_mark_kb_cannot_repair_is_a_problem_naming_the_encoding():
    text = UTF8_PLAN.replace("[✓] PART 1", "[âœ\ufffd] PART 1")
    plan = parse_plan(text.encode("utf-8"), "p.md")
    assert plan.part(1).target == "t/00-one.md"
    on_line_8 = [p.message for p in plan.problems if p.line == 8]
    assert any("mojibake" in m and "PART 1" in m for m in on_line_8), on_line_8
    assert any("U+FFFD" in m and "wrong encoding" in m for m in on_line_8)


def test_an_edit_of_a_lossy_plan_writes_it_back_repaired_but_the_lossy_line(tmp_path):
    path = tmp_path / "p.md"
    path.write_bytes(lossy_plan())
    assert set_part_status(path, {3: "pending"}).changed_parts == []
    assert path.read_bytes() == lossy_plan()
    result = set_part_status(path, {1: "pending"})
    assert result.changed_parts == [1] and result.repairs_written
    after = path.read_bytes()
    assert after.split(b"\n")[0] == lossy_plan().split(b"\n")[0]  # the lossy line, byte for byte
    assert "- [ ] PART 1: Create t/00-one.md\n".encode() in after and "[✓] PART 2".encode() in after
    plan = parse_plan(after, "p.md")
    assert {p.number: p.status for p in plan.parts} == {1: "pending", 2: "done", 3: "pending"}


def test_an_edit_that_would_not_read_back_is_refused():
    decoded = decode_plan_bytes(UTF8_PLAN.encode())
    lines = list(decoded.lines)
    lines[6] = lines[6].replace("PART 1:", "PART\r1:")  # a new line break: the file would not read back
    with pytest.raises(PlanError, match="nothing was written"):
        decoded.encode(lines, {6})


def test_the_cli_noop_reset_leaves_a_stray_byte_plan_alone(kb_cli, tmp_path):
    path = tmp_path / "p.md"
    path.write_bytes(stray_byte_plan())
    result = kb_cli("plan", "reset", str(path), "--part", "3", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "Nothing to reset" in result.out
    assert path.read_bytes() == stray_byte_plan()
