"""Benchmark `kb consolidate` on a generated tree of 10,000 knowledge files.

Scenario: N knowledge files in T topic folders, one unconsolidated drop per file, in a git
repository whose skeleton is committed. 4 active plans of 16 PARTs (all done: they complete
and move to plans/completed/); the other drops name plans already filed under completed/.
Measured: the full consolidation (cold: no .kb cache; reads everything, stamps every drop,
writes INDEX.md and SKILL.md, moves the plans, one commit of everything), the same with
--write-only (on a copy), a no-op rerun, the no-op through the CLI (process start and
imports included), and one more batch of 4 files on top of the 10,000.

Peers, measured in the same run on copies of the same generated tree: git alone committing
it (`git add -A && git commit`, what any tool committing these files pays), and Python
reading every knowledge file and drop once. `vs peer` is seconds / that peer's seconds.

Nothing is deleted until every timed step is done: on ext4 without a journal (this
project's VMs) creating files right after thousands were deleted is several times slower
(the allocator skips recently freed inodes), which would make the numbers depend on the
order of the steps. For the same reason back-to-back runs of this script are slower.

    .venv/bin/python bench/bench_consolidate.py [--files 10000] [--words 600] [--repeat 3] [--no-git]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

from kb.consolidate import consolidate
from kb.records import DropRecord, KnowledgeMeta, SourceRef, read_drop, read_knowledge, write_drop, write_knowledge
from kb.workspace import init_workspace, open_workspace

TARGETS = {"full": 5.0, "full --write-only": 5.0, "no-op": 1.0}
PARTS_PER_PLAN = 16
ACTIVE_PLANS = 4
VOCAB = ("gpu memory kernel tensor batch throughput latency cache warp stream graph compile profile shard "
         "gradient optimizer precision bandwidth allocator overlap pipeline replica checkpoint fusion").split()


def body(title: str, rng: random.Random, words: int) -> str:
    sections = []
    per = max(words // 8, 10)
    for n in range(1, 9):
        prose = " ".join(f"{rng.choice(VOCAB)}{rng.randint(0, 999)}" for _ in range(per))
        sections.append(f"## Section {n}: Topic {n}\n\n{prose} [1].\n")
    code = f"```python\nimport math\nprint(math.sqrt({rng.randint(1, 99)}))\n```\n"
    return (f"# {title}\n\n**{title}: what it is and how to use it.**\n\n## Overview\n\n{title} in brief. More.\n\n"
            + "\n".join(sections) + "\n" + code + "\n## Sources\n\n- [1] torch docs (doc: torch.cuda)\n")


def plan_text(number: int, parts: list[tuple[int, str]]) -> str:
    lines = [f"# Knowledge Expansion: Bench {number} ({len(parts)} runners in 4 batches)", "", "**Date**: 2025-11-14", ""]
    for index, (part, target) in enumerate(parts):
        if index % 4 == 0:
            lines += [f"# BATCH {index // 4 + 1}: Batch", ""]
        lines += [f"## PART {part}: Part {part} (~700 lines)", "", f"- [✓] PART {part}: Create {target} (Completed 2025-11-16 14:38)", "",
                  "**Step 0: Check Existing Knowledge**", f"- [ ] Read {target} (itself)", "",
                  "**Step 2: Create Knowledge File**", "- [ ] Section 1: Topic 1 (x)", f"- [ ] **CITE**: {target.rsplit('-', 1)[0]} (x)", ""]
    return "\n".join(lines) + "\n"


def generate(root: Path, files: int, topics: int, words: int, git: bool) -> Path:
    ws, _ = init_workspace(root / "ws")
    if git:
        for args in (["init", "-q", "-b", "main"], ["config", "user.name", "Bench"], ["config", "user.email", "bench@example.com"],
                     ["config", "commit.gpgsign", "false"], ["add", "-A"], ["commit", "-q", "-m", "skeleton"]):
            subprocess.run(["git", *args], cwd=ws.root, check=True, capture_output=True)
    rng = random.Random(7)
    plans: dict[int, list[tuple[int, str]]] = {}
    for i in range(files):
        topic = f"topic-{i % topics:02d}"
        number = i // topics
        target = f"{topic}/{number:03d}-file-{i}.md"
        plan_no = i // PARTS_PER_PLAN
        part = i % PARTS_PER_PLAN + 1
        plan = f"plans/bench-{plan_no:04d}.md"
        plans.setdefault(plan_no, []).append((part, target))
        title = f"File {i} on {topic}"
        meta = KnowledgeMeta(title=title, plan=plan, batch=(part - 1) // 4 + 1, part=part, sections=[f"Topic {n}" for n in range(1, 9)],
                             sources=[SourceRef(1, "torch docs", "doc", "torch.cuda")], engine="offline")
        write_knowledge(ws.knowledge_dir / target, meta, body(title, rng, words))
        write_drop(ws.drops_dir / f"KNOWLEDGE-DROP-file-{i}-2025-11-16-1438.md", DropRecord(
            plan=plan, batch=meta.batch, part=part, title=title, status="complete", knowledge_file=f"knowledge/{target}",
            created="2025-11-16T14:38:00Z", sections_written=meta.sections, engine="offline"))
    for plan_no, parts in plans.items():
        folder = ws.plans_dir if plan_no < ACTIVE_PLANS else ws.completed_dir
        (folder / f"bench-{plan_no:04d}.md").write_text(plan_text(plan_no, parts), encoding="utf-8")
    # The generated files are the real format: the readers agree.
    sample = read_knowledge(ws.knowledge_dir / plans[0][0][1])
    assert sample.has_front_matter and sample.meta.part == 1
    assert read_drop(next(ws.drops_dir.glob("KNOWLEDGE-DROP-*"))).knowledge_file
    return ws.root


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def fast_generation():
    """The generator writes plainly, without one fsync per file: it sets the scene and is
    not measured (kb's atomic writes would make it take minutes)."""
    import kb.records as records

    def plain_write(path: Path, text: str, durable: bool = True) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(text.encode("utf-8"))

    return mock.patch.object(records, "atomic_write_text", plain_write)


def copy_tree(src: Path, dst: Path) -> Path:
    try:
        subprocess.run(["cp", "-a", str(src), str(dst)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(src, dst, symlinks=True)
    return dst


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def peer_git(root: Path) -> float:
    """Plain git committing the same generated tree: `git add -A && git commit`."""
    # No auto gc: 20,000 loose objects would start a detached `git gc` that competes with
    # the steps timed after this one.
    quiet = ("-c", "gc.auto=0", "-c", "maintenance.auto=false")
    seconds, _ = timed(lambda: (git(root, *quiet, "add", "-A"), git(root, *quiet, "commit", "-q", "-m", "peer")))
    return seconds


def peer_read(root: Path) -> float:
    """Python reading every knowledge file and drop once (bytes, no parsing)."""
    def read_all():
        for folder in ("knowledge", "drops"):
            for dirpath, _, names in os.walk(root / folder):
                for name in names:
                    with open(os.path.join(dirpath, name), "rb") as handle:
                        handle.read()
    seconds, _ = timed(read_all)
    return seconds


class Phases:
    """Collects consolidate's progress messages with their times: where the seconds go."""

    def __init__(self):
        self.marks: list[tuple[float, str]] = []

    def __call__(self, message: str) -> None:
        self.marks.append((time.perf_counter(), " ".join(w for w in message.split() if not w.isdigit())))

    def line(self, total_end: float) -> str:
        return "\n".join(
            f"    {nxt - at:7.3f}  {what}" for (at, what), (nxt, _) in zip(self.marks, self.marks[1:] + [(total_end, "")])
        )


def one_round(pristine: Path, folder: Path, commit: bool, files: int, words: int, last: bool) -> tuple[dict[str, float], dict[str, str], list[str]]:
    """Every timed step on fresh copies of the generated tree: {step: seconds}, notes, phase lines."""
    folder.mkdir()
    root = copy_tree(pristine, folder / "ws")
    copy = copy_tree(pristine, folder / "copy") if commit else None
    peer = copy_tree(pristine, folder / "peer") if commit else None
    os.sync()  # the copies are on disk before anything is timed
    seconds: dict[str, float] = {}
    notes: dict[str, str] = {}
    phase_lines: list[str] = []
    if commit:
        seconds["peer: git add+commit"] = peer_git(peer)
        notes["peer: git add+commit"] = "plain `git add -A && git commit` of the same tree"
    seconds["peer: read all files"] = peer_read(root)
    notes["peer: read all files"] = "Python reads every knowledge file and drop once"
    os.sync()  # the peer's writes (100 MB of git objects) are not ours to flush
    ws = open_workspace(root)
    full_phases = Phases()
    full_s, full = timed(lambda: consolidate(ws, commit=commit, progress=full_phases))
    phase_lines.append("full:\n" + full_phases.line(time.perf_counter()))
    assert len(full.drops) == files and full.totals["files"] == files, (len(full.drops), full.totals)
    seconds["full"] = full_s
    notes["full"] = (f"{len(full.drops)} drops, {sum(1 for p in full.plans if p.moved_to)} plans moved, "
                     f"{len(full.warnings)} warnings, commit {'yes: ' + str(full.commit['files']) + ' paths' if full.commit else 'no'}")
    if commit:
        bare_phases = Phases()
        bare_s, bare = timed(lambda: consolidate(open_workspace(copy), commit=False, progress=bare_phases))
        assert len(bare.drops) == files
        seconds["full --write-only"] = bare_s
        notes["full --write-only"] = "the same, without git (on a copy)"
        phase_lines.append("full --write-only:\n" + bare_phases.line(time.perf_counter()))
    noop_s, noop = timed(lambda: consolidate(ws, commit=commit))
    assert noop.nothing_to_consolidate and noop.commit is None
    seconds["no-op"] = noop_s
    notes["no-op"] = "nothing to consolidate"
    if last:
        cli = [sys.executable, "-m", "kb", "consolidate", "-w", str(root)] + ([] if commit else ["--write-only"])
        cli_s, proc = timed(lambda: subprocess.run(cli, capture_output=True, text=True))
        assert proc.returncode == 0 and "Nothing to consolidate" in proc.stdout, proc.stderr
        seconds["no-op (CLI)"] = cli_s
        notes["no-op (CLI)"] = "python -m kb consolidate: process start + imports"
        rng = random.Random(99)
        for i in range(files, files + 4):
            target = f"topic-new/{i}-file.md"
            write_knowledge(ws.knowledge_dir / target, KnowledgeMeta(title=f"New {i}", plan="plans/new.md", part=i), body(f"New {i}", rng, words))
            write_drop(ws.drops_dir / f"KNOWLEDGE-DROP-new-{i}-2025-11-17-0900.md", DropRecord(
                plan="plans/new.md", batch=1, part=i, title=f"New {i}", status="complete",
                knowledge_file=f"knowledge/{target}", created="2025-11-17T09:00:00Z"))
        inc_s, inc = timed(lambda: consolidate(ws, commit=commit))
        assert len(inc.drops) == 4
        seconds["one more batch"] = inc_s
        notes["one more batch"] = "4 new files + drops on top"
    if commit:
        # What the commit holds is what plain git commits of the consolidated tree.
        listed = subprocess.run(["git", "ls-files", "--", "knowledge", "drops"], cwd=root, capture_output=True, text=True).stdout.split()
        assert len(listed) >= 2 * files, len(listed)
    return seconds, notes, phase_lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--words", type=int, default=600, help="words of prose per file (600 is about 6 KB)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds on fresh copies; the table shows medians")
    parser.add_argument("--no-git", action="store_true", help="measure without the commit (--write-only)")
    parser.add_argument("--keep", action="store_true", help="keep the generated workspace")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kb-bench-consolidate-"))
    commit = not args.no_git
    try:
        with fast_generation():
            gen_s, pristine = timed(lambda: generate(tmp / "pristine", args.files, args.topics, args.words, commit))
        size = sum(p.stat().st_size for p in (pristine / "knowledge").rglob("*.md")) / 1e6
        print(f"generated {args.files} knowledge files ({size:.1f} MB) + {args.files} drops in {args.topics} topics "
              f"in {gen_s:.1f} s under {pristine}")
        rounds = []
        for r in range(args.repeat):
            rounds.append(one_round(pristine, tmp / f"round-{r}", commit, args.files, args.words, last=r == args.repeat - 1))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in rounds[-1][0].items()), flush=True)
        names = list(rounds[-1][0])
        med = {name: statistics.median(r[0][name] for r in rounds if name in r[0]) for name in names}
        notes = rounds[-1][1]
        peer_name = "peer: git add+commit" if commit else "peer: read all files"
        peer = med[peer_name]
        print()
        print(f"{'step':<22} {'seconds':>8} {'target':>7} {'ratio':>6} {'vs peer':>8}  notes")
        for name in names:
            target = TARGETS.get(name)
            ratio = f"{med[name] / target:.2f}" if target else "-"
            versus = f"{med[name] / peer:.2f}" if peer and not name.startswith("peer") else "-"
            print(f"{name:<22} {med[name]:8.3f} {(f'{target:.1f}' if target else '-'):>7} {ratio:>6} {versus:>8}  {notes[name]}")
        print(f"\nmedian of {len(rounds)} round(s); ratio = seconds / target (below 1.00 meets it); "
              f"vs peer = seconds / `{peer_name}` measured in the same round(s).")
        for name, target in TARGETS.items():
            if name in med:
                print(f"target {name}: {med[name]:.2f} s {'<' if med[name] < target else '>='} {target:.1f} s: "
                      f"{'met' if med[name] < target else 'NOT met'}")
        for lines in rounds[-1][2]:
            print(f"\nseconds per phase (last round), {lines}")
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
