"""httpx clients that follow the event loop they are used in."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable

import httpx


class LoopClients:
    """One ``httpx.AsyncClient`` per running event loop.

    A client's connection pool belongs to the loop that opened it; an engine
    built once may be used by several ``asyncio.run`` calls (tests, ``--all``),
    so each loop gets its own client, made on first use.
    """

    def __init__(self, factory: Callable[[], httpx.AsyncClient]) -> None:
        self._factory = factory
        self._clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None or client.is_closed:
                client = self._clients[loop] = self._factory()
            return client

    async def aclose(self) -> None:
        """Close the current loop's client (others close with their loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()


def timeout(seconds: float) -> httpx.Timeout:
    """httpx timeouts for one request: connecting fails faster than reading."""
    return httpx.Timeout(seconds, connect=min(10.0, seconds))
