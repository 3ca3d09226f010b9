"""The oracle's rules, called directly with small in-memory inputs: no files, no git, no
worker processes (the fixture below makes starting either one fail the test)."""

from __future__ import annotations

import subprocess

import pytest

from kb.consolidate.decide import Seen, decide, merge_pending
from kb.consolidate.gitops import Change
from kb.consolidate.model import DropDone, PlanDone
from kb.consolidate.render import INDEX_MARKERS, TemplateSource
from kb.consolidate.snippets import SnippetResults

INDEX = TemplateSource(
    "{% for t in topics %}## {{ t.name }}\n{% for f in t.files %}- {{ f.title }} | {{ f.snippet_status }} | {{ f.plan_path }} PART {{ f.part }}\n"
    "{% endfor %}{% endfor %}files {{ totals.files }}", "test index")
SKILL = TemplateSource("{{ description }}", "test skill")


@pytest.fixture(autouse=True)
def no_processes(monkeypatch):
    import concurrent.futures

    def refuse(*_args, **_kwargs):
        raise AssertionError("the decision core started a process")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)


def knowledge(title, plan=None, part=None, snippets=1, sig=None):
    return {"title": title, "summary": f"{title} in brief.", "sections": ["Basics"], "sources": 1, "snippets": snippets,
            "plan": plan, "batch": 1 if part else None, "part": part, "front_matter": True, "edited": False, "sig": sig}


def drop(target, plan="plans/p.md", part=1, status="complete", consolidated=None, created="2025-11-16T14:00:00Z"):
    return {"title": target, "plan": plan, "batch": 1, "part": part, "status": status, "knowledge_file": target,
            "created": created, "consolidated": consolidated, "sections": 1, "snippets": 1}


def plan(*parts, reads=None, cite=None):
    """A plan's reduced form: (number, status, target) per PART."""
    return {"title": "P", "parts": [{"number": n, "batch": 1, "status": status, "line": 10 * n, "target": target,
                                     "reads": (reads or {}).get(n, []), "cite": (cite or {}).get(n, [])}
                                    for n, status, target in parts]}


def seen(**kw) -> Seen:
    base = dict(knowledge={}, drops={}, plans={}, completed=set(), index_template=INDEX, skill_template=SKILL, name_hint="My KB")
    return Seen(**{**base, **kw})


def test_new_drops_say_what_they_bring_grouped_by_plan():
    result = decide(seen(
        knowledge={"knowledge/a/00-x.md": knowledge("X", "plans/p.md", 1), "knowledge/a/01-y.md": knowledge("Y", "plans/p.md", 2)},
        drops={
            "drops/D-old.md": drop("knowledge/a/00-x.md", part=1, consolidated="2025-11-15T00:00:00Z"),
            "drops/D-x2.md": drop("knowledge/a/00-x.md", part=1),  # a rerun of PART 1: its file changed
            "drops/D-y.md": drop("knowledge/a/01-y.md", part=2),
            "drops/D-z.md": drop("knowledge/a/02-z.md", part=3, status="failed"),
        },
        plans={"plans/p.md": plan((1, "done", "a/00-x.md"), (2, "done", "a/01-y.md"), (3, "pending", "a/02-z.md"))},
    ))
    assert result.new_drops == ["drops/D-x2.md", "drops/D-y.md", "drops/D-z.md"]
    assert [(d.path, d.change) for d in result.drops] == [("drops/D-x2.md", "changed"), ("drops/D-y.md", "added"),
                                                          ("drops/D-z.md", "failed")]
    assert result.plans == [PlanDone("plans/p.md", batches=[1], parts=[1, 2, 3], drops=3, moved_to=None)]
    assert result.moves == {} and not result.nothing and result.wants_commit
    assert [d["path"] for d in result.pending["drops"]] == result.new_drops


