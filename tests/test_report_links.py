"""`kb report` follows every relative link as a Markdown viewer would, and counts examples and quotes that a
file repeats from another: the issue-19 measures of a knowledge base a reader can trust."""

from __future__ import annotations

import json

from kb.report.links import broken_links, excerpts, heading_anchors, relative_links, repeated_excerpts
from kb.workspace import init_workspace
from conftest import run_kb

EXAMPLE = "import torch\nscaler = torch.amp.GradScaler('cuda')\nloss = model(x).sum()\nscaler.scale(loss).backward()\n"
QUOTE = "> Instances of autocast serve as context managers or decorators that allow regions of your script\n> to run in mixed precision.\n"

FIRST = f"""# First

## Section 1: Overlap

See [the second file](02-second.md), [its section](02-second.md#section-2-data-loading-the-loader) and
[this one](#section-1-overlap); [the plan](../../plans/completed/demo.md) moved; ![figure](img/missing.png).
[Upstream](https://pytorch.org/docs/) is not followed, nor is `[code](nowhere.md)` or:

```python
print("[fenced](nowhere.md)")
```

{QUOTE}
```python
{EXAMPLE}```

[ref]: ../../plans/demo.md
"""

SECOND = f"""# Second

## Section 2: Data loading (the loader)

Back to [the first](01-first.md#section-9-gone) and to [a folder](./) and [outside](../../../../etc/passwd).

{QUOTE}
```python
{EXAMPLE}```

```python
import torch
```
"""


def _workspace(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    folder = ws.root / "knowledge" / "demo"
    folder.mkdir(parents=True)
    (folder / "01-first.md").write_text(FIRST, encoding="utf-8")
    (folder / "02-second.md").write_text(SECOND, encoding="utf-8")
    (ws.root / "plans" / "demo.md").write_text("# a plan\n", encoding="utf-8")
    (ws.root / "INDEX.md").write_text("# Index\n\n- [First](knowledge/demo/01-first.md)\n- [Gone](knowledge/demo/99.md)\n",
                                      encoding="utf-8")
    return ws


def test_links_outside_code_with_no_scheme_are_the_relative_ones():
    found = [target for _line, target in relative_links(FIRST)]
    assert found == ["02-second.md", "02-second.md#section-2-data-loading-the-loader", "#section-1-overlap",
                     "../../plans/completed/demo.md", "img/missing.png", "../../plans/demo.md"]


def test_anchors_are_slugged_as_a_viewer_slugs_headings():
    assert heading_anchors("# A\n\n## Section 2: Data loading (the loader)\n\n## A\n") == {
        "a", "section-2-data-loading-the-loader", "a-1"}


def test_broken_links_name_the_line_target_and_why(tmp_path):
    ws = _workspace(tmp_path)
    broken = broken_links(ws.root, "knowledge/demo/01-first.md", FIRST)
    assert [(b.target, b.why) for b in broken] == [
        ("../../plans/completed/demo.md", "no such file"), ("img/missing.png", "no such file")]
    assert broken[0].line == 6
    broken = broken_links(ws.root, "knowledge/demo/02-second.md", SECOND)
    assert [(b.target, b.why) for b in broken] == [
        ("01-first.md#section-9-gone", "no heading of 01-first.md has that anchor"),
        ("../../../../etc/passwd", "leads outside the workspace")]


def test_an_excerpt_an_earlier_file_shows_is_repeated_and_a_one_liner_is_not():
    first, second = excerpts(FIRST), excerpts(SECOND)
    assert len(first) == 2 and len(second) == 2  # the quote and the example; "import torch" is too short to count
    repeated = repeated_excerpts([("a.md", first), ("b.md", second)])
    assert list(repeated) == ["b.md"] and len(repeated["b.md"]) == 2
    assert repeated_excerpts([("a.md", first), ("a.md", first)]) == {}


def test_a_long_sentence_quoted_again_inside_another_block_or_bullet_is_a_repeat():
    warning = ("Given the way that overlapping DDP with the optimizer is implemented, the first two or three "
               "training iterations do not perform parameter updates in the optimizer step.")
    first = f"- `Zero` [1]: If you pass `overlap=True`, be wary of this. {warning}\n\n## Sources\n\n- [1] [A long title of a source that is listed in every file of the tree](a.md)\n"
    second = (f"> This approach may be preferred if communication is fast.\n>\n> **Warning:** {warning}\n\n"
              "- [1] [A long title of a source that is listed in every file of the tree](a.md)\n")
    repeated = repeated_excerpts([("a.md", excerpts(first)), ("b.md", excerpts(second))])
    assert repeated == {"b.md": [warning[:80]]}  # the sentence, led by another label; a source list's entry is no quote


def test_kb_report_counts_links_and_repeats_and_strict_fails_on_a_broken_link(tmp_path):
    ws = _workspace(tmp_path)
    result = run_kb("report", "--json", "--strict", cwd=ws.root)
    assert result.code == 1, result.err
    doc = json.loads(result.out)
    totals = doc["totals"]
    pages = doc["pages"]
    assert pages["INDEX.md"]["links"] == 2 and pages["SKILL.md"]["broken_links"] == []  # kb init's SKILL.md
    assert (totals["links"], totals["links_broken"], totals["excerpts_repeated"]) == (
        6 + 3 + 2 + pages["SKILL.md"]["links"], 2 + 2 + 1, 2)
    assert "knowledge/demo/01-first.md:6: link img/missing.png is broken (no such file)" in doc["problems"]
    assert "INDEX.md:4: link knowledge/demo/99.md is broken (no such file)" in doc["problems"]
    people = run_kb("report", cwd=ws.root)
    assert f"relative links: {totals['links']} (5 broken); examples or quotes repeated from another file: 2" in " ".join(people.out.split())
