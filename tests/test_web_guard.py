"""No fetch of private addresses: a listening loopback service must receive 0 requests when a search result
names it (in any spelling) or a page redirects to it, unless ``[fetch] allow_private`` names it."""

from __future__ import annotations

import asyncio
import ipaddress

import httpcore
import pytest

from kb.cache import DiskCache
from kb.config import FetchConfig, load_config
from kb.errors import ConfigError
from kb.net.addresses import AddressPolicy, refusal
from kb.web.fetch import Fetcher
from servers import PageServer
from servers.pages import internal_service


def cfg(*allow: str, **kw) -> FetchConfig:
    return FetchConfig(timeout_s=2.0, max_bytes=200_000, max_redirects=3, backoff_s=0.02, allow_private=list(allow), **kw)


def fetch(fetcher: Fetcher, *urls: str):
    async def go():
        return await asyncio.gather(*(fetcher.fetch(u) for u in urls))

    return asyncio.run(go())


@pytest.fixture
def admin():
    with internal_service() as srv:
        yield srv


REFUSED = {
    "127.0.0.1": "loopback", "127.8.9.10": "loopback", "10.1.2.3": "private", "172.16.0.1": "private",
    "192.168.1.1": "private", "169.254.169.254": "link-local", "224.0.0.1": "multicast", "0.0.0.0": "unspecified",
    "240.0.0.1": "reserved", "100.64.0.1": "not globally routable", "198.18.0.1": "private",
    "::1": "loopback", "::": "unspecified", "fe80::1": "link-local", "fc00::1": "private", "ff02::1": "multicast",
    "fec0::1": "site-local", "::ffff:127.0.0.1": "loopback", "::ffff:169.254.169.254": "link-local",
    "::127.0.0.1": "loopback", "2002:7f00:1::": "loopback", "64:ff9b::a9fe:a9fe": "link-local",
    "::ffff:10.0.0.1": "private",
}
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2a00:1450:4001::200e"]


@pytest.mark.parametrize("address,kind", sorted(REFUSED.items()))
def test_private_addresses_are_refused_with_their_kind(address, kind):
    why = refusal(ipaddress.ip_address(address))
    assert why is not None and why.startswith(kind), (address, why)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert refusal(ipaddress.ip_address(address)) is None


def test_allow_entries_name_a_host_or_a_host_and_port():
    policy = AddressPolicy(["127.0.0.1:8888", "docs.internal", "[::1]:8080", "fd00::5", "Wiki.Local."])
    loop = ipaddress.ip_address("127.0.0.1")
    assert policy.check("127.0.0.1", 8888, loop) is None
    assert policy.check("localhost", 8888, loop) is None  # the address it resolves to is named
    assert "loopback" in policy.check("127.0.0.1", 8889, loop)
    assert policy.check("docs.internal", 1234, ipaddress.ip_address("10.0.0.7")) is None
    assert policy.check("wiki.local", 80, ipaddress.ip_address("192.168.0.2")) is None
    assert policy.check("::1", 8080, ipaddress.ip_address("::1")) is None
    assert policy.check("fd00::5", 443, ipaddress.ip_address("fd00::5")) is None
    assert "evil.example resolves to 10.0.0.7, a private address" in policy.check("evil.example", 80, ipaddress.ip_address("10.0.0.7"))
    for bad in ("http://127.0.0.1:8888", "host:port", "[::1", "::1:8080x", "h:70000", ""):
        with pytest.raises(ConfigError):
            AddressPolicy([bad])


def test_a_bad_allow_entry_in_kb_toml_is_a_config_error(tmp_path):
    path = tmp_path / "kb.toml"
    path.write_text('[fetch]\nallow_private = ["http://127.0.0.1:8888/"]\n')
    with pytest.raises(ConfigError, match=r"fetch.allow_private.*not a host or host:port"):
        load_config(path)
    path.write_text('[fetch]\nallow_private = ["127.0.0.1:8888", "docs.internal"]\n')
    assert load_config(path).fetch.allow_private == ["127.0.0.1:8888", "docs.internal"]


def spellings(port: int) -> list[str]:
    """One loopback service, written the ways a search result or a redirect might write it."""
    return [f"http://{host}:{port}/admin" for host in (
        "127.0.0.1", "localhost", "LocalHost", "2130706433", "0x7f.1", "0x7f000001", "017700000001", "127.1",
        "0177.0.0.1", "0.0.0.0", "0", "[::ffff:127.0.0.1]", "[::1]", "[::ffff:7f00:1]")]


def test_a_search_result_naming_a_loopback_service_in_any_spelling_is_never_requested(admin):
    fetcher = Fetcher(cfg())
    pages = fetch(fetcher, *spellings(admin.port))
    for page in pages:
        if "0177.0.0.1" in page.url:  # httpx rejects a dotted octal address before any lookup
            assert page.error.startswith("not a valid URL") and not page.text
            continue
        assert page.refused and page.error.startswith("refused ") and "allow_private" in page.error, (page.url, page.error)
        assert page.text == ""
    assert admin.total() == 0


