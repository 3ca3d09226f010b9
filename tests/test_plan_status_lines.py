"""One reading of a status line for the parser and the editor (issue 25, items 2 and 3)."""

from __future__ import annotations

from datetime import datetime

from kb.plan import parse_plan
from kb.plan.edit import set_part_status
from kb.plan.status import read_status_line

NOW = datetime(2026, 1, 2, 3, 4)
HEAD = "# Knowledge Expansion: S (2 runners in 1 batches)\n\n# BATCH 1: B\n\n"


def test_a_status_line_the_parser_reads_the_editor_can_reset(tmp_path):
    text = HEAD + "## PART 4: Four\n- * [✓] PART 4: Create t/04.md (Completed 2025-01-01 01:01)\n"
    path = tmp_path / "p.md"
    path.write_text(text, encoding="utf-8")
    assert parse_plan(path.read_bytes()).part(4).status == "done"
    assert set_part_status(path, {4: "pending"}).changed_parts == [4]
    assert path.read_text(encoding="utf-8") == HEAD + "## PART 4: Four\n- * [ ] PART 4: Create t/04.md\n"
    assert parse_plan(path.read_bytes()).part(4).status == "pending"


def test_edits_keep_the_status_lines_trailing_whitespace(tmp_path):
    text = HEAD + "## PART 1: One\n- [ ] PART 1: Create t/01.md  \r\n\r\n## PART 2: Two\n- [x] PART 2: Create t/02.md (Completed 2025-01-01 01:01)\t \n"
    path = tmp_path / "p.md"
    path.write_bytes(text.encode())
    set_part_status(path, {1: "done", 2: "pending"}, now=NOW)
    after = path.read_bytes().decode()
    assert "- [✓] PART 1: Create t/01.md (Completed 2026-01-02 03:04)  \r\n" in after
    assert "- [ ] PART 2: Create t/02.md\t \n" in after
    set_part_status(path, {1: "pending", 2: "done"}, now=datetime(2025, 1, 1, 1, 1))
    assert path.read_bytes().decode() == text.replace("[x]", "[✓]")


def test_parser_and_editor_agree_on_every_line_of_a_messy_plan(tmp_path):
    lines = [
        "- [ ] PART 1: Create t/01.md",
        "* [x] PART 2: Create `t/02.md` (Completed 2025-01-01 01:01)",
        "1. [✅] PART 3: Create t/03.md (Completed 2025-01-01 01:01)",
        "- * [✓] PART 4: Create t/04.md (Completed 2025-01-01 01:01)",
        "  - [X] PART 5: Create t/05.md (Completed 2025-01-01 01:01) trailing note",
        "- [✓] PART 6: (Completed 2025-01-31 16:45) Create t/06.md",
        "- [✓] PART 7: Research core concepts (Completed 2025-01-31)",
        "- **PART 8**: Create t/08.md",
        "> - [ ] PART 9: Create t/09.md",
    ]
    text = HEAD + "".join(f"## PART {i}: P{i}\n{line}\n\n" for i, line in enumerate(lines, 1))
    path = tmp_path / "p.md"
    path.write_text(text, encoding="utf-8")
    plan = parse_plan(path.read_bytes())
    assert [p.number for p in plan.parts] == list(range(1, 10))
    for part in plan.parts:
        assert part.status_line is not None, part.number
        status = read_status_line(text.split("\n")[part.status_line - 1])
        assert status is not None and status.number == part.number
    # Every PART the parser reads can be ticked and unticked, and reads back as edited.
    set_part_status(path, {n: "done" for n in range(1, 10)}, now=NOW)
    assert {p.status for p in parse_plan(path.read_bytes()).parts} == {"done"}
    set_part_status(path, {n: "pending" for n in range(1, 10)})
    again = parse_plan(path.read_bytes())
    assert {p.status for p in again.parts} == {"pending"}
    assert all(p.completed_at is None for p in again.parts)
    assert "- [ ] PART 6: Create t/06.md\n" in path.read_text(encoding="utf-8")


def test_a_part_number_of_5000_digits_is_a_problem_with_its_line(tmp_path):
    huge = "9" * 5000
    text = (HEAD + "## PART 1: One\n- [ ] PART 1: Create t/01.md\n\n"
            f"## PART {huge}: Huge\n- [ ] PART {huge}: Create t/huge.md\n\n- [ ] Section {huge}: x\n\n"
            f"# BATCH {huge}: Huge batch\n")
    plan = parse_plan(text.encode(), "p.md")
    assert [p.number for p in plan.parts] == [1]
    lines = {p.line for p in plan.problems if "5000 digits" in p.message}
    assert lines == {8, 9, 13}, plan.problems
    path = tmp_path / "p.md"
    path.write_text(text, encoding="utf-8")
    assert set_part_status(path, {1: "done"}, now=NOW, status_lines={1: 6}).changed_parts == [1]
