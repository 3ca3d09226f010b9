"""The plan parser on the real seed and on small messy plans of our own."""

from __future__ import annotations

import textwrap

from kb.plan import parse_plan
from kb.plan.encoding import decode_plan_bytes


def plan_text(body: str) -> str:
    return textwrap.dedent(body).lstrip("\n")


def test_seed_plan_parses_with_mojibake_repaired(seed_bytes):
    plan = parse_plan(seed_bytes, "seed.md")
    assert plan.topic == "Performance Engineering & Optimization"
    assert plan.metadata["Date"] == "2025-11-14"
    assert [b.number for b in plan.batches] == [1, 2, 3, 4]
    assert [len(b.parts) for b in plan.batches] == [4, 4, 4, 4]
    assert [p.number for p in plan.parts] == list(range(1, 17))
    assert all(p.status == "done" for p in plan.parts)
    assert all(len(p.sections) == 8 for p in plan.parts)
    first = plan.part(1)
    assert first.completed_at == "2025-11-16 14:38"
    assert first.target == "performance/00-gpu-profiling-nsight-tensorboard.md"
    assert [r.path for r in first.reads][0] == "gcp-vertex/12-tensorboard-profiling-optimization.md"
    assert first.reads[0].note == "TensorBoard profiling"
    assert len(first.reads) == 3 and len(first.searches) == 4
    assert first.searches[0] == "Nsight Systems GPU profiling 2024"
    assert (first.sections[0].number, first.sections[0].title) == (1, "Nsight Systems")
    assert first.sections[0].details == "timeline view, kernel analysis, API traces"
    assert first.cite[0] == "gcp-vertex/12 (TensorBoard)"
    assert first.drop == "KNOWLEDGE-DROP-gpu-profiling-2025-11-14-[TIME].md"
    assert first.drop_slug == "gpu-profiling"
    assert first.influenced_by.startswith("Files (Profiling knowledge)")
    assert first.line == 90 and first.status_line == 92 and first.sections[0].line == 108
    assert plan.problems == []
    assert any("Mac Roman" in r for r in plan.repairs)
    # The emoji headings came back whole, not as "üöÄ".
    assert "🚀" in decode_plan_bytes(seed_bytes).text


def test_cp1252_mojibake_is_repaired():
    good = "# Knowledge Expansion: X (1 runners in 1 batches)\n\n# BATCH 1: A\n\n## PART 1: T\n\n- [✓] PART 1: Create x/00-a.md (Completed 2025-01-02 03:04)\n"
    garbled = good.encode("utf-8").decode("cp1252", errors="replace").encode("utf-8")
    plan = parse_plan(garbled, "p.md")
    assert any("cp1252" in r for r in plan.repairs)
    assert plan.part(1).status == "done"
    assert plan.part(1).completed_at == "2025-01-02 03:04"


def test_clean_utf8_with_accents_is_not_repaired():
    plan = parse_plan("# Knowledge Expansion: Café ✓ (x)\n\n# BATCH 1: B\n\n## PART 1: Naïve\n\n- [ ] PART 1: Create a/00-b.md\n".encode(), "p.md")
    assert plan.repairs == []
    assert plan.topic == "Café ✓"
    assert plan.part(1).title == "Naïve"


def test_checkbox_variants_crlf_and_skipped_numbers():
    text = plan_text(
        """
        # Knowledge Expansion: Demo (6 runners in 2 batches)

        **Date**: 2025-01-01

        # BATCH 1: First

        ## PART 1: One
        - [ ] PART 1: Create demo/00-one.md

        ## PART 2: Two
        - [x] PART 2: Create demo/01-two.md (Completed 2025-01-02 10:00)

        ## PART 4: Four (numbers may skip)
        - [X] PART 4: Create demo/03-four.md (Completed 2025-01-02 11:00)

        | a table | between parts |
        |---|---|
        | 1 | 2 |

        Some prose the author left here.

        # BATCH 2: Second

        ## PART 7: Seven
        - [✅] PART 7: Create `demo/06-seven.md` (Completed 2025-01-03 9:05)

        ## PART 8: Eight
        - [/] PART 8: Create demo/07-eight.md

        ## PART 9: Nine
        - [✓] PART 9: Create demo/08-nine.md (Completed 2025-01-03 12:00)
        """
    ).replace("\n", "\r\n")
    plan = parse_plan(text.encode(), "demo.md")
    status = {p.number: p.status for p in plan.parts}
    assert status == {1: "pending", 2: "done", 4: "done", 7: "done", 8: "failed", 9: "done"}
    assert plan.part(7).target == "demo/06-seven.md"
    assert plan.part(7).completed_at == "2025-01-03 09:05"
    assert plan.part(4).title == "Four (numbers may skip)"
    assert plan.metadata == {"Date": "2025-01-01"}
    assert any("CRLF" in r for r in plan.repairs)
    # Missing steps are fine: no reads, searches or sections, and no problem for it.
    assert plan.part(1).sections == [] and plan.part(1).searches == []
    assert plan.problems == []


