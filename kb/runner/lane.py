"""The finishing lane: one PART at a time through check -> drop -> tick.

Runners that wake together (their writers returned at about the same moment) would
otherwise take turns on the one event loop, step by step, and all free their slots
only when the last of them is done: the next PARTs wait for the whole crowd. Taking
the finishing stages one PART at a time costs no CPU (it is the same work, on the
same thread) but frees the first slot after one PART's finish instead of four, and
the PARTs that start then no longer wake in step. The stages before write (reading,
research) and the writes themselves are not in the lane: they run side by side.
"""

from __future__ import annotations

import asyncio

LANE_STAGES = frozenset({"check", "drop", "tick"})


class FinishLane:
    """A lock held by one PART across several graph steps; one per run (it binds to the run's event loop)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._holder: int | None = None

    @property
    def holder(self) -> int | None:
        return self._holder

    async def enter(self, part: int) -> None:
        """Wait for the lane (at once if ``part`` already holds it)."""
        if self._holder == part:
            return
        await self._lock.acquire()
        self._holder = part

    def leave(self, part: int) -> None:
        """Give the lane up, if ``part`` holds it (a no-op otherwise)."""
        if self._holder == part:
            self._holder = None
            self._lock.release()