def test_a_finished_plan_moves_unless_its_place_is_taken():
    finished = {"plans/p.md": plan((1, "done", "a/00-x.md")), "plans/q.md": plan((1, "done", "a/00-x.md"))}
    result = decide(seen(knowledge={"knowledge/a/00-x.md": knowledge("X", "plans/p.md", 1)},
                         drops={"drops/D.md": drop("knowledge/a/00-x.md")}, plans=finished,
                         completed={"plans/completed/q.md"}))
    assert result.moves == {"plans/p.md": "plans/completed/p.md"}
    assert [p.moved_to for p in result.plans] == ["plans/completed/p.md"]
    assert [(f.kind, f.path) for f in result.findings if f.kind == "plan-not-moved"] == [("plan-not-moved", "plans/q.md")]
    # INDEX.md links the plan where it will live.
    assert "- X | 1 snippet | plans/completed/p.md PART 1" in result.index_text
    # A warning about a plan that moves is not repeated by a no-op rerun.
    assert all(w["plan"] != "plans/p.md" for w in result.kept_warnings())


def test_index_lists_every_file_in_natural_order_with_its_snippet_results():
    results = SnippetResults()
    results.by_file["knowledge/a/10-y.md"] = {"pass": 2}
    results.totals.update({"pass": 2})
    result = decide(seen(
        knowledge={"knowledge/a/10-y.md": knowledge("Y", snippets=3), "knowledge/a/9-x.md": knowledge("X", snippets=0)},
        unreadable={"knowledge/a/11-broken.md": "YAMLError: bad", "drops/D-bad.md": "UnicodeDecodeError: bad"},
        results=results,
    ))
    block = result.index_text.split(INDEX_MARKERS[0])[1]
    assert block.index("- X |") < block.index("- Y |") < block.index("- 11-broken |")  # 9 before 10; the unreadable by name
    assert "- Y | 3 snippets: 2 pass, 1 not validated" in block and "- X | no snippets" in block
    assert result.totals["files"] == 3 and result.totals["validation"] == "2 pass" and "files 3" in block
    assert sorted(f.path for f in result.findings if f.kind == "unreadable") == ["drops/D-bad.md", "knowledge/a/11-broken.md"]
    assert result.index_text.startswith("# Knowledge Index") and result.index_changed


def test_nothing_new_decides_nothing_but_a_pending_commit_is_still_due():
    kwargs = dict(knowledge={"knowledge/a/00-x.md": knowledge("X")},
                  drops={"drops/D.md": drop("knowledge/a/00-x.md", consolidated="2025-11-15T00:00:00Z")})
    first = decide(seen(**kwargs))
    again = decide(seen(**kwargs, old_index=first.index_text, old_skill=first.skill_text))
    assert again.nothing and not again.wants_commit and again.new_drops == [] and again.pending is None
    pending = {"drops": [{"path": "drops/D.md", "change": "added", "status": "complete"}], "plans": []}
    assert decide(seen(**kwargs, old_index=first.index_text, old_skill=first.skill_text, pending=pending)).wants_commit


def test_skill_md_keeps_a_valid_name_and_derives_one_otherwise():
    kept = decide(seen(old_skill="---\nname: my-skill\nlicense: MIT\n---\nText\n"))
    assert kept.skill_name == "my-skill" and "license: MIT" in kept.skill_text and "Text" in kept.skill_text
    assert decide(seen()).skill_name == "my-kb"


def test_warnings_ask_the_workspace_only_through_exists():
    result = decide(seen(
        knowledge={"knowledge/a/00-x.md": knowledge("X", "plans/p.md", 1)},
        drops={"drops/D.md": drop("knowledge/a/00-x.md"), "drops/E.md": drop("knowledge/a/gone.md", part=2),
               "drops/F.md": drop("README.md", part=3)},
        plans={"plans/p.md": plan((1, "done", "a/00-x.md"), (2, "pending", "a/01.md"),
                                  reads={1: [["docs/guide.md", 12], ["docs/missing.md", 13]], 2: [["docs/missing.md", 20]]},
                                  cite={1: ["a/00 (fine)", "b/07"]})},
        exists={"docs/guide.md", "README.md"}.__contains__, is_file={"README.md"}.__contains__,
    ))
    messages = [f.message for f in result.findings]
    assert messages == [
        "plans/p.md:10: PART 1 cites b/07, which matches no file in knowledge/",
        "plans/p.md:13: PART 1 Step 0 reads docs/missing.md, which is not in knowledge/",  # PART 2 is pending: not yet
        "drops/E.md: its knowledge file knowledge/a/gone.md does not exist",
    ]
    assert result.totals["warnings"] == 3


