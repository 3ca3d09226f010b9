"""The labelled snippet set (tests/fixtures/verdicts/) and how kb's verdicts are scored against it.

Shared by tests/test_snippets_verdicts_labelled.py (asserts the targets) and bench/bench_verdicts.py
(prints the confusion matrix). The verdicts come from kb's real validation: a workspace with the
labelled files as its knowledge tree, run through ``run_validation`` like ``kb validate-snippets``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from kb.snippets.extract import extract_snippets
from kb.snippets.results import FAILING
from kb.snippets.validate import Options, run_validation
from kb.workspace import init_workspace

SET_DIR = Path(__file__).parent / "fixtures" / "verdicts"
LABEL = re.compile(r"<!--\s*label:\s*([\w-]+)(?::([\w-]+))?\s*(?:\|\s*(.*?))?\s*-->")
VERDICTS = ("pass", "defines-only", "fail", "fragment", "skip", "not-executable")
KB_STATUSES = ("pass", "defines-only", "fail", "timeout", "error", "fragment", "skip", "not-executable")
# A generous profile: the set measures verdicts, not limits.
PROFILE = "timeout_s = 60\nmemory_limit_mb = 4096\nmax_processes = 128\nsatisfies = []\n"
# kb's skip reasons -> the label's categories.
SKIP_CATEGORIES = (
    ("requires python", "python"),
    ("gpus", "gpus"),
    ("requires cuda", "cuda"),
    ("requires module", "module"),
    ("requires network", "network"),
    ("requires torch.distributed", "distributed"),
)


@dataclass
class Case:
    file: str  # the set's file name
    line: int  # the fence's opening line
    label: str
    category: str | None  # for skips: cuda, gpus, module, network, python, distributed, marked
    note: str
    status: str | None = None  # kb's verdict
    reason: str | None = None
    categories: list[str] = field(default_factory=list)  # kb's skip categories


def load_cases() -> list[Case]:
    """Every labelled fence of the set: the label comment nearest above it."""
    cases = []
    for path in sorted(SET_DIR.glob("[0-9]*.md")):
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        previous = 0
        for snippet in extract_snippets(path.name, text):
            label = None
            for number in range(snippet.line - 1, previous, -1):
                match = LABEL.search(lines[number - 1])
                if match:
                    label = match
                    break
            if label is None:
                raise ValueError(f"{path.name}:{snippet.line}: a fence without a label")
            cases.append(Case(path.name, snippet.line, label.group(1), label.group(2), label.group(3) or ""))
            previous = snippet.end_line
    return cases


def skip_categories(reason: str | None) -> list[str]:
    """The categories a skip reason names (a marked skip names none of kb's)."""
    text = (reason or "").lower()
    found = [category for needle, category in SKIP_CATEGORIES if needle in text]
    if "requires cuda" in text and "gpus" in found:
        found.remove("gpus")
    return found or ["marked"]


def run_set(root: Path) -> tuple[list[Case], dict]:
    """Validate the set in a fresh workspace under ``root``; fill each case's verdict."""
    workspace, _ = init_workspace(root / "ws")
    (workspace.root / "validators" / "verdicts.toml").write_text(PROFILE)
    target = workspace.knowledge_dir / "verdicts"
    target.mkdir(parents=True)
    for path in sorted(SET_DIR.glob("[0-9]*.md")):
        shutil.copy(path, target / path.name)
    outcome = run_validation(workspace, Options(profile="verdicts"))
    rows = {(Path(r["file"]).name, r["line"]): r for r in outcome.rows}
    cases = load_cases()
    for case in cases:
        row = rows[(case.file, case.line)]
        case.status, case.reason = row["status"], row["reason"]
        if case.status == "skip":
            case.categories = skip_categories(case.reason)
    return cases, outcome.document["environment"]


@dataclass
class Score:
    matrix: dict[str, dict[str, int]]  # label -> kb status -> count
    kb_failures: int
    false_failures: list[Case]
    kb_skips: int
    wrong_skips: list[Case]
    missed_failures: list[Case]
    disagreements: list[Case]
    cases: int

    @property
    def false_failure_rate(self) -> float:
        return len(self.false_failures) / self.kb_failures if self.kb_failures else 0.0

    @property
    def wrong_skip_rate(self) -> float:
        return len(self.wrong_skips) / self.kb_skips if self.kb_skips else 0.0


def score(cases: list[Case], environment: dict) -> Score:
    """Compare; where this machine has CUDA, the set's CUDA skips would run, so they are left out."""
    if environment.get("gpu_count"):
        cases = [c for c in cases if c.category not in ("cuda", "gpus")]
    matrix = {label: dict.fromkeys(KB_STATUSES, 0) for label in VERDICTS}
    for case in cases:
        matrix[case.label][case.status] = matrix[case.label].get(case.status, 0) + 1
    failing = [c for c in cases if c.status in FAILING]
    skips = [c for c in cases if c.status == "skip"]
    return Score(
        matrix=matrix,
        kb_failures=len(failing),
        false_failures=[c for c in failing if c.label != "fail"],
        kb_skips=len(skips),
        wrong_skips=[c for c in skips if c.label != "skip" or c.category not in c.categories],
        missed_failures=[c for c in cases if c.label == "fail" and c.status not in FAILING],
        disagreements=[c for c in cases if c.label != c.status and not (c.label == "fail" and c.status in FAILING)],
        cases=len(cases),
    )
