"""kb's front-matter writer writes what PyYAML writes, byte for byte, or declines."""

from __future__ import annotations

import random

import yaml

from kb.records import DropRecord, KnowledgeMeta, SourceRef, dump_yaml
from kb.yamlfast import dump
from test_consolidate_fastyaml import TRICKY, random_records

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