def test_unrepairable_problems_name_line_and_reason():
    text = plan_text(
        """
        # Knowledge Expansion: Bad (5 runners in 3 batches)

        # BATCH 1: Escapes

        ## PART 1: Up and out
        - [ ] PART 1: Create ../../x.md

        ## PART 2: Absolute
        - [ ] PART 2: Create /etc/passwd.md

        ## PART 3: Same file
        - [ ] PART 3: Create t/00-same.md

        ## PART 4: Same file again
        - [ ] PART 4: Create t/./00-same.md

        ## PART 5: No target at all

        **Step 1: Web Research**
        - [ ] Search: "anything"

        # BATCH 2: Empty

        # BATCH 3: Fine

        ## PART 6: Fine
        - [ ] PART 6: Create t/01-fine.md
        """
    )
    plan = parse_plan(text.encode(), "bad.md")
    messages = {p.line: p.message for p in plan.problems}
    assert "escapes" in messages[6] and "PART 1" in messages[6]
    assert "absolute" in messages[9]
    assert "PART 4 writes t/00-same.md, which PART 3" in messages[15]
    assert "PART 5 has no target" in messages[17]
    assert "BATCH 2 has no parts" in messages[22]
    assert plan.part(5).searches == ["anything"]
    assert plan.part(6).target == "t/01-fine.md"


def test_step_lists_are_read_with_notes_details_and_lines():
    text = plan_text(
        """
        # Knowledge Expansion: Steps (1 runners in 1 batches)

        # BATCH 1: Only

        ## PART 3: Full part (~700 lines)

        - [ ] PART 3: Create topic/02-full.md

        **Step 0: Check Existing Knowledge**
        - [ ] Read other/01-thing.md (why we read it (really))
        - [ ] Read `missing/02-x.md`

        **Influenced by**: Files 1, 2 - reasons

        **Step 1: Web Research**
        - [ ] Search: "first query"
        - [ ] Search: second query without quotes

        **Step 2: Create Knowledge File**
        - [ ] Section 1: Alpha (details, more details)
        - [ ] Section 2: Beta
        - [ ] **CITE**: other/01 (thing); missing/02

        **Step 3: Create KNOWLEDGE DROP**
        - [ ] Create KNOWLEDGE-DROP-full-part-2025-01-01-[TIME].md
        """
    )
    part = parse_plan(text.encode(), "s.md").part(3)
    assert part.planned_lines == 700 and part.title == "Full part"
    assert [(r.path, r.note, r.line) for r in part.reads] == [
        ("other/01-thing.md", "why we read it (really)", 10),
        ("missing/02-x.md", "", 11),
    ]
    assert part.influenced_by == "Files 1, 2 - reasons"
    assert part.searches == ["first query", "second query without quotes"]
    assert [(s.number, s.title, s.details) for s in part.sections] == [(1, "Alpha", "details, more details"), (2, "Beta", "")]
    assert part.cite == ["other/01 (thing)", "missing/02"]
    assert part.drop_slug == "full-part"


def test_not_a_plan_is_rejected():
    import pytest

    from kb.errors import PlanError

    with pytest.raises(PlanError, match="not an expansion plan"):
        parse_plan(b"just some text\n\nwith nothing in it\n", "x.md")


def test_the_block_only_parse_reads_plans_as_a_full_commonmark_parse_does(seed_bytes, monkeypatch):
    # The parser skips markdown-it's inline pass for speed; what it builds must not change.
    import kb.plan.parser as parser
    from markdown_it import MarkdownIt

    fast = parse_plan(seed_bytes, "seed.md")
    monkeypatch.setattr(parser, "block_parser", lambda: MarkdownIt("commonmark"))
    full = parse_plan(seed_bytes, "seed.md")
    assert fast == full
    assert len(fast.parts) == 16 and fast.parts[3].sections and fast.parts[3].reads


def test_a_plan_that_is_not_cp1252_mojibake_leaves_no_reference_cycle():
    # The codec's error handler refuses "✓": the exception it raises must not keep the
    # frames of everything up the stack alive (consolidate's whole run, once) until the
    # cycle collector runs.
    import gc

    gc.collect()
    gc.disable()
    try:
        text = "Plan ✓ with a caf\u00c3\u00a9 that is not mojibake once ✓ is in it"
        assert decode_plan_bytes(text.encode("utf-8")).text == text
        assert gc.collect() == 0
    finally:
        gc.enable()
