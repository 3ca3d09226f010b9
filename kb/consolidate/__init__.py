"""`kb consolidate`, the oracle step: drops -> INDEX.md, SKILL.md, plans/completed/, one commit."""

from kb.consolidate.model import DropDone, Finding, PlanDone, Result
from kb.consolidate.oracle import consolidate

__all__ = ["DropDone", "Finding", "PlanDone", "Result", "consolidate"]
