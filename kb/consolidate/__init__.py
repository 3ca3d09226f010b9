"""`kb consolidate`, the oracle step: drops -> INDEX.md, SKILL.md, plans/completed/, one commit.

A run is read, decide, apply, commit (oracle.py). The modules, by concern:

- decisions, plain data in and out (no files, git or processes):
  decide (the run's plan: new drops and what they bring, plan moves, INDEX.md and SKILL.md,
  warnings, errors, what the commit describes), index_context (what INDEX.md and SKILL.md
  list), render (templates, markers, SKILL.md front matter), findings (warnings about the
  tree), message (the commit message), plans, refs, snippets, similar (their inputs' rules);
- I/O, deciding nothing: engine (read, apply, commit), listing (files, stats, fingerprint,
  cache hits), cache (.kb/consolidate/), scan (the readers, the worker pool), stamp (drops
  stamped through one journal), gitops and gitpack (commit only kb's paths; blobs packed
  ahead of `git add`);
- model: the result the CLI prints and --json shows.
"""

from kb.consolidate.model import DropDone, Finding, PlanDone, Result
from kb.consolidate.oracle import consolidate

__all__ = ["DropDone", "Finding", "PlanDone", "Result", "consolidate"]
