"""Proxy headers on real servers: X-Forwarded-For/-Proto and RFC 7239 Forwarded rewrite
scope["client"]/["scheme"] (and the access log) only for trusted peers; --forwarded-allow-ips with
the default, a list, CIDR, '*', 'unix:' and $FORWARDED_ALLOW_IPS; --no-proxy-headers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, run_server

APP = "tests.apps.server_apps:app"
Servers = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """One server per distinct configuration, shared by the module's tests."""
    started: dict[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], ServerProcess] = {}
    with ExitStack() as stack:

        def get(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
            key = (args, tuple(sorted((env or {}).items())))
            if key not in started:
                started[key] = stack.enter_context(run_server(APP, *args, env=env))
            return started[key]

        yield get


def scope_of(server: ServerProcess, headers: dict[str, str] | list[tuple[str, str]]) -> dict:
    response = httpx.get(server.url + "/who", headers=headers)
    assert response.status_code == 200
    return response.json()


RFC7239 = ("--proxy-headers-family", "forwarded")
XFF = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}
CASES = [
    # (server args, request headers, expected client, expected scheme)
    ((), XFF, ["203.0.113.7", 0], "https"),
    (RFC7239, {"forwarded": 'for="203.0.113.9:4711";proto=https'}, ["203.0.113.9", 4711], "https"),
    (RFC7239, {"forwarded": 'for="[2001:db8::1]:80";proto=http'}, ["2001:db8::1", 80], "http"),
    # By default (as uvicorn) Forwarded is not read at all: a client's own cannot spoof anything.
    ((), {"forwarded": "for=6.6.6.6;proto=https"}, ["127.0.0.1", None], "http"),
    ((), {"x-forwarded-proto": "HTTPS"}, ["127.0.0.1", None], "https"),
    # Only 127.0.0.1 is trusted: the right-most untrusted hop is the client.
    ((), {"x-forwarded-for": "198.51.100.1, 198.51.100.2"}, ["198.51.100.2", 0], "http"),
    # One family is trusted, never both: X-Forwarded-* by default, Forwarded when opted in.
    ((), {"forwarded": "for=192.0.2.60", "x-forwarded-for": "198.51.100.1"}, ["198.51.100.1", 0], "http"),
    (RFC7239, {"forwarded": "for=192.0.2.60", "x-forwarded-for": "198.51.100.1"}, ["192.0.2.60", 0], "http"),
    (RFC7239, XFF, ["127.0.0.1", None], "http"),
    # Anything but http/https/ws/wss leaves the scheme alone.
    ((), {"x-forwarded-proto": "gopher"}, ["127.0.0.1", None], "http"),
    (("--no-proxy-headers",), XFF, ["127.0.0.1", None], "http"),
    (("--forwarded-allow-ips", "10.0.0.1"), XFF, ["127.0.0.1", None], "http"),
    (
        ("--forwarded-allow-ips", "10.0.0.1", *RFC7239),
        {"forwarded": "for=1.2.3.4;proto=https"},
        ["127.0.0.1", None],
        "http",
    ),
    (
        ("--forwarded-allow-ips", "10.0.0.1, 127.0.0.1"),
        {"x-forwarded-for": "192.0.2.1, 10.0.0.1", "x-forwarded-proto": "https"},
        ["192.0.2.1", 0],
        "https",
    ),
    (
        ("--forwarded-allow-ips", "127.0.0.0/8,10.0.0.0/8"),
        {"x-forwarded-for": "192.0.2.2, 10.20.30.40"},
        ["192.0.2.2", 0],
        "http",
    ),
    (("--forwarded-allow-ips", "*"), {"x-forwarded-for": "192.0.2.3, 192.0.2.4"}, ["192.0.2.3", 0], "http"),
]


@pytest.mark.parametrize(("args", "headers", "client", "scheme"), CASES)
def test_proxy_headers(
    servers: Servers, args: tuple[str, ...], headers: dict[str, str], client: list, scheme: str
) -> None:
    server = servers(*args)
    body = scope_of(server, headers)
    if client[1] is None:
        assert body["client"][0] == client[0] and body["client"][1] > 0, "the real peer is kept"
    else:
        assert body["client"] == client
    assert body["scheme"] == scheme


def test_forwarded_allow_ips_from_environment(servers: Servers) -> None:
    untrusting = servers(env={"FORWARDED_ALLOW_IPS": "10.0.0.1"})
    assert scope_of(untrusting, XFF)["client"][0] == "127.0.0.1"
    trusting = servers(env={"FORWARDED_ALLOW_IPS": "10.0.0.1,127.0.0.1"})
    assert scope_of(trusting, XFF)["client"] == ["203.0.113.7", 0]
    overridden = servers("--forwarded-allow-ips", "127.0.0.1", env={"FORWARDED_ALLOW_IPS": "10.0.0.1"})
    assert scope_of(overridden, XFF)["client"] == ["203.0.113.7", 0], "the option beats the variable"


def test_access_log_shows_the_forwarded_client(servers: Servers) -> None:
    server = servers()
    scope_of(server, {"x-forwarded-for": "192.0.2.77"})
    server.wait_for_line(r'INFO: +192\.0\.2\.77 - "GET /who HTTP/1\.1" 200')  # port 0: unknown, not shown


def test_untrusted_headers_still_reach_the_app(servers: Servers) -> None:
    body = scope_of(servers("--forwarded-allow-ips", "10.0.0.1"), XFF)
    assert ["x-forwarded-for", "203.0.113.7"] in body["headers"]


@pytest.mark.parametrize(("trusted", "rewritten"), [("unix:", True), ("127.0.0.1", False)])
def test_unix_socket_peers(tmp_path: Path, trusted: str, rewritten: bool) -> None:
    path = tmp_path / "proxy.sock"
    with (
        run_server(APP, "--uds", str(path), "--forwarded-allow-ips", trusted),
        httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client,
    ):
        body = client.get("http://proxy/who", headers=XFF).json()
    if rewritten:
        assert (body["client"], body["scheme"]) == (["203.0.113.7", 0], "https")
    else:
        assert (body["client"], body["scheme"]) == (None, "http")


def _has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback_is_trusted_by_default() -> None:
    """uvicorn's default trusted addresses are 127.0.0.1 and ::1; so are palfrey's."""
    with run_server(APP, "--host", "::1") as server:
        body = httpx.get(f"http://[::1]:{server.port}/who", headers=XFF, timeout=5).json()
    assert (body["client"], body["scheme"]) == (["203.0.113.7", 0], "https")