def test_other_schemes_are_refused(admin):
    pages = fetch(Fetcher(cfg()), "file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/",
                  f"unix://{admin.url}", "data:text/html,<p>x</p>")
    assert all(p.refused and "not an http(s) URL" in p.refused for p in pages)
    assert admin.total() == 0


def test_a_redirect_to_a_loopback_service_is_refused_after_the_hop(admin):
    target = f"http://localhost:{admin.port}/admin"
    with PageServer(redirects={"/go": target, "/meta": "http://169.254.169.254/latest/meta-data/",
                               "/file": "file:///etc/passwd"}) as site:
        # The public side (here on loopback as well) is allowed by name; the service behind the redirect is not.
        fetcher = Fetcher(cfg(f"127.0.0.1:{site.port}"))
        go, meta, file_ = fetch(fetcher, site.url + "/go", site.url + "/meta", site.url + "/file")
        assert site.counts["/go"] == 1 and admin.total() == 0
        assert go.refused and go.final_url == target and f"(reached by a redirect from {site.url}/go)" in go.refused
        assert "169.254.169.254 is a link-local address" in meta.refused
        assert "redirected to a non-http URL: file:///etc/passwd" in file_.refused
        ok = fetch(fetcher, site.url + "/blog/mixed-precision.html")[0]
        assert ok.error is None and "autocast" in ok.text


def test_allow_private_lets_the_named_service_through(admin):
    by_address, by_port_elsewhere = fetch(Fetcher(cfg(f"127.0.0.1:{admin.port}")), f"http://127.0.0.1:{admin.port}/admin",
                                          f"http://127.0.0.1:{admin.port + 1 if admin.port < 65535 else 1}/admin")
    assert by_address.error is None and "Internal admin console" in by_address.text
    assert by_port_elsewhere.refused  # the entry names one port
    assert admin.total() == 1
    with PageServer(redirects={"/go": f"http://127.0.0.1:{admin.port}/admin"}) as site:
        (page,) = fetch(Fetcher(cfg("127.0.0.1")), site.url + "/go")  # a host without a port allows every port
        assert page.error is None and page.final_url.endswith("/admin") and admin.total() == 2


def test_a_name_in_allow_private_is_matched_before_its_private_address(admin):
    async def resolve(host, port):
        return {"docs.internal": ["127.0.0.1"], "evil.example": ["127.0.0.1"]}[host]

    allowed = Fetcher(cfg("docs.internal"), resolve=resolve)
    (page,) = fetch(allowed, f"http://docs.internal:{admin.port}/admin")
    assert page.error is None and "admin console" in page.text and admin.total() == 1
    (evil,) = fetch(allowed, f"http://evil.example:{admin.port}/admin")  # another name for the same address
    assert evil.refused and "evil.example resolves to 127.0.0.1, a loopback address" in evil.refused
    assert admin.total() == 1


class Recorder(httpcore.AsyncNetworkBackend):
    """Stands in for the sockets: records where it was asked to connect, and connects nowhere."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.calls.append(host)
        raise httpcore.ConnectError("recorded, not connected")

    async def sleep(self, seconds):
        await asyncio.sleep(seconds)


def test_dns_rebinding_cannot_move_the_connection_after_the_check():
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    asked: list[str] = []

    async def rebinding(host, port):
        asked.append(host)
        return next(answers)

    recorder = Recorder()
    fetcher = Fetcher(cfg(max_retries=0), resolve=rebinding, network_backend=recorder)
    (page,) = fetch(fetcher, "http://rebind.example/page")
    # Resolved once for the connection, and the socket went to the address that was checked, not the name.
    assert asked == ["rebind.example"] and recorder.calls == ["93.184.216.34"]
    assert page.transient and "connection failed" in page.error
    # The next connection resolves again and meets the private answer: refused before any socket.
    (again,) = fetch(Fetcher(cfg(max_retries=0), resolve=rebinding, network_backend=recorder), "http://rebind.example/page")
    assert again.refused and recorder.calls == ["93.184.216.34"]


def test_one_private_answer_among_public_ones_refuses_the_host():
    async def mixed(host, port):
        return ["93.184.216.34", "10.0.0.5"]

    recorder = Recorder()
    (page,) = fetch(Fetcher(cfg(), resolve=mixed, network_backend=recorder), "http://mixed.example/")
    assert page.refused and "10.0.0.5, a private address" in page.refused and recorder.calls == []


def test_a_cached_page_is_not_served_once_its_host_is_no_longer_allowed(admin, tmp_path):
    url = f"http://127.0.0.1:{admin.port}/admin"
    (first,) = fetch(Fetcher(cfg(f"127.0.0.1:{admin.port}"), cache=DiskCache(tmp_path)), url)
    assert first.error is None and admin.total() == 1
    (later,) = fetch(Fetcher(cfg(), cache=DiskCache(tmp_path)), url)
    assert later.refused and not later.cached and later.text == "" and admin.total() == 1
    (refused_again,) = fetch(Fetcher(cfg(), cache=DiskCache(tmp_path)), url)
    assert refused_again.refused and not refused_again.cached  # refusals are never cached either
