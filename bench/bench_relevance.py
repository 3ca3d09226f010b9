"""Precision and recall of the section filler on the labelled set, the old filler and the new one in one run.

    .venv/bin/python bench/bench_relevance.py [--workspace DIR] [--show-wrong] [--shipped [--misses] [--drops DIR]]

The old filler is the lexical one (BM25 candidates kept by word-coverage rules, the code on main
before issue 19: ``LocalResearcher(filler="lexical")``); the new one judges each candidate on what
it is about (``filler="judged"``, kb.engine.offline.relevance). Both fill every section of the
performance plan and the asyncio plan from one corpus (torch, asyncio and concurrent docstrings),
and their picks are scored against tests/relevance_labels.jsonl (QUALITY.md labels).

``--shipped`` scores the new filler on the shipped base instead: the performance plan filled from this repository's
own corpus (kb.toml: torch, bitsandbytes, deepspeed; ``pip install -e '.[corpus]'``), against every label of a
passage that corpus indexes. ``--misses`` then lists, for each section it leaves empty, the passages labelled S and
why the filler left each one (below the bar, not a candidate, foreign package, out of corpus, ...). Its ``offered``
line counts, by label, the passages research offers an LLM engine's relevance judge (kb.llm.relevance_judge) for
the sections it leaves empty: the sections with an offer labelled S or P are what a model judging as the labels
do could fill. ``--show-wrong`` lists the picks labelled U and the unlabelled ones. ``--drops DIR`` scores a model's
relevance verdicts, as the drops of an LLM-engine run of the shipped plan record them, against the labels.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from relevance_set import PACKAGES, PLANS, fill_plan, link_plan, load_labels, rank_plan, score_picks, score_verdicts  # noqa: E402

from kb.corpus.index import load_corpus  # noqa: E402
from kb.curation import Decisions, load_decisions  # noqa: E402
from kb.engine.offline.research import LocalResearcher  # noqa: E402
from kb.plan import load_plan  # noqa: E402
from kb.workspace import init_workspace, open_workspace  # noqa: E402


# The indexed passages issue 19 found missing from the sections that they answer.
RECALL_MISSES = [(("performance", 1, 6), "torch.cuda.Event.elapsed_time"),
                 (("performance", 2, 2), "torch.set_float32_matmul_precision"),
                 (("performance", 2, 4), "torch.cuda.set_sync_debug_mode"),
                 (("performance", 5, 6), "torch.cuda.memory._record_memory_history")]

# Sections a reviewer of the shipped base found empty while torch's docstrings answer them (read and labelled S or P).
RECALL_TARGETS = [(("performance", 3, 3), "torch.Tensor.cuda"), (("performance", 14, 2), "torch.Tensor.cuda"),
                  (("performance", 3, 6), "torch.cuda.set_sync_debug_mode"),
                  (("performance", 4, 3), "torch.cuda.is_bf16_supported"),
                  (("performance", 5, 4), "torch.distributed.optim.ZeroRedundancyOptimizer"),
                  (("performance", 13, 2), "torch.distributed.optim.ZeroRedundancyOptimizer"),
                  (("performance", 5, 5), "torch.distributed.fsdp.FullyShardedDataParallel"),
                  (("performance", 7, 4), "torch.optim.lr_scheduler.LinearLR"),
                  (("performance", 7, 7), "torch.nn.parallel.DistributedDataParallel.no_sync"),
                  (("performance", 12, 2), "torch.jit.freeze"), (("performance", 12, 5), "torch.jit.save"),
                  (("performance", 13, 4), "torch.distributed.tensor.parallel.parallelize_module"),
                  (("performance", 13, 7), "torch.distributed.checkpoint.save"), (("performance", 14, 3), "torch.vmap")]


def workspace(folder: Path):
    """A workspace whose corpus is the labelled set's (made once; its index is reused on later runs)."""
    if (folder / "kb.toml").exists():
        return open_workspace(folder)
    ws, _ = init_workspace(folder)
    toml = (folder / "kb.toml").read_text(encoding="utf-8")
    toml = re.sub(r"(?m)^packages = .*$", f"packages = {PACKAGES!r}".replace("'", '"'), toml)
    (folder / "kb.toml").write_text(toml, encoding="utf-8")
    return open_workspace(folder)


