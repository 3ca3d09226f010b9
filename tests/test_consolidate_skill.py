"""SKILL.md: an Agent Skill whose front matter passes the limits, hand-written text kept."""

from __future__ import annotations

import re

import pytest
import yaml

from kb.consolidate import consolidate
from kb.consolidate.render import build_description, skill_name_from, split_front_matter
from kb.errors import KbError
from test_consolidate_support import add_part, assert_links_resolve, make_workspace

NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def front_matter(text: str) -> dict:
    fm, _ = split_front_matter(text)
    assert fm is not None, text[:200]
    return yaml.safe_load(fm)


def test_skill_front_matter_passes_the_limits_and_the_body_navigates(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "performance/00-profiling.md", "GPU Profiling", 1, plan="plans/p.md", part=1)
    add_part(ws, "distributed-training/00-zero.md", "ZeRO Optimizer", 2, plan="plans/p.md", part=2)
    consolidate(ws, commit=False)
    text = ws.skill_path.read_text()
    meta = front_matter(text)
    assert NAME.match(meta["name"]) and len(meta["name"]) <= 64
    assert 0 < len(meta["description"]) <= 1024
    assert "performance" in meta["description"] and "distributed training" in meta["description"]
    assert "Use it when" in meta["description"] and "INDEX.md" in meta["description"]
    block = text.split("<!-- kb:skill:start -->", 1)[1].split("<!-- kb:skill:end -->", 1)[0]
    assert "[INDEX.md](INDEX.md)" in block
    topic_lines = [line for line in block.splitlines() if line.startswith("- [")]
    assert [line.split("]")[0] for line in topic_lines] == ["- [distributed-training/", "- [performance/"]
    assert_links_resolve(ws.root, block)


def test_hand_written_text_and_other_front_matter_fields_survive(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    ws.skill_path.write_text(
        "---\n# my comment\nname: my-kb\nlicense: MIT\ndescription: >-\n  old text\n  more old text\n"
        "metadata:\n  owner: me\n---\n\n# My skill\n\nIntro I wrote.\n\n<!-- kb:skill:start -->\nold\n<!-- kb:skill:end -->\n\nOutro.\n"
    )
    consolidate(ws, commit=False)
    text = ws.skill_path.read_text()
    meta = front_matter(text)
    assert meta["name"] == "my-kb"  # a valid name a person chose is kept
    assert meta["license"] == "MIT" and meta["metadata"] == {"owner": "me"}
    assert meta["description"] == "old text more old text"  # the person's description stays theirs
    assert "# my comment\n" in text
    assert "\n# My skill\n\nIntro I wrote.\n\n<!-- kb:skill:start -->\n" in text
    assert text.endswith("<!-- kb:skill:end -->\n\nOutro.\n")
    assert "\nold\n" not in text


def test_an_invalid_name_is_replaced_by_one_from_the_folder(tmp_path):
    ws = make_workspace(tmp_path, git=False, name="My Cool_KB")
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    ws.skill_path.write_text("---\nname: Not Valid!\ndescription: x\n---\n")
    result = consolidate(ws, commit=False)
    assert result.skill_name == "my-cool-kb"
    assert front_matter(ws.skill_path.read_text())["name"] == "my-cool-kb"
    assert "<!-- kb:skill:start -->" in ws.skill_path.read_text()


def test_skill_names_and_descriptions_stay_within_limits():
    assert skill_name_from("--Über  KB--") == "ber-kb"
    assert skill_name_from("!!!") == "knowledge-base"
    assert len(skill_name_from("x" * 100)) == 64
    topics = [{"name": f"topic-{i:03d}-with-a-long-name", "titles": [f"A rather long title number {j}" for j in range(5)]}
              for i in range(80)]
    text = build_description(topics, 8000)
    assert len(text) <= 1024 and "more topics" in text and "Use it when" in text
    assert build_description([], 0).strip()


def test_broken_skill_front_matter_is_an_error(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    ws.skill_path.write_text("---\nname: [unclosed\n---\nbody\n")
    with pytest.raises(KbError, match="SKILL.md"):
        consolidate(ws, commit=False)
