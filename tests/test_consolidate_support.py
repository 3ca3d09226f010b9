"""Helpers the consolidate tests share (workspaces with plans, knowledge files, drops, git),
plus tests of the helpers' own building blocks (reference resolution, summaries)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

from markdown_it import MarkdownIt

from kb.consolidate.refs import KnowledgeIndex
from kb.consolidate.scan import count_snippets, summarize
from kb.records import DropRecord, KnowledgeMeta, SourceRef, write_drop, write_knowledge
from kb.workspace import Workspace, init_workspace

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron sigma tau upsilon phi".split()


def make_workspace(tmp_path: Path, git: bool = True, name: str = "ws") -> Workspace:
    ws, _ = init_workspace(tmp_path / name)
    if git:
        git_init(ws.root)
    return ws


def git_init(root: Path) -> None:
    run_git(root, "init", "-q", "-b", "main")
    run_git(root, "config", "user.name", "Test")
    run_git(root, "config", "user.email", "test@example.com")
    run_git(root, "config", "commit.gpgsign", "false")


def run_git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def commits(root: Path) -> list[str]:
    try:
        return run_git(root, "log", "--format=%H").split()
    except subprocess.CalledProcessError:
        return []


def body_text(title: str, seed: int, words: int = 300) -> str:
    """A knowledge body whose prose is distinct per seed (so no accidental near-duplicates)."""
    import random

    rng = random.Random(seed)
    prose = " ".join(f"{rng.choice(WORDS)}{rng.randint(0, 9999)}" for _ in range(words))
    return (
        f"# {title}\n\n## Overview\n\n{title} explains how things work [1]. A second sentence follows.\n\n"
        f"## Section 1: Basics\n\n{prose}\n\n```python\nprint({seed})\n```\n\n## Sources\n\n- [1] torch docs\n"
    )


def add_knowledge(ws: Workspace, rel: str, title: str, seed: int, plan: str | None = None, part: int | None = None,
                  batch: int | None = None, body: str | None = None) -> Path:
    """Write knowledge/<rel> the way run-plan does (front matter + body)."""
    path = ws.knowledge_dir / rel
    meta = KnowledgeMeta(
        title=title, plan=plan, batch=batch, part=part, sections=["Basics"],
        sources=[SourceRef(1, "torch docs", "doc", "torch.cuda")], engine="offline",
    )
    write_knowledge(path, meta, body if body is not None else body_text(title, seed))
    return path


def add_drop(ws: Workspace, rel: str, title: str, plan: str | None = None, part: int | None = None,
             batch: int | None = None, status: str = "complete", slug: str | None = None) -> Path:
    slug = slug or Path(rel).stem.split("-", 1)[-1]
    path = ws.drops_dir / f"KNOWLEDGE-DROP-{slug}-2025-11-16-{1400 + (part or 0):04d}.md"
    write_drop(path, DropRecord(
        plan=plan, batch=batch, part=part, title=title, status=status,
        knowledge_file=f"knowledge/{rel}", created="2025-11-16T14:00:00Z", sections_written=["Basics"],
        reason=None if status == "complete" else "the writer failed",
    ))
    return path


def add_part(ws: Workspace, rel: str, title: str, seed: int, plan: str, part: int, batch: int = 1) -> None:
    """What one finished runner task leaves: a knowledge file and its drop."""
    add_knowledge(ws, rel, title, seed, plan=plan, part=part, batch=batch)
    add_drop(ws, rel, title, plan=plan, part=part, batch=batch)


def plan_text(parts: list[tuple[int, str, bool]], reads: dict[int, list[str]] | None = None,
              cites: dict[int, str] | None = None, topic: str = "Perf") -> str:
    """A small plan in the seed's format: (number, target, done) per PART, one batch."""
    lines = [f"# Knowledge Expansion: {topic} ({len(parts)} runners in 1 batches)", "", "**Date**: 2025-11-14", "",
             "# BATCH 1: Core", ""]
    for number, target, done in parts:
        mark, stamp = ("✓", " (Completed 2025-11-16 14:38)") if done else (" ", "")
        lines += [f"## PART {number}: Part {number} (~100 lines)", "", f"- [{mark}] PART {number}: Create {target}{stamp}", ""]
        lines += ["**Step 0: Check Existing Knowledge**"] + [f"- [ ] Read {r} (context)" for r in (reads or {}).get(number, [])] + [""]
        lines += ["**Step 2: Create Knowledge File**", "- [ ] Section 1: Basics (the basics)"]
        if cites and number in cites:
            lines.append(f"- [ ] **CITE**: {cites[number]}")
        lines += ["", "**Step 3: Create KNOWLEDGE DROP**", f"- [ ] Create KNOWLEDGE-DROP-part{number}-2025-11-14-[TIME].md", "", "---", ""]
    return "\n".join(lines)


def markdown_links(text: str) -> list[str]:
    """Every link target in a Markdown document (via markdown-it-py)."""
    out = []
    for token in MarkdownIt("commonmark").parse(text):
        for child in token.children or []:
            if child.type == "link_open":
                out.append(child.attrGet("href"))
    return out


def assert_links_resolve(root: Path, text: str) -> list[str]:
    links = markdown_links(text)
    for href in links:
        assert not re.match(r"^[a-z]+://", href), href
        assert (root / unquote(href)).exists(), f"link {href} does not resolve"
    return links


# -- tests of the building blocks -------------------------------------------------


