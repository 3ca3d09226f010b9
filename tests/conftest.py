"""Shared fixtures: paths to the repository and the seed plan, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The real plan that started kb (../shared/seeds/002_a5903b0fc4ce0a52.txt), byte for byte: mojibaked, all ticked.
SEED = REPO / "tests" / "fixtures" / "seed-002-performance-plan.txt"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_kb(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120) -> CliResult:
    """Run the real `kb` CLI in a subprocess (python -m kb) and capture its output."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "kb", *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def kb_cli():
    return run_kb


def install_performance_plan(dest: Path) -> Path:
    """The performance plan as the main job starts from it: the seed, repaired, every PART pending."""
    from kb.plan import load_plan
    from kb.plan.edit import set_part_status

    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(SEED.read_bytes())
    set_part_status(dest, {p.number: "pending" for p in load_plan(dest).parts})
    return dest


@pytest.fixture
def seed_bytes() -> bytes:
    if not SEED.exists():
        pytest.skip(f"the seed plan is not at {SEED}")
    return SEED.read_bytes()
