"""kb's records YAML (kb/records_yaml.py): the writer writes what PyYAML writes, byte for byte,
and the reader returns what PyYAML reads; each declines what it cannot be sure of."""

from __future__ import annotations

import random
import string

import yaml

from kb.consolidate.scan import drop_info, knowledge_info
from kb.records import DropRecord, KnowledgeMeta, SourceRef, dump_yaml, read_drop, read_knowledge
from kb.records_yaml import dump, load
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


EDGES = TRICKY + [
    "...", "---", "--- x", "? x", "?x", ":x", "x:", "a:b", "#x", "a#b", "x'y", "'x'", '"x"', " x", "x ", "a  b",
    "%x", "@x", "`x`", "!x", "&x", "*x", "|x", ">x", "{x}", "[x]", "x, y", "x [1]", "Y", "n", "ON", "Off", "~x",
    "=", "<<", "0b101", "0o7", "+1", "-.5", ".5", "1.", "1:30", "-1:30", "2025-11-16 14:38", "1e+3", "inf", ".NaN",
    "caf\u00e9", "\u00a0x", "x\u00a0", "a\u2028b", "a\u0085b", "\ufeffx", "tab\there", "line\nbreak", "emoji \U0001F600",
    "x" * 399, "x" * 401, "word " * 200,
]


def safe_dump(data, width=1000) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=width)


def test_it_writes_what_pyyaml_writes_or_declines():
    accepted = 0
    for seed in range(3):
        for data in random_records(seed, 4000):
            fast = dump(data)
            if fast is not None:
                accepted += 1
                assert fast == safe_dump(data), data
    assert accepted > 10_000  # the fast path for most documents, not a bystander


def test_edge_strings_floats_and_keys():
    rng = random.Random(11)
    values = EDGES + [0.5, -0.0, 1e17, 1e-7, 123456789.125, float("inf"), float("nan"), 2**70, -5, True, None]
    checked = 0
    for value in values:
        for data in ({"k": value}, {"k": [value, "plain"]}, {"k": [{"a": value, "b": 1}]}, {"k": {"a": value}},
                     {value if isinstance(value, str) else "k": 1}):
            fast = dump(data)
            if fast is not None:
                checked += 1
                assert fast == safe_dump(data), data
                assert fast == safe_dump(data, width=1_000_000), data
    for _ in range(2000):
        data = {rng.choice(["a", "b", "c"]): rng.choice(values) for _ in range(3)}
        fast = dump(data)
        if fast is not None:
            assert fast == safe_dump(data), data
    assert checked > 250
    assert dump({"k": "line\nbreak"}) is None and dump({"k": "x" * 401}) is None and dump({"k": float("nan")}) is None
    assert dump({}) is None and dump({1: "x"}) is None and dump({"k": [[1]]}) is None and dump({"k": {"a": [1]}}) is None


def test_the_records_kb_writes_take_the_fast_path():
    meta = KnowledgeMeta(title="GPU memory: what fills it", plan="plans/performance.md", batch=2, part=4,
                         sections=["Section 1: Memory layout", "Activation checkpointing (torch.utils.checkpoint)"],
                         sources=[SourceRef(1, "torch.utils.checkpoint.checkpoint", "doc", "torch.utils.checkpoint.checkpoint"),
                                  SourceRef(2, "A page", "web", "https://example.com/a?b=1#c", accessed="2026-11-30")],
                         engine="offline", model=None, created="2026-11-30T12:00:00Z", content_hash="ab" * 32)
    drop = DropRecord(plan="plans/performance.md", batch=2, part=4, title="GPU memory", status="complete",
                      knowledge_file="knowledge/performance/04-gpu-memory.md", created="2026-11-30T12:00:00Z",
                      sections_written=meta.sections, sources_used=meta.sources, snippets_written=3,
                      warnings=["Step 0: knowledge/x.md does not exist; written without it"], engine="offline",
                      tokens={"input": 0, "output": 0}, cost_usd=None, seconds=1.25)
    for data in (meta.to_dict(), drop.front_matter()):
        assert dump(data) is not None
        assert dump_yaml(data) == safe_dump(data)
        assert yaml.safe_load(dump(data)) == data
