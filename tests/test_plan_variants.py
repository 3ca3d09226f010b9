"""Plan variants of the skill trees kb adopts, each written here in its shape (issue 21): read as a
person reads them, through `kb plan show --json` as a user sees them."""

from __future__ import annotations

import json
import textwrap

from kb.plan import parse_plan


def plan_text(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


def show_json(kb_cli, tmp_path, text: str) -> dict:
    path = tmp_path / "ingestion.md"
    path.write_text(text, encoding="utf-8")
    result = kb_cli("plan", "show", str(path), "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    return json.loads(result.out)


def parts_of(doc: dict) -> dict[int, dict]:
    return {p["number"]: p for b in doc["batches"] for p in b["parts"]}


def test_completion_first_and_date_only_completion(kb_cli, tmp_path):
    doc = show_json(kb_cli, tmp_path, plan_text("""
        # Knowledge Expansion: T

        # BATCH 1: B

        ## PART 1: One
        - [✓] PART 1: (Completed 2025-01-31 16:45) Create t/one.md

        ## PART 2: Two
        - [✓] PART 2: Create t/two.md (Completed 2025-01-31)
        """))
    parts = parts_of(doc)
    assert (parts[1]["status"], parts[1]["target"], parts[1]["completed_at"]) == ("done", "t/one.md", "2025-01-31 16:45")
    assert (parts[2]["status"], parts[2]["target"], parts[2]["completed_at"]) == ("done", "t/two.md", "2025-01-31")
    assert doc["problems"] == []


def test_a_ticked_part_line_without_a_target_keeps_its_tick(kb_cli, tmp_path):
    doc = show_json(kb_cli, tmp_path, plan_text("""
        # Knowledge Expansion: T

        # BATCH 1: B

        ## PART 2: Research core concepts
        - [✓] PART 2: Research core concepts
        """))
    part = parts_of(doc)[2]
    assert (part["status"], part["target"], part["title"]) == ("done", None, "Research core concepts")
    assert any("PART 2 has no target" in p["message"] for p in doc["problems"])


def test_batch_2a_is_a_batch_of_its_own(kb_cli, tmp_path):
    doc = show_json(kb_cli, tmp_path, plan_text("""
        # Knowledge Expansion: T

        # BATCH 1: First

        ## PART 1: One
        - [ ] PART 1: Create t/one.md

        # BATCH 2: Second

        ## PART 2: Two
        - [ ] PART 2: Create t/two.md

        # BATCH 2a: Added later

        ## PART 3: Three
        - [ ] PART 3: Create t/three.md

        # BATCH 3: Third

        ## PART 4: Four
        - [ ] PART 4: Create t/four.md
        """))
    batches = [(b["label"], b["name"], [p["number"] for p in b["parts"]]) for b in doc["batches"]]
    assert batches == [("1", "First", [1]), ("2", "Second", [2]), ("2a", "Added later", [3]), ("3", "Third", [4])]
    numbers = [b["number"] for b in doc["batches"]]
    assert len(set(numbers)) == 4 and numbers[:2] == [1, 2] and numbers[3] == 3
    assert parts_of(doc)[3]["batch"] == numbers[2]
    assert doc["problems"] == []


def test_write_section_n_is_a_section(kb_cli, tmp_path):
    doc = show_json(kb_cli, tmp_path, plan_text("""
        # Knowledge Expansion: T

        # BATCH 1: B

        ## PART 1: One
        - [ ] PART 1: Create t/one.md

        **Step 2: Create Knowledge File**
        - [ ] Write Section 1: Overview (what and why)
        - [ ] Write Section 2: Usage
        """))
    sections = parts_of(doc)[1]["sections"]
    assert [(s["number"], s["title"], s["details"]) for s in sections] == [(1, "Overview", "what and why"), (2, "Usage", "")]


def test_parts_under_headings_after_a_batch_overview_table_are_in_their_batches(kb_cli, tmp_path):
    doc = show_json(kb_cli, tmp_path, plan_text("""
        # Knowledge Expansion: T

        ## Batch Overview

        | Batch | PARTs | Focus |
        |-------|-------|-------|
        | 1 | 1-2 | Foundations |
        | 2 | PART 3, PART 4 | Advanced |

        ## PART 1: One
        - [✓] PART 1: Create t/one.md (Completed 2025-01-01 10:00)

        ## PART 2: Two
        - [ ] PART 2: Create t/two.md

        ## PART 3: Three
        - [ ] PART 3: Create t/three.md

        ## PART 4: Four
        - [ ] PART 4: Create t/four.md
        """))
    assert [(b["number"], b["name"], [p["number"] for p in b["parts"]]) for b in doc["batches"]] == [
        (1, "Foundations", [1, 2]), (2, "Advanced", [3, 4])]
    assert not any("not inside any BATCH" in p["message"] for p in doc["problems"])
    assert doc["problems"] == []


def test_a_part_listed_twice_keeps_the_ticked_state(kb_cli, tmp_path):
    doc = show_json(kb_cli, tmp_path, plan_text("""
        # Knowledge Expansion: T

        # BATCH 1: B

        ## PART 1: One
        - [ ] PART 1: Create t/one.md

        ## PART 2: Two
        - [ ] PART 2: Create t/two.md

        ## Progress

        - [✓] PART 1: Create t/one.md (Completed 2025-01-02 09:30)
        - [ ] PART 2: Create t/two.md
        """))
    parts = parts_of(doc)
    assert sorted(parts) == [1, 2]
    assert (parts[1]["status"], parts[1]["completed_at"]) == ("done", "2025-01-02 09:30")
    assert parts[1]["status_lines"] == [6, 13]
    assert parts[2]["status"] == "pending"
    assert doc["problems"] == []


def test_a_checklist_before_the_part_sections_is_the_same_parts(tmp_path):
    plan = parse_plan(plan_text("""
        # Knowledge Expansion: T

        - [✓] PART 1: Create t/one.md (Completed 2025-01-02 09:30)
        - [ ] PART 2: Create t/two.md

        # BATCH 1: B

        ## PART 1: One
        - [ ] PART 1: Create t/one.md

        ## PART 2: Two
        - [ ] PART 2: Create t/two.md
        """).encode(), "p.md")
    assert [(p.number, p.title, p.batch, p.status) for p in plan.parts] == [(1, "One", 1, "done"), (2, "Two", 1, "pending")]
    assert plan.problems == []


def test_reset_unticks_every_copy_of_a_part_listed_twice(tmp_path):
    from kb.plan.edit import set_part_status

    path = tmp_path / "p.md"
    path.write_text("# Knowledge Expansion: T\n\n# BATCH 1: B\n\n## PART 1: One\n- [✓] PART 1: Create t/one.md (Completed 2025-01-02 09:30)\n\n"
                    "## Progress\n\n- [✓] PART 1: Create t/one.md (Completed 2025-01-02 09:30)\n", encoding="utf-8")
    assert set_part_status(path, {1: "pending"}).changed_parts == [1]
    assert parse_plan(path.read_bytes()).part(1).status == "pending"
    assert "[✓]" not in path.read_text(encoding="utf-8")


def test_a_plan_with_no_parts_says_so(kb_cli, tmp_path):
    doc = show_json(kb_cli, tmp_path, "# Knowledge Expansion: Nothing yet\n\n**Date**: 2025-01-01\n\nIdeas only.\n")
    assert doc["batches"] == []
    assert [p["message"] for p in doc["problems"]] == [
        "no PARTs found (no '## PART n: <title>' heading and no '- [ ] PART n: Create <path>' line)"]


def test_a_target_under_knowledge_is_read_inside_knowledge(kb_cli, tmp_path):
    path = tmp_path / "p.md"
    path.write_text("# Knowledge Expansion: T\n\n# BATCH 1: B\n\n## PART 1: One\n- [ ] PART 1: Create knowledge/io/x.md\n",
                    encoding="utf-8")
    doc = json.loads(kb_cli("plan", "show", str(path), "--json", cwd=tmp_path).out)
    assert parts_of(doc)[1]["target"] == "io/x.md"
    shown = kb_cli("plan", "show", str(path), cwd=tmp_path)
    assert "knowledge/io/x.md names the knowledge/ folder itself; read as io/x.md" in shown.out


def test_a_knowledge_prefixed_target_lands_in_knowledge_not_knowledge_knowledge(tmp_path):
    from kb.workspace import init_workspace

    workspace, _ = init_workspace(tmp_path / "ws")
    plan = parse_plan(b"# Knowledge Expansion: T\n\n# BATCH 1: B\n\n## PART 1: One\n- [ ] PART 1: Create knowledge/io/x.md\n")
    assert workspace.knowledge_path(plan.part(1).target) == workspace.knowledge_dir / "io" / "x.md"


def test_a_mention_of_a_part_in_a_plain_list_is_no_status_line():
    plan = parse_plan(b"# Knowledge Expansion: T\n\n## Overview\n\n- PART 1: profiling basics\n- PART 2: memory\n\n"
                      b"# BATCH 1: B\n\n## PART 1: One\n- [ ] PART 1: Create t/one.md\n\n"
                      b"## PART 2: Two\n- [x] PART 2: Create t/two.md (Completed 2025-01-01 01:01)\n")
    assert [(p.number, p.status, p.status_lines) for p in plan.parts] == [(1, "pending", [11]), (2, "done", [14])]
    assert plan.problems == []
