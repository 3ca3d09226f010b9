"""Remove the temporary files a killed kb process can leave behind.

Every kb write goes to ``.<name>.<random>.tmp`` beside its target and is then
renamed (kb.fsutil). A ``kill -9`` between the two leaves the temporary file;
the next run, holding the workspace lock (so no other kb process is mid-write),
deletes those leftovers. The real files were never touched.
"""

from __future__ import annotations

import re
from pathlib import Path

# kb.fsutil.atomic_write_bytes: tempfile.mkstemp(prefix=".<name>.", suffix=".tmp"), 8 random characters.
_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def stale_temp_files(folders: list[Path]) -> list[Path]:
    """kb's own leftover temp files under the given folders."""
    found: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        found += [p for p in folder.rglob(".*.tmp") if p.is_file() and _TEMP.match(p.name)]
    return sorted(set(found))


def remove_stale_temp_files(folders: list[Path]) -> list[Path]:
    """Delete the leftovers (call only while holding the workspace lock); return what was removed."""
    removed = []
    for path in stale_temp_files(folders):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed
