"""The one exception family for the user's mistakes.

The CLI turns any ``KbError`` into a single line on stderr and exit code 2;
anything else is our bug and keeps its traceback.
"""

from __future__ import annotations


class KbError(Exception):
    """A problem with the user's input: a bad plan, config, path or environment."""

    exit_code = 2


class PathError(KbError):
    """A path that is missing, or outside the place it must stay in."""


class ConfigError(KbError):
    """kb.toml, a runner definition or a validator profile is invalid."""


class PlanError(KbError):
    """A plan that cannot be parsed or used at all."""


class WorkspaceError(KbError):
    """No workspace where one is needed, or one where none may be."""


class LockedError(KbError):
    """Another kb process is writing this workspace."""
