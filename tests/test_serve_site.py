"""kb serve: the pages a Site renders from a small workspace (no server, no browser)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from kb.records import DropRecord, KnowledgeMeta, SourceRef, drop_filename, write_drop, write_knowledge
from kb.serve import Site, build_site
from kb.serve.markdown import make_markdown, parse_file
from kb.serve.results import fence_hash
from kb.workspace import init_workspace

PROFILING = "knowledge/performance/00-gpu-profiling.md"
UTILIZATION = "knowledge/performance/01-gpu-utilization.md"
LEGACY = "knowledge/cuda/00-cuda-streams.md"

PROFILING_BODY = """# GPU Profiling with Nsight and the PyTorch Profiler

**Find where the time goes before changing anything.**

## Overview

Profile first; see also [GPU utilization](01-gpu-utilization.md#section-1-tensor-core-utilization)
and the [index](../../INDEX.md). The plan is [here](../../plans/performance.md).
Outside: [passwd](../../../../etc/passwd), [web](https://docs.nvidia.com/nsight-systems/).

| Tool | Shows | Overhead |
|------|-------|----------|
| Nsight Systems | timeline | low |
| PyTorch Profiler | operators | medium |

## Section 1: Nsight Systems timeline

Nsight Systems records a timeline of kernels, memory copies and API calls.

```python
import time
start = time.perf_counter()
print("elapsed", time.perf_counter() - start >= 0)
```

## Section 2: PyTorch Profiler traces

```python kb:requires=cuda
import torch
with torch.profiler.profile() as prof:
    torch.ones(4, device="cuda")
```

- A step inside a list:

  ```python
  raise RuntimeError("boom")
  ```

## Section 3: CUDA event timing

```console
$ nvidia-smi
```

```python
print("not validated yet")
```

<!-- kb:note a comment that must not show -->
<script>alert("x")</script>

## Sources

1. PyTorch profiler docstring `torch.profiler.profile`
"""

UTILIZATION_BODY = """# GPU Utilization Optimization

## Overview

Keep the GPU busy. Back to [profiling](00-gpu-profiling.md).

## Section 1: Tensor Core utilization

Tensor Cores multiply BF16 and TF32 matrices; achieving 80% model FLOPs utilization (MFU)
means feeding them large, aligned matmuls.

## Section 2: Data loading overlap

Use pin_memory and prefetching so the dataloader never starves the GPU.
"""

LEGACY_BODY = """# CUDA Streams

An older file without front matter. See [profiling](../performance/00-gpu-profiling.md).

## Section 1: Overlapping copies

Streams let copies overlap kernels.
"""

PLAN = """# Knowledge Expansion: Performance (3 runners in 2 batches)

**Date**: 2025-11-14

# BATCH 1: Profiling (2 runners)

## PART 1: GPU Profiling (~700 lines)

- [✓] PART 1: Create performance/00-gpu-profiling.md (Completed 2025-11-16 14:38)

**Step 1: Web Research**
- [ ] Search: "Nsight Systems GPU profiling"

**Step 2: Create Knowledge File**
- [ ] Section 1: Nsight Systems timeline (kernels)

**Step 3: Create KNOWLEDGE DROP**
- [ ] Create KNOWLEDGE-DROP-gpu-profiling-2025-11-14-[TIME].md

## PART 2: GPU Utilization (~700 lines)

- [✓] PART 2: Create performance/01-gpu-utilization.md (Completed 2025-11-16 15:02)

# BATCH 2: Streams (1 runner)

## PART 3: CUDA Streams (~700 lines)

- [ ] PART 3: Create performance/02-cuda-streams.md
"""

INDEX = """# Knowledge Index

Hand-written notes survive.

<!-- kb:index:start -->
## [performance/](knowledge/performance/) (2 files)

- [GPU Profiling with Nsight and the PyTorch Profiler](knowledge/performance/00-gpu-profiling.md): profile first.
- [GPU Utilization Optimization](knowledge/performance/01-gpu-utilization.md): keep the GPU busy.

## cuda

- [CUDA Streams](knowledge/cuda/00-cuda-streams.md)
<!-- kb:index:end -->
"""


def make_demo_workspace(base: Path) -> Path:
    """A small workspace with knowledge files, INDEX.md, a plan, drops and snippet results."""
    ws, _ = init_workspace(base / "ws")
    root = ws.root
    write_knowledge(
        root / PROFILING,
        KnowledgeMeta(
            title="GPU Profiling with Nsight and the PyTorch Profiler",
            plan="plans/performance.md",
            batch=1,
            part=1,
            sections=["Nsight Systems timeline", "PyTorch Profiler traces", "CUDA event timing"],
            sources=[
                SourceRef(1, "torch.profiler.profile", "doc", "torch.profiler.profile"),
                SourceRef(2, "Nsight Systems User Guide", "web", "https://docs.nvidia.com/nsight-systems/", "2025-11-16"),
                SourceRef(3, "GPU utilization", "knowledge", "knowledge/performance/01-gpu-utilization.md"),
            ],
            engine="offline",
            created="2025-11-16T14:38:00Z",
        ),
        PROFILING_BODY,
    )
    write_knowledge(
        root / UTILIZATION,
        KnowledgeMeta(title="GPU Utilization Optimization", plan="plans/performance.md", batch=1, part=2, engine="offline"),
        UTILIZATION_BODY,
    )
    (root / LEGACY).parent.mkdir(parents=True, exist_ok=True)
    (root / LEGACY).write_text(LEGACY_BODY, encoding="utf-8")
    (root / "INDEX.md").write_text(INDEX, encoding="utf-8")
    (root / "plans" / "performance.md").write_text(PLAN, encoding="utf-8")
    for part, slug, target, status in (
        (1, "gpu-profiling", PROFILING, "complete"),
        (2, "gpu-utilization", UTILIZATION, "complete"),
        (3, "cuda-streams", None, "failed"),
    ):
        from datetime import datetime

        when = datetime(2025, 11, 16, 14, 30 + part)
        write_drop(
            root / "drops" / drop_filename(slug, when),
            DropRecord(
                plan="plans/performance.md",
                batch=1 if part < 3 else 2,
                part=part,
                title=slug.replace("-", " ").title(),
                status=status,
                knowledge_file=target,
                created=when.isoformat(),
                sections_written=["Section 1"] if target else [],
                reason=None if target else "the writer timed out",
                engine="offline",
            ),
        )
    # Line numbers and hashes of the fences in the file as written (front matter included).
    _, _, fences = parse_file(make_markdown(), (root / PROFILING).read_text(encoding="utf-8"))
    fence_lines = [f.line for f in fences]
    assert len(fence_lines) == 5, fence_lines
    entries = [
        ("pass", None, "elapsed True\n", ""),
        ("skip", "needs CUDA (no GPU on this machine)", "", ""),
        ("fail", None, "", "Traceback (most recent call last):\nRuntimeError: boom\n"),
        ("not-executable", "console transcript", "", ""),
    ]
    results = {"version": 1, "snippets": []}
    for index, (status, reason, out, err) in enumerate(entries):
        results["snippets"].append(
            {
                "id": f"performance/00-gpu-profiling/{index:02d}",
                "file": PROFILING,
                "line": fence_lines[index],
                "index": index,
                "language": "console" if index == 3 else "python",
                "hash": fence_hash(fences[index].info, fences[index].code) or f"{index:020x}",
                "status": status,
                "reason": reason,
                "seconds": 0.25 if status == "pass" else None,
                "stdout_tail": out,
                "stderr_tail": err,
                "snippet_file": f"snippets/knowledge/performance/00-gpu-profiling/{index:02d}-L{fence_lines[index]}.py",
            }
        )
    (root / "snippets" / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return root


@pytest.fixture
def demo(tmp_path) -> Path:
    return make_demo_workspace(tmp_path)


def html(site: Site, path: str, status: int = 200) -> str:
    response = site.get(path)
    assert response.status == status, (path, response.status)
    return response.body.decode("utf-8")


def test_home_is_index_md_with_working_links_and_no_markers(demo):
    page = html(Site(demo), "/")
    assert "<h1" in page and "Knowledge Index" in page
    assert 'href="knowledge/performance/00-gpu-profiling.html"' in page
    assert "kb:index:start" not in page  # HTML comments are dropped
    assert 'href="_static/kb.css"' in page
    # the left-hand tree is drawn from one script for the whole site, not copied into the page
    assert '<script src="_static/nav-data.js"></script>' in page and '<script src="_static/kb.js"></script>' in page
    assert "CUDA Streams" not in page.split("<main")[0]
    nav = Site(demo).get("/_static/nav-data.js")
    assert nav.status == 200 and nav.content_type.startswith("text/javascript")
    data = json.loads(nav.body.decode("utf-8").removeprefix("window.KB_NAV = ").rstrip().rstrip(";"))
    assert data["folders"] == [
        ["knowledge/cuda", "cuda", [["knowledge/cuda/00-cuda-streams.html", "CUDA Streams"]]],
        ["knowledge/performance", "performance", [
            ["knowledge/performance/00-gpu-profiling.html", "GPU Profiling with Nsight and the PyTorch Profiler"],
            ["knowledge/performance/01-gpu-utilization.html", "GPU Utilization Optimization"]]],
    ]


def test_folder_links_become_topic_pages(demo):
    site = Site(demo)
    assert 'href="knowledge/performance/index.html">performance/</a>' in html(site, "/")
    page = html(site, "/knowledge/performance/index.html")
    assert 'href="../../knowledge/performance/00-gpu-profiling.html">GPU Profiling with Nsight' in page
    assert "Nsight Systems timeline · PyTorch Profiler traces · CUDA event timing" in page
    assert "CUDA Streams" not in page.split("<main")[1]
    everything = html(site, "/knowledge/index.html")
    assert 'href="../knowledge/cuda/index.html">cuda</a>' in everything
    assert 'href="../knowledge/performance/index.html">performance</a>' in everything
    assert site.get("/knowledge/performance").headers["Location"] == "/knowledge/performance/index.html"
    assert site.get("/knowledge/nothing/index.html").status == 404


def test_knowledge_page_header_links_badges_and_highlighting(demo):
    page = html(Site(demo), "/knowledge/performance/00-gpu-profiling.html")
    # front matter header: plan (linked to the plans page), PART, engine, sources
    assert 'href="../../plans.html#plan-plans-performance-md"' in page
    assert "<dt>PART</dt><dd>1</dd>" in page
    assert "<dt>Engine</dt><dd>offline" in page
    assert "3 sources" in page and 'href="https://docs.nvidia.com/nsight-systems/"' in page
    # relative links between knowledge files, to INDEX.md, to a plan
    assert 'href="01-gpu-utilization.html#section-1-tensor-core-utilization"' in page
    assert 'href="../../index.html"' in page
    assert 'href="../../plans.html#plan-plans-performance-md"' in page
    # a link leaving the workspace is not a link
    assert 'title="not in this site: ../../../../etc/passwd"' in page
    # GFM table and heading anchors
    assert "<table>" in page and "<th>Overhead</th>" in page
    assert 'id="section-1-nsight-systems-timeline"' in page
    # pygments highlighting
    assert '<pre class="highlight"><code><span class="kn">import</span>' in page
    # a script in the file is removed (by the sanitiser), comments vanish
    assert "<script>alert" not in page and 'alert("x")' not in page
    assert "kb:note" not in page
    # one badge per fence, matched by line, the one in a list too
    badges = re.findall(r'class="badge (pass|fail|skip|muted|none)"', page.split('<article class="markdown">')[1])
    assert badges[-5:] == ["pass", "skip", "fail", "muted", "none"], badges
    assert "skipped: needs CUDA (no GPU on this machine)" in page
    # each result sits under its code block, in this page (no page per snippet)
    assert 'href="#snippet-0-result"' in page and 'id="snippet-0-result"' in page
    assert "not yet run" in page


def test_edited_flag_and_heading_permalinks(demo):
    site = Site(demo)
    page = html(site, "/knowledge/performance/00-gpu-profiling.html")
    assert "<dt>Edited</dt>" not in page  # kb wrote it and nobody touched it
    assert '<h2 id="overview">Overview <a class="header-anchor" href="#overview">#</a></h2>' in page
    assert "<dt>Created</dt><dd>2025-11-16 14:38 UTC</dd>" in page
    path = demo / PROFILING
    path.write_text(path.read_text(encoding="utf-8") + "\nA line a person added.\n", encoding="utf-8")
    assert "<dt>Edited</dt><dd>by hand since kb wrote it</dd>" in html(site, "/knowledge/performance/00-gpu-profiling.html")


def test_badges_follow_a_fence_whose_line_moved(demo):
    path = demo / PROFILING
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("## Overview\n", "## Overview\n\nA new paragraph.\n\nAnd another.\n", 1), encoding="utf-8")
    page = html(Site(demo), "/knowledge/performance/00-gpu-profiling.html")
    badges = re.findall(r'class="badge (pass|fail|skip|muted|none)"', page.split('<article class="markdown">')[1])
    assert badges[-5:] == ["pass", "skip", "fail", "muted", "none"], badges


def test_a_snippet_edited_since_its_run_is_marked_outdated(demo):
    if fence_hash("python", "x") is None:
        pytest.skip("kb.snippets (validate-snippets) is not there: results cannot be checked against the code")
    path = demo / PROFILING
    path.write_text(path.read_text(encoding="utf-8").replace('raise RuntimeError("boom")', 'raise ValueError("bang")'),
                    encoding="utf-8")
    site = Site(demo)
    page = html(site, "/knowledge/performance/00-gpu-profiling.html")
    badges = re.findall(r'class="badge ([a-z ]+)"', page.split('<article class="markdown">')[1])
    assert badges[-5:] == ["pass", "skip", "fail stale", "muted", "none"], badges
    assert "✗ failed (code changed since)" in page
    result = page.split('id="snippet-2-result"')[1].split("</details>")[0]
    assert "The code changed after this run" in result and "RuntimeError: boom" in result
    assert "bang" in page.split('id="snippet-2"')[1].split("</pre>")[0]


def test_legacy_file_without_front_matter(demo):
    page = html(Site(demo), "/knowledge/cuda/00-cuda-streams.html")
    assert "CUDA Streams" in page and "none (written by hand or by an older tool)" in page
    assert 'href="../performance/00-gpu-profiling.html"' in page


def test_snippet_results_are_shown_in_the_files_page(demo):
    site = Site(demo)
    page = html(site, "/knowledge/performance/00-gpu-profiling.html")
    failed = page.split('id="snippet-2"')[1].split("</figure>")[0]
    assert 'raise RuntimeError' in re.sub(r"<[^>]+>", "", failed.split("</pre>")[0])
    assert '<details class="snippet-result fail" id="snippet-2-result" open>' in failed  # failures shown open
    assert "RuntimeError: boom" in failed and "stderr (last lines)" in failed
    passed = page.split('id="snippet-0"')[1].split("</figure>")[0]
    assert '<details class="snippet-result pass" id="snippet-0-result">' in passed and "elapsed True" in passed
    skipped = page.split('id="snippet-1"')[1].split("</figure>")[0]
    assert "<dt>Why</dt><dd>needs CUDA (no GPU on this machine)</dd>" in skipped
    assert "snippet-4-result" not in page  # no result yet: no panel
    assert site.get("/snippets/performance-00-gpu-profiling-02.html").status == 404


def test_any_status_renders_with_its_name(demo):
    """A status the badge table does not know (a verdict added later) shows with its own name, never breaks the page."""
    path = demo / "snippets" / "results.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["snippets"][0]["status"] = "quarantined"
    data["snippets"][0]["reason"] = "held back by hand"
    path.write_text(json.dumps(data), encoding="utf-8")
    page = html(Site(demo), "/knowledge/performance/00-gpu-profiling.html")
    bar = page.split('id="snippet-0"')[1].split("</figcaption>")[0]
    assert "quarantined" in bar and "held back by hand" in bar
    assert '<span class="badge muted">1 quarantined</span>' in page
    assert '<span class="badge skip">1 skipped</span>' in page and '<span class="badge fail">1 failed</span>' in page


def test_plans_page_parts_status_completion_and_drops(demo):
    page = html(Site(demo), "/plans.html")
    assert "BATCH 1: Profiling" in page and "BATCH 2: Streams" in page
    assert "2025-11-16 14:38" in page and "2025-11-16 15:02" in page
    row1 = page.split('id="plan-plans-performance-md-part-1"')[1].split("</tr>")[0]
    assert '<span class="status done">done</span>' in row1
    assert 'href="knowledge/performance/00-gpu-profiling.html"' in row1
    assert 'href="drops/KNOWLEDGE-DROP-gpu-profiling-2025-11-16-1431.html"' in row1
    row3 = page.split('id="plan-plans-performance-md-part-3"')[1].split("</tr>")[0]
    assert '<span class="status pending">pending</span>' in row3 and "(failed)" in row3
    drop = html(Site(demo), "/drops/KNOWLEDGE-DROP-cuda-streams-2025-11-16-1433.html")
    assert "the writer timed out" in drop and '<span class="status failed">failed</span>' in drop


def test_search_lands_on_the_section(demo):
    site = Site(demo)
    page = html(site, "/search.html?q=tensor+core+utilization+MFU")
    first = re.search(r'<a class="hit-title" href="([^"]+)">([^<]+)</a>', page)
    assert first is not None
    assert first.group(1) == "knowledge/performance/01-gpu-utilization.html#section-1-tensor-core-utilization"
    assert "<mark>" in page
    target = html(site, "/" + first.group(1).split("#")[0])
    assert 'id="section-1-tensor-core-utilization"' in target
    assert "0 sections match" in html(site, "/search.html?q=zebra")
    # The offline engine's ranking: stemmed and identifier-split, so "utilizing" finds "utilization".
    stemmed = html(site, "/search.html?q=utilizing+tensor+cores")
    assert "section-1-tensor-core-utilization" in stemmed and "<mark>utilization</mark>" in stemmed.lower()


def test_a_changed_file_shows_up_on_reload(demo):
    site = Site(demo)
    assert "quokka" not in html(site, "/knowledge/cuda/00-cuda-streams.html")
    assert "0 sections" in html(site, "/search.html?q=quokka")
    path = demo / LEGACY
    path.write_text(LEGACY_BODY + "\n## Section 2: Quokka streams\n\nA quokka kernel.\n", encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert "Quokka streams" in html(site, "/knowledge/cuda/00-cuda-streams.html")
    assert "00-cuda-streams.html#section-2-quokka-streams" in html(site, "/search.html?q=quokka")
    (demo / "knowledge" / "cuda" / "01-new.md").write_text("# Brand new file\n", encoding="utf-8")
    assert "Brand new file" in site.get("/_static/nav-data.js").body.decode("utf-8")


@pytest.mark.parametrize(
    "path",
    [
        "/../../etc/passwd",
        "/knowledge/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/knowledge/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/knowledge/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "/knowledge/..%2f..%2fkb.toml",
        "/knowledge/..%5c..%5ckb.toml",
        "/knowledge/%2E%2E/%2E%2E/kb.toml",
        "/knowledge/%c0%ae%c0%ae/kb.toml",
        "//etc/passwd",
        "/kb.toml",
        "/.kb/anything",
        "/snippets/results.json",
        "/knowledge/performance/00-gpu-profiling.md%00.html",
        "/drops/../kb.toml.html",
    ],
)
def test_traversal_is_refused(demo, path):
    response = Site(demo).get(path)
    assert response.status == 404
    body = response.body.decode("utf-8")
    assert "root:" not in body and "[run]" not in body


def test_symlinks_out_of_the_workspace_are_refused_and_never_read(demo, tmp_path):
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret title\n\nsecret-token-123\n", encoding="utf-8")
    (demo / "knowledge" / "performance" / "99-link.md").symlink_to(secret)
    (demo / "knowledge" / "outside").symlink_to(tmp_path, target_is_directory=True)
    (demo / "drops" / "KNOWLEDGE-DROP-evil.md").symlink_to(secret)
    site = Site(demo)
    for path in (
        "/knowledge/performance/99-link.html",
        "/knowledge/outside/secret.html",
        "/knowledge/outside/index.html",
        "/knowledge/outside",
        "/drops/KNOWLEDGE-DROP-evil.html",
    ):
        assert site.get(path).status == 404, path
    for path in ("/", "/plans.html", "/search.html?q=secret+token"):
        body = html(site, path)
        assert "secret-token-123" not in body and "Secret title" not in body, path


def test_index_md_linking_out_is_refused(demo, tmp_path):
    (tmp_path / "outside.md").write_text("outside-text\n", encoding="utf-8")
    (demo / "INDEX.md").unlink()
    (demo / "INDEX.md").symlink_to(tmp_path / "outside.md")
    page = html(Site(demo), "/")
    assert "outside-text" not in page and "There is no <code>INDEX.md</code> yet" in page


def test_static_build_has_the_same_pages_with_relative_links(demo):
    site = Site(demo)
    result = build_site(site, demo / "site")
    out = demo / "site"
    for page in (
        "index.html",
        "plans.html",
        "search.html",
        "knowledge/performance/00-gpu-profiling.html",
        "knowledge/cuda/00-cuda-streams.html",
        "drops/KNOWLEDGE-DROP-gpu-profiling-2025-11-16-1431.html",
        "knowledge/index.html",
        "knowledge/performance/index.html",
        "_static/kb.css",
        "_static/kb.js",
        "_static/nav-data.js",
        "_static/search.js",
        "_static/search/index.js",
        "_static/search/t0.js",
        "_static/search/d0.js",
    ):
        assert (out / page).is_file(), page
    assert len(result.pages) >= 14
    served = site.get("/knowledge/performance/00-gpu-profiling.html").body
    assert (out / "knowledge/performance/00-gpu-profiling.html").read_bytes() == served
    # every relative link of every page resolves to a written file
    assert_links_resolve(out)
    docs = (out / "_static/search/d0.js").read_text(encoding="utf-8")
    assert "section-1-tensor-core-utilization" in docs
    assert not list(out.rglob("snippets/*"))  # results are in the files' pages
    # a rebuild removes pages whose source is gone
    (demo / LEGACY).unlink()
    again = build_site(Site(demo), out)
    assert "knowledge/cuda/00-cuda-streams.html" in again.removed
    assert not (out / "knowledge/cuda/00-cuda-streams.html").exists()


def assert_links_resolve(out: Path) -> None:
    """Every relative href and src of every page of the site names a file the build wrote."""
    from urllib.parse import unquote

    for page in out.rglob("*.html"):
        for link in re.findall(r'(?:href|src)="([^"#?]+)[^"]*"', page.read_text(encoding="utf-8")):
            if "://" in link or link.startswith("mailto:"):
                continue
            assert (page.parent / unquote(link)).resolve().is_file(), (page.relative_to(out), link)


def test_static_build_refuses_folders_it_does_not_own(demo, tmp_path):
    from kb.errors import PathError

    site = Site(demo)
    with pytest.raises(PathError, match="holds the workspace"):
        build_site(site, demo.parent)
    with pytest.raises(PathError, match="holds the workspace's knowledge"):
        build_site(site, demo / "topic" / "site", protected=("topic",))
    with pytest.raises(PathError, match="belongs to the workspace"):
        build_site(site, demo / "knowledge" / "site")
    (demo / "mine").mkdir()
    (demo / "mine" / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(PathError, match="did not write"):
        build_site(site, demo / "mine")
    assert (demo / "mine" / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_build_state_is_kept_under_kb_not_in_the_site(demo):
    """The build's state (what it wrote, from what) is not published: it lives under .kb/, keyed by OUT."""
    from kb.serve.build import LEGACY_MARKER, state_path

    out = demo / "site"
    (out).mkdir()
    (out / LEGACY_MARKER).write_text("{}", encoding="utf-8")  # a site an older kb built: still its own
    first = build_site(Site(demo), out)
    assert not [p.name for p in out.rglob(".*")]  # no state file, nothing hidden in the site
    state = state_path(demo, out.resolve())
    assert state.is_file() and state.is_relative_to(demo / ".kb")
    assert json.loads(state.read_text(encoding="utf-8"))["out"] == str(out.resolve())
    assert build_site(Site(demo), out).pages == []  # incremental: nothing changed, nothing written
    # .kb/ gone (a fresh clone): the folder is still known as kb's by its tree script, and rebuilt whole
    state.unlink()
    again = build_site(Site(demo), out)
    assert {p for p in first.pages if p.endswith(".html")} <= set(again.pages)
    # another site of the same workspace has its own state
    other = build_site(Site(demo), demo / "site2")
    assert other.pages and state_path(demo, (demo / "site2").resolve()) != state


def test_empty_workspace_renders(tmp_path):
    ws, _ = init_workspace(tmp_path / "empty")
    site = Site(ws.root)
    for path in ("/", "/plans.html", "/search.html?q=anything", "/_static/kb.css"):
        assert site.get(path).status == 200, path
    assert "0 sections match" in html(site, "/search.html?q=anything")


def test_a_link_to_a_plan_since_filed_under_completed_still_works(demo):
    (demo / "plans" / "completed").mkdir(parents=True, exist_ok=True)
    (demo / "plans" / "performance.md").rename(demo / "plans" / "completed" / "performance.md")
    page = html(Site(demo), "/knowledge/performance/00-gpu-profiling.html")
    body = page.split('<article class="markdown">')[1]
    assert 'href="../../plans.html#plan-plans-completed-performance-md">here</a>' in body


RENDERING_BODY = """# Rendering what real trees hold

| Option | Meaning |
|--------|---------|
| `pin_memory` | first line<br>second line |

E = mc<sup>2</sup>, H<sub>2</sub>O, <kbd>Ctrl</kbd>+<kbd>C</kbd>.

<details>
<summary>More detail</summary>

Hidden until opened.

</details>

<script>document.title = "owned-by-script"</script>
<img src="missing.png" onerror="document.title='owned-by-onerror'">
<a href="javascript:alert(1)">a javascript link</a>
<p onclick="alert(2)" style="color:red">a paragraph with handlers</p>
<iframe src="https://example.com"></iframe>

Raw links: <a href="00-gpu-profiling.md">profiling (raw)</a>, <img src="diagram.png" alt="raw diagram">,
<a href="gone.md">a raw link to nowhere</a>.

![diagram](diagram.png) and ![nothing here](no-such-image.png)

Files: [train.py](train.py), [run.sh](run.sh), [job](job.slurm), [a page](evil.html),
[images only](../images-only/), [a folder with files](../performance/), [faster](50%25-faster.md),
[Makefile](Makefile), [Dockerfile](Dockerfile), [the run script](run).
"""

PERCENT_BODY = "# Fifty percent faster\n\nA file whose name holds a percent sign.\n"


@pytest.fixture
def gaps(demo) -> Path:
    return add_rendering_gaps(demo)


def add_rendering_gaps(demo: Path) -> Path:
    """The demo workspace plus a file with raw HTML, images, linked scripts, odd names and a folder of images."""
    folder = demo / "knowledge" / "performance"
    (folder / "02-rendering.md").write_text(RENDERING_BODY, encoding="utf-8")
    (folder / "50%-faster.md").write_text(PERCENT_BODY, encoding="utf-8")
    (folder / "diagram.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    (folder / "train.py").write_text("print('train')\n", encoding="utf-8")
    (folder / "run.sh").write_text("#!/bin/sh\necho run\n", encoding="utf-8")
    (folder / "job.slurm").write_text("#SBATCH -N 1\nsrun python train.py\n", encoding="utf-8")
    (folder / "Makefile").write_text("all:\n\tpython train.py\n", encoding="utf-8")
    (folder / "Dockerfile").write_text("FROM python:3.11\n", encoding="utf-8")
    (folder / "run").write_text("#!/bin/sh\nexec python train.py\n", encoding="utf-8")
    (folder / "evil.html").write_text("<script>alert(1)</script>", encoding="utf-8")
    (demo / "knowledge" / "images-only").mkdir()
    (demo / "knowledge" / "images-only" / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    index = demo / "INDEX.md"
    index.write_text(index.read_text(encoding="utf-8").replace(
        "<!-- kb:index:end -->", "- [Fifty](knowledge/performance/50%25-faster.md)\n<!-- kb:index:end -->"), encoding="utf-8")
    return demo


def body_of_page(page: str) -> str:
    return page.split('<article class="markdown">')[1].split("</article>")[0]


def test_safe_inline_html_is_kept_and_script_is_removed(gaps):
    page = html(Site(gaps), "/knowledge/performance/02-rendering.html")
    body = body_of_page(page)
    assert "<td>first line<br>second line</td>" in body
    assert "mc<sup>2</sup>" in body and "H<sub>2</sub>O" in body and "<kbd>Ctrl</kbd>" in body
    assert "<details>" in body and "<summary>More detail</summary>" in body and "Hidden until opened." in body
    for bad in ("<script", "owned-by", "onerror", "onclick", "javascript:", "style=", "<iframe", "alert("):
        assert bad not in body, bad
    assert page.count("<script") == 2  # the site's own two: the tree and kb.js
    assert "a javascript link" in body and "a paragraph with handlers" in body  # the text stays


def test_links_raw_html_makes_are_rewritten_like_markdown_links(gaps):
    body = body_of_page(html(Site(gaps), "/knowledge/performance/02-rendering.html"))
    assert '<a href="00-gpu-profiling.html">profiling (raw)</a>' in body
    assert '<img src="diagram.png" alt="raw diagram">' in body
    assert '<img alt="" ' not in body and 'src=""' not in body


def test_missing_images_and_unresolved_links_are_marked_never_broken(gaps):
    body = body_of_page(html(Site(gaps), "/knowledge/performance/02-rendering.html"))
    assert '<img src="diagram.png" alt="diagram">' in body
    assert '<span class="unresolved" title="image not in this site: no-such-image.png">nothing here</span>' in body
    # a raw <img> whose file is missing is marked the same way (its onerror long gone); a raw link too
    assert '<span class="unresolved" title="image not in this site: missing.png">missing.png</span>' in body
    assert '<a class="unresolved" title="not in this site: gone.md">a raw link to nowhere</a>' in body
    # a folder with no Markdown has no page: its link is marked, not a link to a 404
    assert '<a class="unresolved" title="not in this site: ../images-only/">images only</a>' in body
    assert '<a href="index.html">a folder with files</a>' in body
    # an HTML file of the tree is never published (it would run as a page of the site)
    assert '<a class="unresolved" title="not in this site: evil.html">a page</a>' in body
    assert Site(gaps).get("/knowledge/images-only/index.html").status == 404


def test_linked_files_of_the_tree_are_served_as_text(gaps):
    site = Site(gaps)
    body = body_of_page(html(site, "/knowledge/performance/02-rendering.html"))
    for name in ("train.py", "run.sh", "job.slurm", "Makefile", "Dockerfile", "run"):
        assert f'href="{name}"' in body, name
        response = site.get(f"/knowledge/performance/{name}")
        assert response.status == 200 and response.content_type == "text/plain; charset=utf-8", name
        assert "sandbox" in response.headers["Content-Security-Policy"]
    assert site.get("/knowledge/performance/evil.html").status == 404 or b"alert" not in site.get(
        "/knowledge/performance/evil.html").body


def test_a_file_name_with_a_percent_sign_has_a_page_and_index_links_to_it(gaps):
    site = Site(gaps)
    home = html(site, "/")
    assert '<a href="knowledge/performance/50%25-faster.html">Fifty</a>' in home
    page = html(site, "/knowledge/performance/50%25-faster.html")
    assert "Fifty percent faster" in page
    body = body_of_page(html(site, "/knowledge/performance/02-rendering.html"))
    assert '<a href="50%25-faster.html">faster</a>' in body
    assert "knowledge/performance/50%-faster.html" in site.get("/_static/nav-data.js").body.decode("utf-8")


def test_static_build_publishes_linked_files_and_every_link_resolves(gaps):
    out = gaps / "site"
    build_site(Site(gaps), out)
    for name in ("train.py", "run.sh", "job.slurm", "diagram.png", "50%-faster.html", "Makefile", "Dockerfile", "run"):
        assert (out / "knowledge" / "performance" / name).is_file(), name
    assert (out / "knowledge/performance/Makefile").read_text(encoding="utf-8") == "all:\n\tpython train.py\n"
    assert (out / "knowledge/performance/train.py").read_text(encoding="utf-8") == "print('train')\n"
    assert not (out / "knowledge/performance/evil.html").exists()
    assert not (out / "knowledge/images-only").exists()
    assert_links_resolve(out)


def written(result) -> set[str]:
    return set(result.pages)


def test_rebuild_after_one_edit_rewrites_that_page_only(gaps):
    out = gaps / "site"
    first = build_site(Site(gaps), out)
    assert "knowledge/performance/00-gpu-profiling.html" in first.pages
    again = build_site(Site(gaps), out)
    assert again.pages == [] and again.removed == [] and again.unchanged == len(first.pages)
    path = gaps / UTILIZATION
    path.write_text(path.read_text(encoding="utf-8") + "\nA quokka line.\n", encoding="utf-8")
    edited = build_site(Site(gaps), out)
    pages = {p for p in written(edited) if p.endswith(".html")}
    assert pages == {"knowledge/performance/01-gpu-utilization.html"}, pages
    assert "A quokka line." in (out / "knowledge/performance/01-gpu-utilization.html").read_text(encoding="utf-8")
    assert any(p.startswith("_static/search/t") for p in edited.pages)  # its words are searchable
    assert "quokka" in "".join(p.read_text(encoding="utf-8") for p in (out / "_static/search").glob("t*.js"))


def test_rebuild_follows_links_to_files_that_appear_or_vanish(gaps):
    out = gaps / "site"
    build_site(Site(gaps), out)
    legacy = (out / "knowledge/cuda/00-cuda-streams.html").read_text(encoding="utf-8")
    assert 'href="../performance/00-gpu-profiling.html"' in legacy
    # the linked file vanishes: the page linking to it now marks the link, the page is removed
    (gaps / PROFILING).rename(gaps / "knowledge" / "profiling.md.bak")
    gone = build_site(Site(gaps), out)
    assert "knowledge/performance/00-gpu-profiling.html" in gone.removed
    assert "knowledge/cuda/00-cuda-streams.html" in gone.pages
    assert 'class="unresolved"' in (out / "knowledge/cuda/00-cuda-streams.html").read_text(encoding="utf-8")
    assert "GPU Profiling" not in (out / "_static/nav-data.js").read_text(encoding="utf-8")
    # it comes back: the link is a link again
    (gaps / "knowledge" / "profiling.md.bak").rename(gaps / PROFILING)
    back = build_site(Site(gaps), out)
    assert {"knowledge/cuda/00-cuda-streams.html", "knowledge/performance/00-gpu-profiling.html"} <= set(back.pages)
    assert 'href="../performance/00-gpu-profiling.html"' in (out / "knowledge/cuda/00-cuda-streams.html").read_text(encoding="utf-8")
    assert_links_resolve(out)


def test_rebuild_follows_new_snippet_results_and_titles(gaps):
    out = gaps / "site"
    build_site(Site(gaps), out)
    path = gaps / "snippets" / "results.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["snippets"][2]["stderr_tail"] = "ValueError: a new failure\n"
    path.write_text(json.dumps(data), encoding="utf-8")
    rebuilt = build_site(Site(gaps), out)
    assert {p for p in rebuilt.pages if p.endswith(".html")} == {"knowledge/performance/00-gpu-profiling.html"}
    assert "a new failure" in (out / "knowledge/performance/00-gpu-profiling.html").read_text(encoding="utf-8")
    legacy = gaps / LEGACY
    legacy.write_text(LEGACY_BODY.replace("# CUDA Streams", "# CUDA Streams and Events"), encoding="utf-8")
    renamed = build_site(Site(gaps), out)
    assert "_static/nav-data.js" in renamed.pages and "knowledge/cuda/index.html" in renamed.pages
    assert "CUDA Streams and Events" in (out / "_static/nav-data.js").read_text(encoding="utf-8")
    assert "knowledge/performance/00-gpu-profiling.html" not in renamed.pages


def test_one_plan_kb_cannot_read_leaves_the_site_whole(demo):
    """A plan whose PART number has thousands of digits (int() refuses it) is one card saying so (issue 25, item 3)."""
    huge = "9" * 5000
    (demo / "plans" / "huge.md").write_text(
        f"# Knowledge Expansion: Huge\n\n# BATCH 1: One\n\n## PART {huge}: X\n\n- [ ] PART {huge}: Create x/y.md\n",
        encoding="utf-8",
    )
    site = Site(demo)
    page = html(site, "/plans.html")
    assert "BATCH 1: Profiling" in page  # the other plan is all there
    assert "plans/huge.md" in page
    result = build_site(site, demo / "site")
    assert "plans.html" in result.pages and not result.skipped
