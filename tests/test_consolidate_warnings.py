"""Warnings: dangling CITE references and Step 0 reads, files no drop accounts for, drops
whose file is missing, near-duplicate files."""

from __future__ import annotations

from kb.consolidate import consolidate
from kb.consolidate.similar import near_duplicates, signature, signatures, similarity
from test_consolidate_support import add_drop, add_knowledge, add_part, body_text, make_workspace, plan_text


def kinds(result, kind):
    return [w.message for w in result.warnings if w.kind == kind]


def test_dangling_cite_references_and_reads_are_warned_about(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    plan = "plans/perf.md"
    (ws.root / plan).write_text(plan_text(
        [(1, "perf/00-a.md", True), (2, "perf/01-b.md", False)],
        reads={1: ["cuda/06-pytorch-jit.md", "cuda/01-missing.md"], 2: ["nowhere/00-x.md"]},
        cites={1: "cuda/06 (PyTorch); distributed-training/00,03 (ZeRO); cuda/ (all); Files 1, 2 (CPU/GPU)",
               2: "nowhere/05 (pending PARTs are not checked yet)"},
    ))
    add_knowledge(ws, "cuda/06-pytorch-jit.md", "JIT", 5)
    add_knowledge(ws, "distributed-training/00-zero.md", "ZeRO", 6)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan=plan, part=1)
    result = consolidate(ws, commit=False)
    cites = kinds(result, "dangling-cite")
    assert len(cites) == 1 and "PART 1 cites distributed-training/03 (in \"distributed-training/00,03 (ZeRO)\")" in cites[0]
    assert cites[0].startswith("plans/perf.md:")
    reads = kinds(result, "missing-read")
    assert len(reads) == 1 and "PART 1 Step 0 reads cuda/01-missing.md" in reads[0]
    assert reads[0].startswith("plans/perf.md:")  # with the line of the Read
    # The same warnings come back from a rerun that changes nothing (and reads nothing).
    again = consolidate(ws, commit=False)
    assert again.nothing_to_consolidate
    assert kinds(again, "dangling-cite") == cites and kinds(again, "missing-read") == reads


def test_files_without_drops_and_drops_without_files(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    add_knowledge(ws, "perf/01-orphan.md", "Orphan", 2)
    add_drop(ws, "perf/02-gone.md", "Gone", plan="plans/p.md", part=3)
    add_drop(ws, "perf/03-failed.md", "Failed", plan="plans/p.md", part=4, status="failed")
    result = consolidate(ws, commit=False)
    assert kinds(result, "unaccounted-file") == ["knowledge/perf/01-orphan.md: no drop accounts for this file"]
    missing = kinds(result, "missing-knowledge-file")
    assert len(missing) == 1 and "knowledge/perf/02-gone.md does not exist" in missing[0]  # failed drops wrote nothing
    assert [d.change for d in result.drops if d.part == 4] == ["failed"]


def test_near_duplicate_files_are_found_and_distinct_ones_are_not(tmp_path):
    ws = make_workspace(tmp_path, git=False)
    base = body_text("Alpha", 1, words=400)
    add_part(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1)
    add_knowledge(ws, "perf/00-a.md", "Alpha", 1, plan="plans/p.md", part=1, body=base)
    add_part(ws, "perf/01-copy.md", "Alpha copy", 1, plan="plans/p.md", part=2)
    # A near copy: a few words changed, whitespace reflowed.
    add_knowledge(ws, "perf/01-copy.md", "Alpha copy", 1, plan="plans/p.md", part=2,
                  body=base.replace("A second sentence follows.", "Another sentence.").replace("\n\n", "\n\n\n"))
    for i in range(2, 12):
        add_part(ws, f"perf/{i:02d}-other.md", f"Other {i}", 100 + i, plan="plans/p.md", part=i + 1)
    result = consolidate(ws, commit=False)
    dups = kinds(result, "near-duplicate")
    assert len(dups) == 1
    assert dups[0].startswith("knowledge/perf/00-a.md and knowledge/perf/01-copy.md are near-identical")


def test_near_duplicates_scale_linearly_through_lsh_buckets():
    texts = {f"f{i}": body_text(f"T{i}", i, words=200) for i in range(400)}
    texts["dup"] = texts["f7"] + " one more line"
    texts["tiny"] = "too short"
    sigs = {k: signature(v) for k, v in texts.items()}
    assert sigs["tiny"] is None
    pairs = near_duplicates(sigs)
    assert [(p.a, p.b) for p in pairs] == [("dup", "f7")] and pairs[0].similarity > 0.9


def test_a_signature_is_the_same_alone_or_in_any_batch():
    # Cached signatures meet fresh ones: batching must never change a text's signature.
    texts = [body_text(f"T{i}", i, words=80) for i in range(30)]
    texts[3] = "too short"
    texts[5] = "one-enormous-word-" * 10  # long enough, but a single word: no pair
    texts[7] = texts[6].upper().replace(" ", "\n\t  ")  # case and whitespace do not count
    alone = [signature(text) for text in texts]
    assert alone[3] is None and alone[5] is None and alone[7] == alone[6]
    assert signatures(texts) == alone
    assert signatures(texts[::-1]) == alone[::-1]
    assert signatures(texts[10:13] + texts[:2]) == alone[10:13] + alone[:2]
    # Long enough, but no word at all (every byte a separator), first, between and last.
    blank = "\x01" * 100
    assert signature(blank) is None
    assert signatures([blank, texts[0], blank, texts[1], blank]) == [None, alone[0], None, alone[1], None]
    assert signatures([blank, blank]) == [None, None]


def test_similarity_falls_with_the_share_of_words_changed():
    import base64
    import random

    import numpy as np

    rng = random.Random(4)
    base = body_text("Base", 9, words=600)
    words = base.split(" ")

    def edited(share):
        out = list(words)
        for i in rng.sample(range(len(out)), int(len(out) * share)):
            out[i] = f"changed{rng.randint(0, 10**6)}"
        return " ".join(out)

    def sim(a, b):
        return similarity(*(np.frombuffer(base64.b64decode(signature(t)), dtype=np.uint32) for t in (a, b)))

    estimates = [sim(base, edited(share)) for share in (0.0, 0.01, 0.1, 0.3)]
    assert estimates[0] == 1.0 and estimates[1] >= 0.85  # a near copy is caught
    assert estimates[2] < 0.85 and estimates[3] < estimates[2]  # a real rewrite is not