def offered(researcher, plan, index, labels: dict, filled: int, show_unlabelled: bool = False) -> None:
    """What the LLM engines' relevance judge (kb.llm.relevance_judge) is shown: per section research leaves empty,
    its best passages below the bar, by label. An LLM engine has no link route: research fills ``filled`` sections,
    and a model that judged as the labels do would fill those with an on-topic offer too (the judge's ceiling)."""
    counts: dict[str, int] = {}
    sections = answered = 0
    for part in plan.parts:
        research = researcher.research_sync(part, [], index)
        for number, passages in research.candidates.items():
            sections += 1
            said = [labels.get(("performance", part.number, number, p.locator), {}).get("label", "unlabelled")
                    for p in passages]
            for label, passage in zip(said, passages):
                counts[label] = counts.get(label, 0) + 1
                if label == "unlabelled" and show_unlabelled:
                    print(f"    ?  offered {('performance', part.number, number, passage.locator)}")
            answered += any(label in ("S", "P") for label in said)
    print(f"offered  shipped: {sections} empty sections offer {sum(counts.values())} passages to an LLM engine's "
          f"relevance judge: S {counts.get('S', 0)}, P {counts.get('P', 0)}, U {counts.get('U', 0)}, unlabelled "
          f"{counts.get('unlabelled', 0)}; {answered} of those sections have an offer labelled S or P, so a model "
          f"judging as the labels do fills {filled + answered}/{sum(len(p.sections) for p in plan.parts)}")


def model_verdicts(drops_dir: Path, labels: dict) -> None:
    """How the model's relevance verdicts in an LLM-engine run's drops (kb run-plan --engine openai --search local
    on a copy of this workspace) agree with the labels: precision of its "on topic", and the on-topic passages it
    turned down."""
    from kb.records import read_drop

    drops = [read_drop(p) for p in sorted(drops_dir.glob("KNOWLEDGE-DROP-*.md"))]
    said = score_verdicts(drops, labels)
    on, off = said["on_topic"], said["off_topic"]
    labelled_on = on["S"] + on["P"] + on["U"]
    precision = (on["S"] + on["P"]) / labelled_on if labelled_on else 1.0
    turned_down = off["S"] + off["P"]
    recall = (on["S"] + on["P"]) / (on["S"] + on["P"] + turned_down) if on["S"] + on["P"] + turned_down else 1.0
    print(f"model    {drops_dir}: {len(drops)} drops; called on topic: S {on['S']}, P {on['P']}, U {on['U']}, "
          f"unlabelled {on['unlabelled']} (precision {precision:.1%} of the labelled); called off topic: S {off['S']}, "
          f"P {off['P']}, U {off['U']}, unlabelled {off['unlabelled']} (recall {recall:.1%})")


def curated(ws, labels: dict, filled: set, planned: int) -> None:
    """The workspace's reviewer decisions (curation.toml), scored on the labels: a reviewer's accept is no more
    trusted than the filler's pick. ``filled``: the sections the filler fills by itself."""
    decisions = [d for d in load_decisions(ws.root).items.values() if d.plan == "performance"]
    if not decisions:
        print("curated  shipped: no curation.toml decisions")
        return
    counts = {"S": 0, "P": 0, "U": 0, "unlabelled": 0}
    sections = set()
    for d in decisions:
        if d.verdict == "accept":
            row = labels.get(("performance", d.part, d.section, d.source))
            counts[row["label"] if row else "unlabelled"] += 1
            sections.add(("performance", d.part, d.section))
    rejected = sum(1 for d in decisions if d.verdict == "reject")
    added = sections - filled
    print(f"curated  shipped: curation.toml accepts {sum(counts.values())} passages for {len(sections)} sections: "
          f"S {counts['S']}, P {counts['P']}, U {counts['U']}, unlabelled {counts['unlabelled']}; rejects {rejected}; "
          f"{len(added)} sections the filler leaves empty, so the base fills {len(filled | sections)}/{planned}")


