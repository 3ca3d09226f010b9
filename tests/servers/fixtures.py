"""A 4-PART test plan and a workspace pointed at the loopback servers."""

from __future__ import annotations

from pathlib import Path

from kb.workspace import Workspace, init_workspace, open_workspace

PLAN = """# Knowledge Expansion: Training Performance (4 runners in 1 batch)

**Date**: 2025-11-14
**Topic**: performance

# BATCH 1: Memory & Data (4 runners)

## PART 1: GPU Memory Optimization (~200 lines)

- [ ] PART 1: Create performance/04-gpu-memory-optimization.md

**Step 0: Check Existing Knowledge**
- [ ] Read performance/00-overview.md (what exists)

**Step 1: Web Research**
- [ ] Search: "gradient checkpointing activation recomputation"
- [ ] Search: "memory profiling torch.cuda.memory_summary"

**Step 2: Create Knowledge File**
- [ ] Section 1: Gradient checkpointing (activation recomputation, tradeoff)
- [ ] Section 2: Memory profiling (torch.cuda.memory_summary, OOM debugging)
- [ ] Section 3: CPU offloading (ZeRO-Offload optimizer states)

**Step 3: Create KNOWLEDGE DROP**
- [ ] Create KNOWLEDGE-DROP-memory-optimization-2025-11-14-[TIME].md

## PART 2: Data Loading Optimization (~200 lines)

- [ ] PART 2: Create performance/05-data-loading-optimization.md

**Step 1: Web Research**
- [ ] Search: "PyTorch DataLoader num_workers pin_memory"
- [ ] Search: "prefetch_factor double buffering"

**Step 2: Create Knowledge File**
- [ ] Section 1: DataLoader workers (num_workers, pin_memory, persistent_workers)
- [ ] Section 2: Prefetching (prefetch_factor, double buffering)

**Step 3: Create KNOWLEDGE DROP**
- [ ] Create KNOWLEDGE-DROP-data-loading-2025-11-14-[TIME].md

## PART 3: Gradient Accumulation & Large Batch Training (~200 lines)

- [ ] PART 3: Create performance/06-gradient-accumulation-large-batch.md

**Step 1: Web Research**
- [ ] Search: "gradient accumulation steps PyTorch"
- [ ] Search: "learning rate scaling large batch LAMB LARS"

**Step 2: Create Knowledge File**
- [ ] Section 1: Gradient accumulation (micro-batches, loss scaling by N)
- [ ] Section 2: Large batch learning rates (linear scaling, warmup, LAMB, LARS)

**Step 3: Create KNOWLEDGE DROP**
- [ ] Create KNOWLEDGE-DROP-gradient-accumulation-2025-11-14-[TIME].md

## PART 4: Mixed Precision Training (~200 lines)

- [ ] PART 4: Create performance/07-mixed-precision.md

**Step 1: Web Research**
- [ ] Search: "PyTorch AMP autocast GradScaler"
- [ ] Search: "BF16 vs FP16 loss scaling"

**Step 2: Create Knowledge File**
- [ ] Section 1: Autocast and GradScaler (FP16, loss scaling)
- [ ] Section 2: BF16 (exponent range, no loss scaling)

**Step 3: Create KNOWLEDGE DROP**
- [ ] Create KNOWLEDGE-DROP-mixed-precision-2025-11-14-[TIME].md
"""

KEY_ENV = "KB_TEST_LLM_KEY"
SEARCH_KEY_ENV = "KB_TEST_SEARCH_KEY"


def make_workspace(
    root: Path,
    *,
    engine: str,
    llm_url: str,
    search_url: str,
    fast: bool = True,
    timeout_s: float = 10.0,
    extra: str = "",
    allow_private: tuple[str, ...] | list[str] = (),
) -> Workspace:
    """A fresh workspace whose kb.toml points ``engine`` at ``llm_url`` and SearXNG at ``search_url``.

    The test sites listen on loopback, which kb never fetches from unless ``allow_private`` names them
    (the search and LLM endpoints need no entry: they are the person's own choice).
    """
    init_workspace(root)
    base = f"{llm_url}/v1"
    # Short retry pauses keep fault tests fast; timeouts stay generous unless a test injects hangs,
    # so a loaded CI machine does not turn a slow answer into a different result.
    retry = f"max_retries = 6\nbackoff_s = 0.05\ntimeout_s = {timeout_s}\n" if fast else ""
    toml = f"""
[run]
runners = 4
engine = "{engine}"
search = "searxng"
max_rewrites = 2
passages_per_section = 3

[llm.{engine}]
base_url = "{base}"
api_key_env = "{KEY_ENV}"
model = "loopback-1"
max_tokens = 2048
requests_per_minute = 6000
tokens_per_minute = 10000000
{retry}
[search.searxng]
url = "{search_url}"
results = 5
{"max_retries = 6" if fast else ""}
{"backoff_s = 0.05" if fast else ""}
{f"timeout_s = {timeout_s}" if fast else ""}

[fetch]
timeout_s = {timeout_s}
max_bytes = 200000
pages_per_query = 3
allow_private = [{", ".join(f'"{a}"' for a in allow_private)}]
{"backoff_s = 0.05" if fast else ""}

[prices.loopback-1]
input_per_mtok = 1.0
output_per_mtok = 2.0
{extra}
"""
    (root / "kb.toml").write_text(toml, encoding="utf-8")
    (root / "plans" / "training.md").write_text(PLAN, encoding="utf-8")
    return open_workspace(root)



def kb_check():
    """kb's check: the rules every engine's draft is held to."""
    from kb.engine.check import check_draft

    return check_draft
