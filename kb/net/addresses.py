"""Which network addresses web research may reach: public ones, plus those kb.toml allows by name.

A search result or a redirect may point anywhere, including a service on the
person's own machine or network (``http://127.0.0.1:8080/admin``, a cloud
metadata service at ``169.254.169.254``). Pages are only fetched from global
unicast addresses; ``[fetch] allow_private`` names the private hosts a person
wants reached (``"127.0.0.1:8888"``, ``"docs.internal"``). The check is on the
addresses the resolver returns, so every spelling of an address (``2130706433``,
``0x7f.1``, ``::ffff:127.0.0.1``) is judged by what it really is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from kb.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The kinds of address refused, in the order they are named (the first that applies is the reason).
_KINDS = ("unspecified", "loopback", "link_local", "multicast", "reserved", "site_local", "private")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressRefused(Exception):
    """A URL kb will not fetch: a scheme other than http(s), or a host that is not a public address."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refused {url}: {reason}")
        self.url = url
        self.reason = reason


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, Teredo client, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    packed = int(address)
    if address in _NAT64 or (packed >> 32 == 0 and packed > 1):  # NAT64, or ::a.b.c.d (IPv4-compatible)
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one ("loopback", "private", ...); None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d to the socket: judged as that alone
            why = refusal(address.ipv4_mapped)
            return f"{why} (IPv4 {address.ipv4_mapped} inside IPv6 {address})" if why else None
        inner = _embedded_ipv4(address)
        if inner is not None:
            why = refusal(inner)
            if why:
                return f"{why} (IPv4 {inner} inside IPv6 {address})"
    for kind in _KINDS:
        if getattr(address, f"is_{kind}", False):
            return kind.replace("_", "-")
    if not address.is_global:  # e.g. 100.64.0.0/10, the carrier-grade NAT range
        return "not globally routable"
    return None


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (brackets and an IPv6 zone allowed), or None when it is a name."""
    text = text.strip().strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    address = parse_address(host)
    if address is not None:
        return str(address)
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class _Allowed:
    host: str
    port: int | None


def _parse_entry(entry: str) -> _Allowed:
    text = entry.strip()
    if not text or "/" in text or "@" in text:
        raise ConfigError(f"[fetch] allow_private: {entry!r} is not a host or host:port (like \"127.0.0.1:8888\")")
    host, port = text, None
    if text.startswith("["):  # [::1]:8080 or [::1]
        close = text.find("]")
        if close < 0:
            raise ConfigError(f"[fetch] allow_private: {entry!r}: unclosed [ in an IPv6 address")
        host, rest = text[1:close], text[close + 1:]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ConfigError(f"[fetch] allow_private: {entry!r}: the port after ] must be :<number>")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, digits = text.partition(":")
        if not digits.isdigit():
            raise ConfigError(f"[fetch] allow_private: {entry!r}: the port must be a number")
        port = int(digits)
    elif text.count(":") > 1 and parse_address(text) is None:
        raise ConfigError(f"[fetch] allow_private: {entry!r}: write an IPv6 address with a port as [addr]:port")
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"[fetch] allow_private: {entry!r}: port {port} is out of range")
    return _Allowed(_normal_host(host), port)


class AddressPolicy:
    """Public addresses pass; a private one passes only when ``allow_private`` names its host (and port)."""

    def __init__(self, allow_private: Iterable[str] = ()) -> None:
        self.entries = tuple(_parse_entry(e) for e in allow_private)

    def allowed_by_name(self, host: str, port: int, address: IPAddress | None = None) -> bool:
        """Whether ``allow_private`` names this host (as written in the URL, or the address it resolved to)."""
        names = {_normal_host(host)}
        if address is not None:
            names.add(str(address))
        return any(e.host in names and (e.port is None or e.port == port) for e in self.entries)

    def check(self, host: str, port: int, address: IPAddress) -> str | None:
        """Why connecting to ``address`` (resolved from ``host``) is refused; None when it is allowed."""
        why = refusal(address)
        if why is None or self.allowed_by_name(host, port, address):
            return None
        if _normal_host(host) == str(address):
            subject = f"{address} is a {why} address"
        else:
            subject = f"{host} resolves to {address}, a {why} address"
        return subject + " (allow it by name in [fetch] allow_private of kb.toml)"
