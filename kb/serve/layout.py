"""Where the site's source paths lie in the workspace.

The site names its sources as kb's own layout has them: ``knowledge/<topic>/<file>.md``,
``drops/...``, ``plans/...`` (its URLs follow: ``knowledge/<topic>/<file>.html``). A workspace
with another layout in kb.toml (an adopted tree: topic folders at its top, drops and plans in
``_ingest-auto/``) keeps its files where they are; this maps between the two:
``knowledge/<x>`` is ``<knowledge root>/<x>``, ``drops/<path>`` and ``plans/<path>`` are the
drop or plan at ``<path>``. kb's own layout maps every path to itself.
"""

from __future__ import annotations

import posixpath
import time
from dataclasses import dataclass, field
from pathlib import Path

from kb.serve import urls

# Top-level folders that are never the knowledge tree where its root is the workspace itself.
_NOT_KNOWLEDGE = ("snippets", "runners", "validators", "kb", "tests", "site", "_site", "node_modules")


@dataclass(frozen=True)
class SiteLayout:
    """kb's own layout (the default), or an adopted workspace's (``workspace`` set)."""

    workspace: object | None = None  # kb.workspace.Workspace, whose kb.toml [layout] is not kb's own
    # The drops and plans the layout's globs match, listed again when a second has passed (the live
    # server sees new ones; a page's hundreds of links do not each glob the tree).
    _lists: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, workspace) -> "SiteLayout":
        """The layout of ``workspace`` (kb.workspace.Workspace)."""
        return cls() if workspace.default_layout else cls(workspace)

    @property
    def default(self) -> bool:
        return self.workspace is None

    @property
    def _prefix(self) -> str:
        return self.workspace.knowledge_prefix  # "" where the knowledge root is the workspace

    def _listed(self, kind: str) -> set[str]:
        """The workspace paths of the layout's knowledge files, drops, or plans (completed ones too), by ``kind``."""
        when, found = self._lists.get(kind, (0.0, set()))
        if time.monotonic() - when > 1.0:
            if kind == "knowledge":
                found = set(self.workspace.knowledge_files())
            else:
                kinds = ("drops",) if kind == "drops" else ("plans", "completed")
                found = {rel for k in kinds for rel in self.workspace.layout_files(k)}
            self._lists[kind] = (time.monotonic(), found)
        return found

    def real(self, rel: str) -> str:
        """The workspace path behind a site source path."""
        if self.default:
            return rel
        if rel == "knowledge":
            return self._prefix.rstrip("/") or "."
        if rel.startswith("knowledge/"):
            return self._prefix + rel[len("knowledge/"):]
        for kind in ("drops/", "plans/"):
            if rel.startswith(kind):
                return rel[len(kind):]
        return rel

    def source(self, rel: str) -> str:
        """The site source path of a workspace path (the inverse of :meth:`real`)."""
        if self.default or rel in ("", "."):
            return rel
        if rel in self._listed("drops"):
            return "drops/" + rel
        if rel in self._listed("plans"):
            return "plans/" + rel
        prefix = self._prefix
        if prefix:
            return "knowledge/" + rel[len(prefix):] if rel.startswith(prefix) else rel
        # The workspace is the knowledge root: its topic folders are, its top-level files and kb's folders are not.
        if "/" in rel and rel.split("/", 1)[0] not in _NOT_KNOWLEDGE:
            return "knowledge/" + rel
        return rel

    def file(self, root: Path, rel: str, within: str = "") -> Path | None:
        """``urls.safe_file`` for a site source path: the file when it exists inside its folder
        (the knowledge root; for drops and plans, one the layout lists)."""
        if self.default:
            return urls.safe_file(root, rel, within)
        real = self.real(rel)
        if within in ("drops", "plans") or (within == "knowledge" and real.endswith(".md")):
            # A Markdown file is the kind of page it is asked as only where the layout lists it so
            # (a plan or a SKILL.md inside the knowledge root is no knowledge page).
            if real not in self._listed(within):
                return None
            return urls.safe_file(root, real, self._prefix.rstrip("/") if within == "knowledge" else "")
        base = (self._prefix.rstrip("/") if within == "knowledge" else within)
        return urls.safe_file(root, real, base)

    def markdown_files(self, root: Path, kind: str) -> list[str]:
        """``urls.markdown_files`` of kb's folder ``kind`` (knowledge, drops, plans), as site source paths."""
        if self.default:
            return urls.markdown_files(root, kind)
        if kind == "knowledge":
            return sorted("knowledge/" + rel[len(self._prefix):] for rel in self._listed("knowledge"))
        return sorted(f"{kind}/{rel}" for rel in self._listed(kind) if rel.endswith(".md"))

    def completed(self, rel: str) -> bool:
        """Whether a plan (a site source path) is filed as completed."""
        if self.default:
            return rel.startswith("plans/completed/")
        return self.real(rel) in set(self.workspace.layout_files("completed"))  # one plan list per page

    def link_target(self, source_rel: str, target_path: str) -> str | None:
        """The site source path a relative link in ``source_rel`` names; None where it leaves the workspace."""
        if target_path.startswith("/"):
            joined = target_path.lstrip("/")
        else:
            joined = posixpath.join(posixpath.dirname(self.real(source_rel)), target_path)
        rel = posixpath.normpath(joined)
        if rel in (".", "..") or rel.startswith("../"):
            return None
        return self.source(rel)
