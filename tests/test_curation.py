"""A reviewer's relevance decisions (curation.toml, `kb curate`): what research offers, accepted or rejected."""

from __future__ import annotations

import json

import pytest

from conftest import run_kb
from kb.curation import Decision, forget_decision, load_decisions, record_decision
from kb.engine.check import CURATED_MARK
from kb.errors import ConfigError
from kb.records import read_drop, read_knowledge
from test_llm_relevance import gamma_workspace as _workspace, run_with_model


def test_a_decision_is_recorded_beside_the_files_comments_and_a_second_one_on_the_same_pair_replaces_it(tmp_path):
    (tmp_path / "curation.toml").write_text("# kept: why we curate\n", encoding="utf-8")
    assert not record_decision(tmp_path, Decision("p", 1, 2, "torch.jit.save", "accept", by="Ada", why="saves \"it\""))
    assert not record_decision(tmp_path, Decision("p", 1, 3, "torch.save", "reject"))
    assert record_decision(tmp_path, Decision("p", 1, 2, "torch.jit.save", "reject", by="Bob"))
    text = (tmp_path / "curation.toml").read_text(encoding="utf-8")
    assert text.startswith("# kept: why we curate\n") and text.count("torch.jit.save") == 1
    decisions = load_decisions(tmp_path)
    assert len(decisions) == 2
    assert decisions.for_section("p", 1, 2) == ([], {"torch.jit.save"})
    assert decisions.for_section("p", 1, 3) == ([], {"torch.save"}) and decisions.for_section("q", 1, 2) == ([], set())
    assert forget_decision(tmp_path, "p", 1, 3, "torch.save") and not forget_decision(tmp_path, "p", 1, 3, "torch.save")
    assert len(load_decisions(tmp_path)) == 1
    assert (tmp_path / "curation.toml").read_text(encoding="utf-8").startswith("# kept: why we curate\n")
    assert not forget_decision(tmp_path / "nowhere", "p", 1, 2, "x")


