"""consolidate's fast front-matter reader agrees with PyYAML, or declines."""

from __future__ import annotations

import random
import string

import yaml

from kb.consolidate.fastyaml import load
from kb.consolidate.scan import drop_info, knowledge_info
from kb.records import dump_yaml, read_drop, read_knowledge
from test_consolidate_support import add_drop, add_knowledge, make_workspace

ALPHABET = string.ascii_letters + string.digits + " -_:#'\"\\/.,[]{}!&*|>%@`?~é✓\t"
TRICKY = ["yes", "no", "on", "null", "~", "1.5", "007", "0x1F", "0o17", "1_000", "2025-01-01", "2025-11-16T14:38:00Z",
          "1e3", "3f2a9c", "123e4567", "12:30", "-", "- x", "-x", "-3", "a: b", "a #b", "true", "True", "NaN", ".inf", ""]


def random_records(seed: int, count: int):
    """Front-matter-like mappings with tricky scalars, lists and nested mappings."""
    rng = random.Random(seed)

    def text() -> str:
        return rng.choice(["".join(rng.choice(ALPHABET) for _ in range(rng.choice([1, 3, 8, 20]))), rng.choice(TRICKY)])

    def value(depth: int = 0):
        roll = rng.random()
        if roll < 0.4:
            return text()
        if roll < 0.55:
            return rng.choice([0, -3, 42, 1.25, -0.5, 1e20, None, True, False])
        if depth:
            return text()
        if roll < 0.75:
            return [value(1) for _ in range(rng.randint(0, 3))]
        if roll < 0.9:
            return [{f"k{j}": value(1) for j in range(rng.randint(1, 3))} for _ in range(rng.randint(0, 2))]
        return {f"n{j}": value(1) for j in range(rng.randint(0, 3))}

    for _ in range(count):
        yield {f"key{j}": value() for j in range(rng.randint(1, 6))}


def test_kb_writes_front_matter_byte_for_byte_as_pure_pyyaml_would():
    # kb dumps with libyaml's emitter for speed; files must not change with it.
    for data in random_records(5, 3000):
        assert dump_yaml(data) == yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000), data
    long = {"title": "é " * 900, "sections": ["x" * 1200], "nested": [{"a": "b: c"}]}
    assert dump_yaml(long, width=1_000_000) == yaml.safe_dump(long, sort_keys=False, allow_unicode=True, width=1_000_000)


def test_the_fast_reader_returns_what_pyyaml_returns_or_nothing():
    accepted = 0
    for data in random_records(3, 3000):
        dumped = dump_yaml(data)
        got = load(dumped)
        if got is None:
            continue
        accepted += 1
        expected = yaml.safe_load(dumped)
        assert got == expected, dumped
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()], dumped
    assert accepted > 1500  # it is the fast path for most documents, not a bystander


def test_consolidate_reads_records_as_records_reads_them(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    path = add_knowledge(ws, "perf/00-a.md", "Alpha: the 1st", 1, plan="plans/p.md", part=3, batch=1)
    info = knowledge_info(ws.root, "knowledge/perf/00-a.md")
    doc = read_knowledge(path)
    assert (info["title"], info["plan"], info["part"], info["batch"]) == (doc.meta.title, "plans/p.md", 3, 1)
    assert info["sections"] == doc.meta.sections and info["sources"] == len(doc.meta.sources)
    assert info["edited"] is False
    path.write_text(path.read_text().replace("explains how", "explains, by hand, how"))
    assert knowledge_info(ws.root, "knowledge/perf/00-a.md")["edited"] is True
    drop = add_drop(ws, "perf/00-a.md", "Alpha", plan="plans/p.md", part=3, batch=1)
    got = drop_info(ws.root, f"drops/{drop.name}")
    record = read_drop(drop)
    assert (got["plan"], got["part"], got["batch"], got["status"], got["consolidated"]) == (
        record.plan, record.part, record.batch, record.status, record.consolidated)
    assert got["knowledge_file"] == record.knowledge_file == "knowledge/perf/00-a.md"


def test_lines_read_before_give_the_same_values_and_fresh_lists():
    text = dump_yaml({"warnings": [], "tokens": {}, "sections": ["A", "B"], "sources": [{"id": 1, "tags": []}],
                      "nested": {"input": 0, "extra": []}})
    first, second = load(text), load(text)  # the second is read from the remembered lines
    assert first == second == yaml.safe_load(text)
    first["warnings"].append("changed")
    first["sources"][0]["tags"].append("changed")
    first["nested"]["extra"].append("changed")
    first["tokens"]["changed"] = 1
    third = load(text)
    assert third == second == yaml.safe_load(text)
    # The same line means the same everywhere, whatever document it is met in first.
    assert load("a: x\nb:\n- a: x\n  b: y\n") == {"a": "x", "b": [{"a": "x", "b": "y"}]}
    assert load("b:\n- a: x\n  b:\n") is None and load("b:\n  b:\n") is None