def test_near_duplicates_come_from_the_signatures_read():
    from kb.consolidate.similar import signature

    text = " ".join(f"word{i}" for i in range(400))
    result = decide(seen(knowledge={"knowledge/a/00-x.md": knowledge("X", sig=signature(text)),
                                    "knowledge/a/01-y.md": knowledge("Y", sig=signature(text + " tail"))}))
    assert [f.kind for f in result.findings if f.kind == "near-duplicate"] == ["near-duplicate"]


def test_the_commit_message_describes_the_pending_work_and_what_git_staged():
    result = decide(seen(knowledge={"knowledge/a/00-x.md": knowledge("X", "plans/p.md", 1)},
                         drops={"drops/D.md": drop("knowledge/a/00-x.md")}, plans={"plans/p.md": plan((1, "done", "a/00-x.md"))}))
    message = result.commit_message([Change("A", "knowledge/a/00-x.md"), Change("M", "drops/D.md"),
                                     Change("R", "plans/completed/p.md", "plans/p.md"), Change("A", "INDEX.md")])
    assert message.startswith("kb consolidate: 1 drop, 1 file added, 0 changed, 1 plan completed\n\n")
    assert "- plans/p.md: BATCH 1, PART 1 (1 drop); completed, moved to plans/completed/p.md" in message
    assert "Paths committed: INDEX.md 1, drops 1, knowledge 1, plans 1 (4 in all)" in message


def test_pending_work_merges_plan_by_plan():
    old = merge_pending(None, [DropDone("drops/a.md", "plans/p.md", 1, 1, "knowledge/x.md", "complete", "added")],
                        [PlanDone("plans/p.md", [1], [1], 1)], True, False)
    merged = merge_pending(old, [DropDone("drops/b.md", "plans/p.md", 2, 5, "knowledge/y.md", "complete", "added")],
                           [PlanDone("plans/p.md", [2], [5], 1, moved_to="plans/completed/p.md")], False, True)
    assert [d["path"] for d in merged["drops"]] == ["drops/a.md", "drops/b.md"]
    assert merged["plans"] == [{"path": "plans/p.md", "batches": [1, 2], "parts": [1, 5], "drops": 2, "moved_to": "plans/completed/p.md"}]
    assert merged["index"] and merged["skill"]


def test_a_drop_met_again_after_a_crash_counts_once_in_what_is_pending():
    drop_a = DropDone("drops/a.md", "plans/p.md", 1, 1, "knowledge/x.md", "complete", "added")
    first = merge_pending(None, [drop_a], [PlanDone("plans/p.md", [1], [1], 1)], True, True)
    # The run died before stamping: the next one finds drop a new again, and drop b besides.
    drop_b = DropDone("drops/b.md", "plans/p.md", 1, 2, "knowledge/y.md", "complete", "added")
    again = merge_pending(first, [drop_a, drop_b], [PlanDone("plans/p.md", [1], [1, 2], 2)], True, True)
    assert [d["path"] for d in again["drops"]] == ["drops/a.md", "drops/b.md"]
    assert again["plans"][0]["drops"] == 2 and again["plans"][0]["parts"] == [1, 2]
    message = decide(seen()).commit_message([])  # nothing pending: the refresh line
    assert message.startswith("kb consolidate: refresh INDEX.md and SKILL.md")


def test_strict_refuses_broken_knowledge_files_and_names_them():
    from kb.errors import KbError

    broken = {"knowledge/a/00-x.md": {**knowledge("X"), "problems": ["knowledge/a/00-x.md:1: the front matter opened on line 1 is never closed"]}}
    assert [e.path for e in decide(seen(knowledge=broken)).errors] == ["knowledge/a/00-x.md"]
    with pytest.raises(KbError, match=r"1 broken knowledge file \(knowledge/a/00-x.md:1: .*nothing was written"):
        decide(seen(knowledge=broken), strict=True)
    unreadable = decide(seen(unreadable={"knowledge/a/01-y.md": 'ScannerError: bad\n  in "<unicode string>", line 3, column 2'}))
    assert [e.message.split(": the")[0] for e in unreadable.errors] == ["knowledge/a/01-y.md:3"]