def shipped(misses: bool, show_wrong: bool = False, drops_dir: Path | None = None) -> int:
    """The new filler on the shipped plan and corpus, scored on every label of a passage that corpus indexes."""
    ws = open_workspace(ROOT)
    absent = [name for name in ws.config.corpus.packages if importlib.util.find_spec(name.split(".")[0]) is None]
    if absent:
        print(f"shipped corpus: {', '.join(absent)} not installed: pip install -c constraints.txt -e '.[corpus]'")
        return 2
    started = time.monotonic()
    index = load_corpus(ws)
    packages = list(index.info.get("packages") or {})
    labels = load_labels(packages)
    print(f"shipped corpus: {len(index)} documents ({', '.join(packages)}), loaded in {time.monotonic() - started:.1f} s;"
          f" {len(labels)} labelled pairs of its passages")
    plan = load_plan(ROOT / "plans" / "completed" / "performance.md")
    # The filler alone: a reviewer's decisions (curation.toml) are scored apart, below.
    researcher = LocalResearcher(ws, index=index, decisions=Decisions())
    ranked = rank_plan(researcher, plan, "performance", index)
    picks = fill_plan(researcher, plan, "performance", index, ranked)
    links = link_plan(researcher, plan, "performance", picks)
    for name, chosen in (("new", picks), ("new+link", {**picks, **links})):
        s = score_picks(chosen, labels)
        print(f"{name:<8} shipped: {s.picked} picked, S {s.labelled['S']}, P {s.labelled['P']}, U {s.labelled['U']}, "
              f"unlabelled {len(s.unlabelled)}; strict {s.strict:.1%}, lenient {s.lenient:.1%}, recall {s.recall:.1%}, "
              f"sections {s.sections_filled}/{s.sections}")
        if show_wrong and name == "new+link":
            for key in [*s.wrong, *s.unlabelled]:
                print(f"    {'U' if key in s.wrong else '?'}  {key}")
    offered(researcher, plan, index, labels, sum(1 for v in picks.values() if v), show_wrong)
    curated(ws, labels, {k for k, v in {**picks, **links}.items() if v}, len(ranked))
    if drops_dir is not None:
        model_verdicts(drops_dir, labels)
    if misses:
        why: dict[str, int] = {}
        print("\nsupported answers of the sections the filler leaves empty, and why:")
        for key, result in ranked.items():
            if result.chosen or key in links:
                continue
            seen = {c.doc.locator: c for c in result.rejected}
            for (plan_id, p, n, locator), row in labels.items():
                if (plan_id, p, n) != key or row["label"] != "S":
                    continue
                reason = seen[locator].why if locator in seen else "not a candidate"
                why[reason] = why.get(reason, 0) + 1
                print(f"  {p}:{n} {result.query.title[:40]:<40} {locator:<65} {reason}")
        print("  " + ", ".join(f"{reason}: {count}" for reason, count in sorted(why.items(), key=lambda rc: -rc[1])))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "kb-bench-relevance")
    parser.add_argument("--show-wrong", action="store_true", help="list the picks labelled U and the unlabelled picks")
    parser.add_argument("--shipped", action="store_true", help="score the shipped plan on the shipped corpus instead")
    parser.add_argument("--misses", action="store_true", help="with --shipped: why each S answer of an empty section is missed")
    parser.add_argument("--drops", type=Path, metavar="DIR",
                        help="with --shipped: score the relevance verdicts a model gave in these LLM-engine drops")
    args = parser.parse_args()
    if (args.misses or args.drops) and not args.shipped:
        parser.error("--misses and --drops go with --shipped")
    if args.drops is not None and not args.drops.is_dir():
        parser.error(f"--drops {args.drops}: not a folder of drops")
    if args.shipped:
        return shipped(args.misses, args.show_wrong, args.drops)
    ws = workspace(args.workspace)
    started = time.monotonic()
    index = load_corpus(ws)
    print(f"corpus: {len(index)} documents ({', '.join(PACKAGES)}), loaded in {time.monotonic() - started:.1f} s")
    labels = load_labels(PACKAGES)
    plans = {plan_id: load_plan(path) for plan_id, path in PLANS.items()}
    print(f"labelled set: {len(labels)} pairs from {', '.join(PACKAGES)} "
          f"({sum(r['on_topic'] for r in labels.values())} on topic) over {len(plans)} plans; "
          f"{len(load_labels()) - len(labels)} more from packages this corpus does not index\n")
    header = f"{'filler':<8} {'plan':<12} {'picked':>6} {'S':>4} {'P':>4} {'U':>4} {'unlab':>5} " \
             f"{'strict':>7} {'lenient':>7} {'recall':>7} {'sect.rec':>8} {'filled':>7} {'s':>6}"
    print(header)
    print("-" * len(header))
    for filler in ("lexical", "judged"):
        researcher = LocalResearcher(ws, index=index, filler=filler, decisions=Decisions())
        for plan_id in [*plans, "all"]:
            started = time.monotonic()
            picks = {}
            for pid, plan in plans.items():
                if plan_id in (pid, "all"):
                    picks.update(fill_plan(researcher, plan, pid, index))
            s = score_picks(picks, {k: v for k, v in labels.items() if plan_id in (k[0], "all")})
            name = "old" if filler == "lexical" else "new"
            print(f"{name:<8} {plan_id:<12} {s.picked:>6} {s.labelled['S']:>4} {s.labelled['P']:>4} "
                  f"{s.labelled['U']:>4} {len(s.unlabelled):>5} {s.strict:>7.1%} {s.lenient:>7.1%} {s.recall:>7.1%} "
                  f"{s.section_recall:>8.1%} {s.sections_filled:>3}/{s.sections:<3} {time.monotonic() - started:>6.1f}")
            if args.show_wrong and plan_id == "all":
                for key in s.wrong:
                    print(f"    U  {key}")
                for key in s.unlabelled:
                    print(f"    ?  {key}")
            if filler == "judged":
                # The writer's link route: a section left empty links to the file quoting a passage on topic for it.
                started = time.monotonic()
                links = {}
                for pid, plan in plans.items():
                    if plan_id in (pid, "all"):
                        links.update(link_plan(researcher, plan, pid, {k: v for k, v in picks.items() if k[0] == pid}))
                scoped = {k: v for k, v in labels.items() if plan_id in (k[0], "all")}
                for name, chosen in (("links", links), ("new+link", {**picks, **links})):
                    s = score_picks(chosen, scoped)
                    filled = f"{s.sections_filled:>3}/{s.sections:<3}" if name != "links" else f"{'+' + str(s.sections_filled):>7}"
                    print(f"{name:<8} {plan_id:<12} {s.picked:>6} {s.labelled['S']:>4} {s.labelled['P']:>4} "
                          f"{s.labelled['U']:>4} {len(s.unlabelled):>5} {s.strict:>7.1%} {s.lenient:>7.1%} {s.recall:>7.1%} "
                          f"{s.section_recall:>8.1%} {filled} {time.monotonic() - started:>6.1f}")
                    if args.show_wrong and plan_id == "all" and name == "links":
                        for key in [*s.wrong, *s.unlabelled]:
                            print(f"    {'U' if key in s.wrong else '?'}  {key}")
        found = [f"{loc.rsplit('.', 1)[-1]} {'yes' if loc in picks.get(key, []) else 'no'}" for key, loc in RECALL_MISSES]
        print(f"{'':<8} issue 19's recall misses picked: {', '.join(found)}")
        on_topic = [f"{key[1]}.{key[2]} {'yes' if any(labels.get((*key, loc), {}).get('on_topic') for loc in picks.get(key, [])) else 'no'}"
                    for key in dict.fromkeys(k for k, _ in RECALL_TARGETS)]
        print(f"{'':<8} reviewer's recall targets filled on topic (part.section): {', '.join(on_topic)}")
    print("\nstrict = S / labelled picks, lenient = (S+P) / labelled picks; recall = on-topic labelled pairs picked;"
          "\nsect.rec = sections with a labelled on-topic passage that got one; unlab = picks nobody labelled."
          "\nlinks = the writer's link route alone (sections the new filler left empty, linked to the file that quotes"
          "\nan on-topic passage); new+link = the new filler's picks and those links together.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