def test_cite_references_resolve_by_folder_and_number_prefix():
    index = KnowledgeIndex(["knowledge/cuda/06-pytorch-jit.md", "knowledge/distributed-training/00-zero.md",
                            "knowledge/training-llms/01-optim.md"])
    assert index.missing_cites("cuda/06 (PyTorch)") == []
    assert index.missing_cites("distributed-training/00,03 (gradient accumulation)") == ["distributed-training/03"]
    assert index.missing_cites("training-llms/ (optimizers)") == []
    assert index.missing_cites("inference-optimization/03") == ["inference-optimization/03"]
    assert index.missing_cites("knowledge/cuda/06-pytorch-jit.md") == []
    assert index.missing_cites("cuda/07 (AMP), cuda/06 (async)") == ["cuda/07"]
    # Notes in parentheses and free text are not paths.
    assert index.missing_cites("Files 1, 3 (CPU/GPU memory)") == []
    assert index.missing_cites("https://pytorch.org/docs/x") == []


def test_summary_prefers_the_bold_tagline_then_the_overview():
    tagline = "# T\n\n**Profile first, then optimise.**\n\n## Overview\n\nThe overview. More.\n"
    assert summarize(tagline) == "Profile first, then optimise."
    overview = "# T\n\n## Overview\n\nProfiling finds [1] the [slow part](http://x). Then more.\n"
    assert summarize(overview) == "Profiling finds the slow part."
    metadata_line = "# T\n\n**Created**: 2025-01-01\n\nPlain first paragraph. Second.\n"
    assert summarize(metadata_line) == "Plain first paragraph."


def test_snippets_are_fenced_blocks_also_inside_lists():
    body = "```python\nx = 1\n```\n\n- item\n\n  ~~~bash\n  ls\n  ~~~\n\n    indented code is no snippet\n"
    assert count_snippets(body) == 2


def test_the_tagline_shortcut_agrees_with_the_general_summary():
    """kb's own files open with H1 + bold tagline; that shape is matched in one go. Wherever
    the shortcut applies it must say what the general reading of the paragraphs says."""
    import random

    from kb.consolidate import scan

    rng = random.Random(5)
    heads = ["# Title", "#  Spaced title  ", "# T #", "#\tTab", "## Not h1", "#NoSpace", "plain first line", "# "]
    gaps = ["", "\n", "\n  \n", "\n\t\n\n"]
    bolds = ["**Bold tagline. Second sentence.**", "**Key**: value", "**Bold**.", "**Bold**:", "  **Indented bold**  ",
             "**a*b**", "**x**y", "**Trailing** ", "**Cites [1] and [a link](x.md).**", "**two", "plain"]
    tails = ["", "\n", "\n\nMore prose.", "\nsecond line**", "\n## Overview\n\nProse.", "\n- item", "\n#NoSpace",
             "\n\n```\ncode\n```", "\n> quote"]
    hits = 0
    for _ in range(4000):
        body = rng.choice(["", "\n", " \n"]) + rng.choice(heads) + "\n" + rng.choice(gaps) + rng.choice(bolds) + rng.choice(tails)
        fast = scan._TAGLINE.match(body)
        if fast is not None:
            hits += 1
            assert scan._first_sentence(fast.group("text")) == scan._summarize(body), body
    assert hits > 300  # the shortcut was exercised, not just skipped


def test_a_plain_knowledge_path_is_taken_as_it_is_only_where_the_general_reading_agrees():
    from kb.consolidate import scan

    plain = ["knowledge/a.md", "knowledge/perf/04-gpu-memory.md", "knowledge/a/b_c/d-e.f.md", "knowledge/x..y/z.md"]
    for value in plain:
        assert scan._PLAIN_REF.fullmatch(value) and scan._find_knowledge_ref(value) == value
    # Everything else goes the general way (and comes out normalised, or not at all).
    for value, want in [("knowledge/./a.md", "knowledge/a.md"), ("knowledge//a.md", "knowledge/a.md"), ("perf/a.md", "knowledge/perf/a.md"),
                        ("knowledge/../x.md", None), ("`knowledge/a.md` (new)", "knowledge/a.md"), ("/abs/knowledge/a.md", "knowledge/a.md")]:
        assert not scan._PLAIN_REF.fullmatch(value)
        assert scan.knowledge_ref(value) == want, value


def test_natural_order_puts_9_before_10_and_ignores_case():
    import random
    import re

    from kb.consolidate.index_context import natural_key

    assert sorted(["b/file-10.md", "B/file-9.md", "a/x.md"], key=natural_key) == ["a/x.md", "B/file-9.md", "b/file-10.md"]
    # The key is the plain reading of the rule: text pieces lowercased, digit runs (any script) as numbers.
    plain = lambda path: tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path))  # noqa: E731
    rng = random.Random(2)
    for _ in range(3000):
        path = "".join(rng.choice("aB9/-_.0١٢x") for _ in range(rng.randint(0, 12)))
        assert natural_key(path) == plain(path), path


def test_a_link_skips_quoting_only_where_quoting_would_change_nothing():
    import random
    from urllib.parse import quote

    from kb.consolidate.render import md_link

    rng = random.Random(8)
    alphabet = "ab/-_.~ %[]()é#?&+Z09"
    paths = ["knowledge/topic-01/00-x.md", "knowledge/a b/c[1].md", "knowledge/é.md"]
    paths += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(2000)]
    for path in paths:
        assert md_link(path) == quote(path, safe="/-_.~"), path