@pytest.mark.parametrize("text, says", [
    ("[[decision]]\nplan = 'p'\npart = 1\nsection = 2\nsource = 'x'\nverdict = 'maybe'\n", "use accept or reject"),
    ("[[decision]]\nplan = 'p'\npart = 1\nsource = 'x'\nverdict = 'accept'\n", "lacks section"),
    ("[[decision]]\nplan = 'p'\npart = 'one'\nsection = 2\nsource = 'x'\nverdict = 'accept'\n", "part must be a whole number"),
    ("[[decision]]\nplan = 'p'\npart = 1\nsection = 2\nsource = 'x'\nverdict = 'accept'\nscore = 3\n", "unknown keys score"),
    ("[[decision]\n", "not valid TOML"),
    ("[settings]\nx = 1\n", "unknown tables settings"),
])
def test_a_malformed_curation_file_is_refused_with_what_to_fix(tmp_path, text, says):
    (tmp_path / "curation.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=says):
        load_decisions(tmp_path)
    with pytest.raises(ConfigError):  # and never rewritten over
        record_decision(tmp_path, Decision("p", 1, 2, "y", "accept"))
    assert (tmp_path / "curation.toml").read_text(encoding="utf-8") == text


def test_the_reviewers_line_names_each_passage_with_its_reason_and_each_reviewer_and_kb_reads_it_back():
    from kb.engine.check import curated, curated_note
    from kb.engine.types import Passage

    def passage(locator, by, why=None, kind="doc"):
        return Passage(kind=kind, locator=locator, title="Notes" if kind != "doc" else locator, text="",
                       curated_by=by, curated_why=why)

    research = Passage(kind="doc", locator="x.y", title="x.y", text="")
    assert curated_note([research]) == ""
    one = curated_note([passage("a.b", "Ada", "saves *it*\n for C++"), research])
    assert one == "*A reviewer (Ada) chose `a.b` (saves \\*it\\* for C++) for this section; research did not pick it.*"
    two = curated_note([passage("a.b", "Ada"), passage("c.d", "Ada")])
    assert two == "*A reviewer (Ada) chose `a.b` and `c.d` for this section; research did not pick them.*"
    mixed = curated_note([passage("a.b", "Ada"), passage("n.md", "Bob", "x", kind="folder")])
    assert mixed == "*A reviewer (Ada) chose `a.b`; a reviewer (Bob) chose Notes (x) for this section; research did not pick them.*"
    assert all(curated(line) for line in (one, two, mixed))
    assert not curated("A reviewer of the docs says this API is slow [1].")


def _section(ws, number: int) -> str:
    body = read_knowledge(ws.knowledge_dir / "topic/01-part-1.md").body
    return body.split(f"## Section {number}:", 1)[1].split("\n## ", 1)[0]


def _latest_drop(ws):
    return max((read_drop(p) for p in ws.drops_dir.glob("KNOWLEDGE-DROP-*.md")), key=lambda d: d.created)


def test_a_reviewer_fills_a_section_research_left_empty_and_empties_one_it_filled_and_every_output_says_so(tmp_path):
    ws = _workspace(tmp_path)
    first = run_kb("run-plan", "plans/p.md", "--batch", "1", cwd=ws.root)
    assert first.code == 0, first.out + first.err
    assert "Research found nothing" in _section(ws, 2) and "[1]" in _section(ws, 1)

    offers = run_kb("curate", "offers", "plans/p.md", "--json", cwd=ws.root)
    assert offers.code == 0, offers.err
    (entry,) = json.loads(offers.out)["sections"]
    assert (entry["part"], entry["section"]) == (1, 2)
    assert "notes/orchard.md" in [o["source"] for o in entry["offers"]]

    accepted = run_kb("curate", "accept", "plans/p.md", "1.2", "notes/orchard.md", "--by", "Ada",
                      "--why", "the cider press's gamma knob is tuned by hand", cwd=ws.root)
    assert accepted.code == 0, accepted.err
    assert "kb run-plan plans/p.md --part 1 --redo" in " ".join(accepted.out.split())
    redo = run_kb("run-plan", "plans/p.md", "--part", "1", "--redo", cwd=ws.root)
    assert redo.code == 0, redo.out + redo.err

    section = _section(ws, 2)
    assert "Research found nothing" not in section
    assert ("*A reviewer (Ada) chose Orchard notes (the cider press's gamma knob is tuned by hand) for this section; "
            "research did not pick it.*") in section
    assert "[2]" in section and "[1]" in _section(ws, 1) and CURATED_MARK not in _section(ws, 1)
    drop = _latest_drop(ws)
    assert drop.sections_curated == ["Gamma tuning"] and drop.sections_empty == [] and drop.status == "complete"
    assert not any("nothing in the local corpus" in w for w in drop.warnings)
    report = json.loads(run_kb("report", "--json", cwd=ws.root).out)
    assert report["totals"]["sections_curated"] == 1 and report["totals"]["sections_empty"] == 0
    assert "1 with a passage a reviewer chose" in run_kb("report", cwd=ws.root).out

    rejected = run_kb("curate", "reject", "plans/p.md", "1.1", "notes/alpha.md", "--by", "Bob", cwd=ws.root)
    assert rejected.code == 0, rejected.err
    listed = json.loads(run_kb("curate", "list", "--json", cwd=ws.root).out)["decisions"]
    assert [(d["section"], d["source"], d["verdict"], d["by"]) for d in listed] == [
        (2, "notes/orchard.md", "accept", "Ada"), (1, "notes/alpha.md", "reject", "Bob")]
    redo = run_kb("run-plan", "plans/p.md", "--part", "1", "--redo", cwd=ws.root)
    assert redo.code == 0, redo.out + redo.err
    assert "Research found nothing" in _section(ws, 1) and "notes/alpha.md" not in _section(ws, 1)
    assert _latest_drop(ws).sections_empty == ["Alpha topics"]


def test_curate_refuses_a_section_the_plan_lacks_and_a_source_the_corpus_lacks_naming_the_fix(tmp_path):
    ws = _workspace(tmp_path)
    no_section = run_kb("curate", "accept", "plans/p.md", "1.9", "notes/orchard.md", cwd=ws.root)
    assert no_section.code == 2 and "has no section 9 (its sections: 1, 2)" in no_section.err
    no_part = run_kb("curate", "reject", "plans/p.md", "4.1", "x", cwd=ws.root)
    assert no_part.code == 2 and "has no PART 4" in no_part.err
    badly = run_kb("curate", "accept", "plans/p.md", "two", "x", cwd=ws.root)
    assert badly.code == 2 and "PART.SECTION" in badly.err
    unknown = run_kb("curate", "accept", "plans/p.md", "1.2", "notes/missing.md", cwd=ws.root)
    assert unknown.code == 2 and "kb curate offers" in unknown.err
    never = run_kb("curate", "forget", "plans/p.md", "1.2", "notes/orchard.md", cwd=ws.root)
    assert never.code == 2 and "has no decision on notes/orchard.md" in never.err
    assert not (ws.root / "curation.toml").exists()


def test_a_malformed_curation_file_stops_the_run_before_it_writes(tmp_path):
    ws = _workspace(tmp_path)
    (ws.root / "curation.toml").write_text("[[decision]]\nplan = 'p'\n", encoding="utf-8")
    result = run_kb("run-plan", "plans/p.md", "--batch", "1", cwd=ws.root)
    assert result.code != 0 and "curation.toml: decision 1 lacks part" in result.out + result.err
    assert not (ws.knowledge_dir / "topic/01-part-1.md").exists()


def test_an_llm_engine_writes_a_reviewers_passage_and_kb_says_a_reviewer_chose_it(tmp_path):
    ws = _workspace(tmp_path)
    record_decision(ws.root, Decision("p", 1, 2, "notes/orchard.md", "accept", by="Ada"))
    result, asked = run_with_model(ws)
    assert result.code == 0, result.out + result.err
    assert asked == []  # the reviewer's passage fills the section: the model is not asked whether it is on topic
    section = _section(ws, 2)
    assert "*A reviewer (Ada) chose Orchard notes for this section; research did not pick it.*" in section
    assert "Research found nothing" not in section and CURATED_MARK not in _section(ws, 1)
    assert _latest_drop(ws).sections_curated == ["Gamma tuning"]
