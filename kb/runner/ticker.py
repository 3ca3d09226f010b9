"""Tick PARTs in a plan file, committing ticks that arrive together as one edit (a group commit).

Every tick rereads the plan and rewrites it (kb.plan.edit.set_part_status, given the
status lines parsed when the run started, so it need not parse the plan again unless
the file changed shape), so when several runners finish at once, one edit ticks them
all. Each caller still returns only after its own tick is on disk.

The files the PARTs wrote (knowledge file and drop, written without fsync) are flushed to
disk by the same commit, before the plan is edited: after a power cut the plan never says
done for a PART whose files are not there, and PARTs ticked together share one flush.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kb.errors import KbError
from kb.fsutil import flush_to_disk
from kb.plan.edit import set_part_status


class TickFailed(Exception):
    """The plan could not be ticked for this PART (the message says why)."""


class PlanTicker:
    """One per run (it holds asyncio objects of the run's event loop)."""

    def __init__(self) -> None:
        self._waiting: dict[Path, dict[int, asyncio.Future]] = {}
        self._lines: dict[Path, dict[int, int]] = {}
        self._written: dict[Path, list[str]] = {}
        self._locks: dict[Path, asyncio.Lock] = {}

    async def tick(self, plan_path: Path, number: int, status_line: int | None = None,
                   written: list[str] | tuple = ()) -> None:
        """Tick PART ``number`` (``- [✓] PART n: ... (Completed ...)``), after flushing the
        ``written`` files to disk; raises TickFailed."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(plan_path, {})[number] = future
        self._written.setdefault(plan_path, []).extend(written)
        if status_line:
            self._lines.setdefault(plan_path, {})[number] = status_line
        async with self._locks.setdefault(plan_path, asyncio.Lock()):
            if not future.done():  # nobody committed it while we waited for the lock: commit all that wait
                await self._commit(plan_path, self._waiting.pop(plan_path, {}), self._lines.get(plan_path, {}),
                                   self._written.pop(plan_path, []))
        return future.result()

    @staticmethod
    async def _commit(plan_path: Path, batch: dict[int, asyncio.Future], lines: dict[int, int],
                      written: list[str]) -> None:
        def edit(numbers) -> None:
            hints = {n: lines[n] for n in numbers if n in lines}
            set_part_status(plan_path, {n: "done" for n in numbers},
                            status_lines=hints if len(hints) == len(numbers) else None)

        def flush_then_edit(numbers) -> OSError | None:
            try:
                flush_to_disk(written)
            except OSError as exc:
                return exc  # nothing ticked
            edit(numbers)
            return None

        # In a thread (one hop for both): the event loop keeps serving the other runners, and
        # queues their ticks for the next commit, meanwhile.
        try:
            unflushed = await asyncio.to_thread(flush_then_edit, list(batch))
        except KbError as exc:
            if len(batch) == 1:
                next(iter(batch.values())).set_exception(TickFailed(str(exc)))
                return
            for number, future in batch.items():  # find the PART the plan cannot tick; tick the others
                try:
                    await asyncio.to_thread(edit, [number])
                    future.set_result(None)
                except KbError as one:
                    future.set_exception(TickFailed(str(one)))
            return
        except BaseException as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            raise
        for future in batch.values():
            if unflushed is not None:
                future.set_exception(TickFailed(f"its files could not be flushed to disk: {unflushed}"))
            else:
                future.set_result(None)
