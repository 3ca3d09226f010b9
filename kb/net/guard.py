"""An httpx transport that checks the address it connects to, at the moment it connects.

The host of every connection (the first request's and every redirect's) is
resolved once, each address the resolver returns is judged by the
:class:`~kb.net.addresses.AddressPolicy`, and the socket is opened to an address
that was judged, never to the name again: a DNS answer that changes between a
check and the connection (DNS rebinding) cannot steer the connection elsewhere.
TLS still verifies the certificate against the URL's host name.
"""

from __future__ import annotations

import socket
import typing
from collections.abc import Awaitable, Callable

import anyio
import httpcore
import httpx

from kb.net.addresses import AddressPolicy, AddressRefused, IPAddress, parse_address

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (a literal address resolves to itself)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that resolves, checks, then connects to the checked address."""

    def __init__(self, policy: AddressPolicy, *, resolve: Resolver | None = None,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self._resolve = resolve or system_resolve
        self._inner = inner or httpcore.AnyIOBackend()
        self.connected: list[tuple[str, str, int]] = []  # (host, address, port): what was reached, for tests

    async def _addresses(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        try:
            with anyio.fail_after(timeout):
                answers = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = [a for a in (parse_address(x) for x in answers) if a is not None]
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        return addresses

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        # One refused answer refuses the host: whoever controls its DNS chose to include it.
        for address in addresses:
            why = self.policy.check(host, port, address)
            if why:
                raise AddressRefused(f"{host}:{port}", why)
        last: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(str(address), port, timeout=timeout, local_address=local_address,
                                                       socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            self.connected.append((host, str(address), port))
            return stream
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(path, "a Unix socket is not a web address")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections go through a :class:`GuardedBackend` (no proxy, no env)."""

    def __init__(self, policy: AddressPolicy, *, resolve: Resolver | None = None,
                 inner: httpcore.AsyncNetworkBackend | None = None, **kwargs: typing.Any) -> None:
        super().__init__(trust_env=False, **kwargs)
        self.backend = GuardedBackend(policy, resolve=resolve, inner=inner)
        limits = kwargs.get("limits", httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0))
        # The pool httpx made would connect by name; this one connects through the guard. Built the same way.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )
