"""check_draft: the rules every engine's draft is held to."""

from __future__ import annotations

from kb.engine.check import check_draft
from kb.engine.types import Draft, Research, WriteRequest
from kb.records import SourceRef
from offline_fixtures import demo_plan

SOURCES = [SourceRef(id=1, title="a", kind="doc", locator="demo.a"), SourceRef(id=2, title="b", kind="web", locator="https://x/")]


def request():
    return WriteRequest(plan_title=None, topic=None, plan_path="plans/training.md", part=demo_plan().part(1),
                        context=[], research=Research(by_section={}, sources=SOURCES))


def body(*, sections=(1, 2, 3, 4), extra="", code="x = 1"):
    titles = {s.number: s.title for s in demo_plan().part(1).sections}
    parts = ["# Title", "", "## Overview", "", "Intro [1].", ""]
    for n in sections:
        parts += [f"## Section {n}: {titles[n]}", "", f"Text citing [1][2] and [1, 2]. {extra}", ""]
    parts += ["```python", code, "```", "", "## Sources", "", "- [1] a", "- [2] b"]
    return "\n".join(parts) + "\n"


def draft(text, sources=SOURCES):
    return Draft(title="Title", body=text, sources=list(sources), engine="test")


def test_a_good_draft_passes():
    assert check_draft(draft(body()), request()) == []


def test_empty_body():
    assert check_draft(draft("  \n"), request()) == ["the body is empty"]


def test_missing_and_empty_sections():
    reasons = check_draft(draft(body(sections=(1, 2, 4))), request())
    assert reasons == ['section 3 is missing: add the heading "## Section 3: DALI pipelines"']
    text = body().replace("## Section 2: Checkpoint API\n\nText citing [1][2] and [1, 2]. \n", "## Section 2: Checkpoint API\n\n")
    assert check_draft(draft(text), request()) == ['section 2 ("Section 2: Checkpoint API") has no text']


def test_heading_match_ignores_case_and_spacing_but_not_level():
    text = body().replace("## Section 1: Activation checkpointing basics", "##  section 1:  Activation Checkpointing basics")
    assert check_draft(draft(text), request()) == []
    text = body().replace("## Section 1:", "### Section 1:")
    assert any(r.startswith("section 1 is missing") for r in check_draft(draft(text), request()))


def test_citations_must_resolve_outside_code_only():
    reasons = check_draft(draft(body(extra="See [3] and [2, 7].")), request())
    assert [r.split(" (line")[0] for r in reasons] == ["citation [3]", "citation [7]"]
    assert "(sources: [1], [2])" in reasons[0]
    # Indexing in code, escaped brackets, links and code spans are not citations.
    ok = body(extra="Use `x[5]`, \\[9\\] and [9](https://e.x/).", code="y = [1, 2][9 - 9]\nz = x[4]")
    assert check_draft(draft(ok.replace("x = 1", "x = [0] * 9")), request()) == []


def test_python_fences_must_parse_other_languages_are_free():
    reasons = check_draft(draft(body(code="def f(:\n    pass")), request())
    assert len(reasons) == 1 and reasons[0].startswith("python code block 1 (line") and "does not parse" in reasons[0]
    text = body(code="def f(:").replace("```python", '```python kb:skip="fragment"')
    assert check_draft(draft(text), request())  # options after the language do not exempt it
    text = body(code="$ pip install x ((").replace("```python", "```console")
    assert check_draft(draft(text), request()) == []


def test_citations_are_checked_against_the_drafts_own_sources():
    # A writer that renumbers (the offline one does) is held to its draft's list, not research's.
    assert check_draft(draft(body(), sources=SOURCES[:1]), request())[0].startswith("citation [2]")


def test_a_bullet_citing_before_its_colon_is_filled_and_a_reference_definition_cites_nothing():
    from kb.engine.check import EMPTY, FILLED, UNCITED, section_state
    # The digest's argument bullets read "`API`, argument `x` [1]: what it does" (no table row under them).
    assert section_state("- `torch.compile`, argument `dynamic` [1]: Use dynamic shape tracing.\n") == FILLED
    assert section_state("From the docstring of `torch.compile` [1]:\n\n```python\nx = 1\n```\n") == FILLED
    assert section_state("See the docs.\n\n[1]: https://pytorch.org/docs\n") == UNCITED
    assert section_state("Research found nothing on this section.\n") == EMPTY
