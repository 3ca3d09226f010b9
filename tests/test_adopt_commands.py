"""Every command honours kb.toml's [layout]: a tree whose knowledge root is neither knowledge/ nor
the workspace (skills/gpu), adopted in place, then planned, run, validated, consolidated,
reported and served without a file moved or a path of kb's own layout assumed."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from urllib.parse import unquote

from conftest import run_kb
from kb.workspace import glob_matches, open_workspace

PLAN_DIR = "skills/gpu/_ingest-auto/inprocess/expansion-mem-2025-02-01"
DONE_DIR = "skills/gpu/_ingest-auto/completed/expansion-perf-2025-01-31"

PLAN = """# Knowledge Expansion: Memory (1 runners in 1 batches)

# BATCH 1: Memory (1 runner)

## PART 1: Activation Checkpointing (~300 lines)

- [ ] PART 1: Create perf/02-activation-checkpointing.md

**Step 0: Check Existing Knowledge**
- [ ] Read perf/00-perf.md (old notes)

**Step 1: Web Research**
- [ ] Search: "activation checkpointing recomputation memory"

**Step 2: Create Knowledge File**
- [ ] Section 1: Activation checkpointing basics (recomputation tradeoff)

**Step 3: Create KNOWLEDGE DROP**
- [ ] Create KNOWLEDGE-DROP-checkpointing-2025-02-01-[TIME].md
"""


def gpu_tree(root: Path) -> Path:
    """A repository holding a skill at skills/gpu (topic folders, _ingest-auto/, its own SKILL.md) beside other things."""
    from test_consolidate_support import git_init, run_git

    for topic in ("perf", "cuda"):
        for i in range(2):
            path = root / "skills" / "gpu" / topic / f"0{i}-{topic}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"# {topic} {i}\n\n## Overview\n\nText about {topic}.\n\n```python\nprint(1 + {i})\n```\n\n"
                            f"## Sources\n\n- [a](https://example.org/{topic}{i})\n")
    (root / "skills" / "gpu" / "SKILL.md").write_text("---\nname: gpu\ndescription: Mine, by hand.\n---\n\n# GPU skill\n")
    (root / PLAN_DIR).mkdir(parents=True)
    (root / PLAN_DIR / "ingestion.md").write_text(PLAN)
    (root / DONE_DIR).mkdir(parents=True)
    (root / DONE_DIR / "ingestion.md").write_text("# Knowledge Expansion: perf (1 runners in 1 batches)\n\n# BATCH 1: a\n\n"
                                                 "- [✓] PART 1: (Completed 2025-01-31 16:45) Create perf/00-perf.md\n")
    (root / DONE_DIR / "KNOWLEDGE-DROP-perf-2025-01-31-1645.md").write_text(
        "# KNOWLEDGE DROP: p\n\n**Date**: 2025-01-31\n**File Created**: `perf/00-perf.md` (40 lines)\n**Status**: COMPLETE ✓\n")
    (root / "notes").mkdir()
    (root / "notes" / "ckpt.md").write_text(
        "# Checkpointing notes\n\nActivation checkpointing is a technique that trades compute for memory: activations "
        "are recomputed in the backward pass instead of being stored. The recomputation tradeoff saves memory.\n")
    (root / "README.md").write_text("# a repository with a skill in it\n")
    git_init(root)
    run_git(root, "add", "-A")
    run_git(root, "commit", "-q", "-m", "the tree as the person grew it")
    return root


def _snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and ".git" not in p.parts and ".kb" not in p.parts}


def test_a_knowledge_root_of_its_own_end_to_end(tmp_path):
    from test_consolidate_support import run_git

    root = gpu_tree(tmp_path / "repo")
    adopted = run_kb("init", "--adopt", str(root), "--knowledge", "skills/gpu", "--json", cwd=tmp_path)
    assert adopted.code == 0, adopted.err
    data = json.loads(adopted.out)
    assert data["layout"] == {"knowledge": "skills/gpu", "drops": ["skills/gpu/_ingest-auto/**/KNOWLEDGE-DROP-*.md"],
                              "plans": ["skills/gpu/_ingest-auto/inprocess/*/ingestion.md"],
                              "completed": ["skills/gpu/_ingest-auto/completed/*/ingestion.md"]}
    assert data["found"]["knowledge_files"] == 4  # the topic folders' files: not SKILL.md, drops or plans
    config = (root / "kb.toml").read_text()
    (root / "kb.toml").write_text(re.sub(r"(?m)^packages = .*$", "packages = []",
                                         re.sub(r"(?m)^folders = .*$", 'folders = ["notes"]', config)))
    run_git(root, "add", "kb.toml")
    run_git(root, "commit", "-q", "-m", "adopt")

    plan = f"{PLAN_DIR}/ingestion.md"
    shown = json.loads(run_kb("plan", "show", plan, "--json", cwd=root).out)
    parts = [p for b in shown["batches"] for p in b["parts"]]
    assert [(p["number"], p["target"], p["status"]) for p in parts] == [(1, "perf/02-activation-checkpointing.md", "pending")]

    ran = run_kb("run-plan", plan, "--batch", "1", cwd=root, timeout=300)
    assert ran.code == 0, ran.err + ran.out
    written = root / "skills" / "gpu" / "perf" / "02-activation-checkpointing.md"
    drops = list((root / PLAN_DIR).glob("KNOWLEDGE-DROP-checkpointing-*.md"))
    assert written.is_file() and len(drops) == 1  # the drop beside its plan, as the layout keeps them
    assert not (root / "knowledge").exists() and not (root / "drops").exists() and not (root / "plans").exists()
    text = written.read_text()
    assert "](../../../notes/ckpt.md)" in text and "[perf/00-perf.md](00-perf.md)" in text  # links from where it lies
    assert "knowledge_file: skills/gpu/perf/02-activation-checkpointing.md" in drops[0].read_text()

    validated = run_kb("validate-snippets", "--json", cwd=root, timeout=300)
    assert validated.code == 0, validated.err
    results = json.loads((root / "snippets" / "results.json").read_text())
    assert sorted({s["file"] for s in results["snippets"]}) == [
        "skills/gpu/cuda/00-cuda.md", "skills/gpu/cuda/01-cuda.md", "skills/gpu/perf/00-perf.md", "skills/gpu/perf/01-perf.md"]
    assert (root / "snippets" / "perf" / "00-perf" / "00-L7.py").is_file()  # as kb's layout files them: under the root's path

    before = _snapshot(root)
    dry = run_kb("consolidate", "--no-commit", "--json", cwd=root)
    assert dry.code == 0, dry.err
    assert _snapshot(root) == before  # a dry look changes no file
    done = run_kb("consolidate", cwd=root)
    assert done.code == 0, done.err
    assert "Consolidated 2 drops: 2 files added, 0 changed" in done.out
    assert run_git(root, "status", "--porcelain", "--", ".", ":!.kb") == ""  # all it wrote is committed
    committed = run_git(root, "show", "--name-only", "--format=", "HEAD").split()
    assert {"skills/gpu/perf/02-activation-checkpointing.md", plan, drops[0].relative_to(root).as_posix()} <= set(committed)
    assert "README.md" not in committed and "notes/ckpt.md" not in committed
    assert (root / "skills" / "gpu" / "SKILL.md").read_text().startswith("---\nname: gpu\ndescription: Mine, by hand.\n")
    index = (root / "INDEX.md").read_text()
    assert "](skills/gpu/perf/02-activation-checkpointing.md)" in index and "4 pass" in index
    said = re.search(r"(\d+) sources", done.out).group(1)
    assert f"· {said} sources ·" in index

    report = json.loads(run_kb("report", "--json", cwd=root).out)
    assert report["totals"]["files"] == 5 and sum(report["totals"]["sources"].values()) == int(said)
    assert [(p["path"], p["done"], p["total"], p["completed"]) for p in report["plans"]] == [
        (plan, 1, 1, False), (f"{DONE_DIR}/ingestion.md", 1, 1, True)]
    problems = run_kb("report", cwd=root).out
    assert "not there" not in problems and "knowledge/perf" not in problems

    out = tmp_path / "site"  # outside the workspace, where the person says
    built = run_kb("serve", "--build", str(out), cwd=root, timeout=300)
    assert built.code == 0, built.err
    for page in ("knowledge/perf/02-activation-checkpointing.html", "knowledge/cuda/index.html", "plans.html",
                 f"drops/{drops[0].relative_to(root).with_suffix('.html').as_posix()}"):
        assert (out / page).is_file(), page
    assert 'class="badge pass"' in (out / "knowledge" / "perf" / "00-perf.html").read_text()  # results found
    home = (out / "index.html").read_text()
    assert 'href="knowledge/perf/02-activation-checkpointing.html"' in home and 'href="plans.html#plan-' in home
    for page in out.rglob("*.html"):
        for link in re.findall(r'(?:href|src)="([^"#?]+)[^"]*"', page.read_text(encoding="utf-8")):
            if "://" not in link:
                assert (page.parent / unquote(link)).resolve().is_file(), (page.relative_to(out), link)
    refused = run_kb("serve", "--build", "skills/gpu/site", cwd=root)
    assert refused.code == 2 and "skills/gpu/ holds the workspace's knowledge" in refused.err


def test_the_corpus_and_validate_walk_only_the_knowledge_of_a_tree_whose_root_is_the_workspace(tmp_path):
    from kb.corpus.index import gather_inputs
    from kb.snippets.validate import collect_files
    from test_adopt_layout import original_tree

    root = original_tree(tmp_path / "skill")
    assert run_kb("init", "--adopt", str(root), cwd=tmp_path).code == 0
    (root / ".kb").mkdir()
    (root / ".kb" / "notes.md").write_text("# state\n")
    (root / "public").mkdir()  # a site kb built, under a name of the person's choosing
    (root / "public" / ".kb-site.json").write_text("{}")
    (root / "public" / "copied.md").write_text("# not knowledge\n")
    ws = open_workspace(root)
    walked = sorted(rel for _, rel in gather_inputs(ws).knowledge)
    assert walked == [f"{t}/{i:02d}-{t}.md" for t in ("cuda", "perf") for i in range(3)]
    assert sorted(ws.rel(p) for p in collect_files(ws, [])) == walked


def test_drops_go_beside_their_plan_where_the_layout_keeps_them_there(tmp_path):
    from test_adopt_layout import original_tree

    root = original_tree(tmp_path / "skill")
    run_kb("init", "--adopt", str(root), cwd=tmp_path)
    ws = open_workspace(root)
    plan = root / "_ingest-auto" / "inprocess" / "expansion-cuda-2025-02-01" / "ingestion.md"
    assert ws.drop_folder(plan) == plan.parent
    default = open_workspace(_default(tmp_path / "plain"))
    assert default.drop_folder(default.root / "plans" / "x.md") == default.drops_dir
    assert glob_matches("a/**/K-*.md", "a/K-1.md") and glob_matches("a/**/K-*.md", "a/b/c/K-1.md")
    assert not glob_matches("a/*/K-*.md", "a/b/c/K-1.md") and not glob_matches("K-*.md", "a/K-1.md")


def _default(path: Path) -> Path:
    from kb.workspace import init_workspace

    init_workspace(path)
    return path


def test_a_tree_whose_root_is_the_workspace_is_served_from_where_it_lies(tmp_path):
    from kb.serve import Site, build_site
    from kb.serve.layout import SiteLayout
    from test_adopt_layout import adopted_tree

    root = adopted_tree(tmp_path, drops=3)
    assert run_kb("init", "--adopt", str(root), cwd=tmp_path).code == 0
    assert run_kb("consolidate", "--write-only", cwd=root).code == 0
    ws = open_workspace(root)
    site = Site(root, layout=SiteLayout.of(ws))
    out = tmp_path / "site"
    build_site(site, out, protected=ws.layout_folders())
    assert (out / "knowledge" / "perf" / "00-more.html").is_file() and (out / "knowledge" / "cuda" / "index.html").is_file()
    assert not (out / "knowledge" / "README.html").exists()  # a top-level file of the skill folder is no knowledge
    drop = "drops/_ingest-auto/completed/expansion-perf-2025-01-31/KNOWLEDGE-DROP-more0-2025-01-31-1645.html"
    assert (out / drop).is_file()
    home = (out / "index.html").read_text()
    assert 'href="knowledge/perf/00-more.html"' in home
    plans = (out / "plans.html").read_text()
    assert "_ingest-auto/completed/expansion-perf-2025-01-31/ingestion.md" in plans and "completed" in plans
    assert "KNOWLEDGE-DROP-more0" in plans  # the drop is listed under its plan's PART or as unclaimed
    live = site.get("/knowledge/perf/00-more.html")
    assert live.status == 200 and b"More 0" in live.body
    assert site.get("/knowledge/_ingest-auto/completed/expansion-perf-2025-01-31/ingestion.html").status == 404
