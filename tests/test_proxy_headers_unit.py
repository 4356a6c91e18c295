"""Unit tests for trusted-proxy headers: spec parsing, hop selection, Forwarded parsing, middleware."""

import asyncio
import re
from typing import Any

import pytest

from palfrey.middleware.proxy_headers import ProxyHeaders, ProxyHeadersMiddleware, TrustedHosts

PEER = ("127.0.0.1", 5000)


def make_scope(
    headers: list[tuple[bytes, bytes]],
    client: tuple[str, int] | None = PEER,
    scheme: str = "http",
    scope_type: str = "http",
) -> dict[str, Any]:
    return {"type": scope_type, "scheme": scheme, "client": client, "headers": headers}


def run(
    headers: list[tuple[bytes, bytes]],
    trusted: str | list[str] = "127.0.0.1",
    family: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Apply the policy; the `Forwarded` parsing tests get the opt-in `forwarded` family by default."""
    if family is None:
        family = "forwarded" if any(name == b"forwarded" for name, _ in headers) else "x-forwarded"
    scope = make_scope(headers, **kwargs)
    ProxyHeaders(TrustedHosts(trusted), family).apply(scope)
    return scope


# --- TrustedHosts -------------------------------------------------------------------------------------------


def test_trusted_literal_addresses() -> None:
    trusted = TrustedHosts("127.0.0.1, ::1,[2001:db8::5]")
    assert "127.0.0.1" in trusted
    assert "::1" in trusted
    assert "0:0:0:0:0:0:0:1" in trusted
    assert "2001:db8::5" in trusted
    assert "127.0.0.2" not in trusted
    assert None not in trusted
    assert "not-an-ip" not in trusted
    assert not trusted.always_trust


def test_trusted_cidr_networks() -> None:
    trusted = TrustedHosts("10.0.0.0/8,fd00::/8,192.0.2.7/32")
    assert "10.1.2.3" in trusted
    assert "11.0.0.1" not in trusted
    assert "fd12::1" in trusted
    assert "fe80::1" not in trusted
    assert "192.0.2.7" in trusted
    assert "192.0.2.8" not in trusted


def test_trusted_ipv4_mapped_peer() -> None:
    trusted = TrustedHosts("127.0.0.1,10.0.0.0/8")
    assert "::ffff:127.0.0.1" in trusted
    assert "::ffff:10.9.9.9" in trusted
    assert "::ffff:11.0.0.1" not in trusted


def test_trusted_star_and_unix() -> None:
    star = TrustedHosts("*")
    assert star.always_trust
    assert "203.0.113.9" in star
    assert None in star

    unix = TrustedHosts("unix:")
    assert not unix.always_trust
    assert None in unix
    assert "127.0.0.1" not in unix


def test_trusted_list_and_tuple_specs() -> None:
    assert "10.0.0.1" in TrustedHosts(["127.0.0.1", "10.0.0.0/8"])
    trusted = TrustedHosts(("unix:", "::1, 192.0.2.1"))
    assert None in trusted
    assert "192.0.2.1" in trusted


def test_trusted_empty_spec_trusts_nothing() -> None:
    trusted = TrustedHosts("")
    assert "127.0.0.1" not in trusted
    assert None not in trusted


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.0/33", "10.0.0.1/8", "1.2.3", "fd00::/200", "unix"])
def test_trusted_bad_entries_raise(entry: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(entry))) as info:
        TrustedHosts(f"127.0.0.1,{entry}")
    assert "\n" not in str(info.value)


def test_trusted_non_string_entry_raises() -> None:
    with pytest.raises(ValueError, match="42"):
        TrustedHosts(["127.0.0.1", 42])  # type: ignore[list-item]


# --- X-Forwarded-For / X-Forwarded-Proto --------------------------------------------------------------------


def test_xff_single_hop() -> None:
    scope = run([(b"x-forwarded-for", b"203.0.113.9")])
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "http"


def test_xff_skips_trusted_proxy_chain() -> None:
    scope = run(
        [(b"x-forwarded-for", b"198.51.100.1, 203.0.113.9, 10.0.0.2, 10.0.0.3")],
        trusted="127.0.0.1,10.0.0.0/8",
    )
    assert scope["client"] == ("203.0.113.9", 0)


def test_xff_spoofed_left_entries_ignored() -> None:
    # The client sent "10.0.0.5, 127.0.0.1"; the trusted proxy appended the real address 198.51.100.7.
    scope = run(
        [(b"x-forwarded-for", b"10.0.0.5, 127.0.0.1, 198.51.100.7")],
        trusted="127.0.0.1,10.0.0.0/8",
    )
    assert scope["client"] == ("198.51.100.7", 0)


def test_xff_all_trusted_takes_leftmost() -> None:
    scope = run([(b"x-forwarded-for", b"10.0.0.1, 10.0.0.2")], trusted="127.0.0.1,10.0.0.0/8")
    assert scope["client"] == ("10.0.0.1", 0)


def test_xff_star_takes_leftmost() -> None:
    scope = run([(b"x-forwarded-for", b"198.51.100.1, 203.0.113.9")], trusted="*", client=("192.0.2.1", 1))
    assert scope["client"] == ("198.51.100.1", 0)


def test_untrusted_peer_leaves_scope_unchanged() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    scope = run(headers, client=("192.0.2.50", 1234))
    assert scope == make_scope(headers, client=("192.0.2.50", 1234))


def test_unix_peer_trusted_only_with_unix_entry() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.9")]
    assert run(headers, client=None)["client"] is None
    assert run(headers, trusted="unix:", client=None)["client"] == ("203.0.113.9", 0)


def test_no_forwarding_headers_is_noop() -> None:
    headers = [(b"host", b"example.com")]
    assert run(headers, trusted="*") == make_scope(headers)


def test_xff_and_xfp() -> None:
    scope = run([(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"HTTPS")])
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "https"


def test_xfp_alone_sets_scheme_only() -> None:
    scope = run([(b"x-forwarded-proto", b"https")])
    assert scope["client"] == PEER
    assert scope["scheme"] == "https"


def test_xfp_aligned_with_chosen_hop() -> None:
    headers = [
        (b"x-forwarded-for", b"203.0.113.9, 10.0.0.2"),
        (b"x-forwarded-proto", b"https, http"),
    ]
    scope = run(headers, trusted="127.0.0.1,10.0.0.2")
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "https"


def test_xfp_misaligned_takes_rightmost() -> None:
    headers = [
        (b"x-forwarded-for", b"198.51.100.1, 203.0.113.9, 10.0.0.2"),
        (b"x-forwarded-proto", b"http, https"),
    ]
    scope = run(headers, trusted="127.0.0.1,10.0.0.2")
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "https"


def test_xfp_invalid_value_ignored() -> None:
    scope = run([(b"x-forwarded-proto", b"ftp")], scheme="http")
    assert scope["scheme"] == "http"


@pytest.mark.parametrize(
    ("scope_type", "proto", "expected"),
    [
        ("websocket", "http", "ws"),
        ("websocket", "https", "wss"),
        ("websocket", "WSS", "wss"),
        ("http", "ws", "http"),
        ("http", "wss", "https"),
        ("http", "https", "https"),
    ],
)
def test_scheme_mapping(scope_type: str, proto: str, expected: str) -> None:
    scope = run([(b"x-forwarded-proto", proto.encode())], scope_type=scope_type, scheme="ws")
    assert scope["scheme"] == expected


def test_repeated_xff_lines_are_joined() -> None:
    headers = [
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-for", b"203.0.113.9, 10.0.0.2"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-proto", b"http,http"),
    ]
    scope = run(headers, trusted="127.0.0.1,10.0.0.2,203.0.113.9")
    assert scope["client"] == ("198.51.100.1", 0)
    assert scope["scheme"] == "https"


def test_xff_port_forms_accepted_but_port_dropped() -> None:
    assert run([(b"x-forwarded-for", b"203.0.113.9:4711")])["client"] == ("203.0.113.9", 0)
    assert run([(b"x-forwarded-for", b"[2001:db8::1]:4711")])["client"] == ("2001:db8::1", 0)
    assert run([(b"x-forwarded-for", b"2001:DB8::1")])["client"] == ("2001:db8::1", 0)


def test_xff_garbage_hop_keeps_peer_and_stops() -> None:
    scope = run([(b"x-forwarded-for", b"198.51.100.1, garbage"), (b"x-forwarded-proto", b"https")])
    assert scope["client"] == PEER
    assert scope["scheme"] == "https"


def test_xff_empty_items_skipped() -> None:
    assert run([(b"x-forwarded-for", b" , 203.0.113.9,")])["client"] == ("203.0.113.9", 0)
    assert run([(b"x-forwarded-for", b"")])["client"] == PEER


def test_xff_non_canonical_addresses() -> None:
    # Leading zeros are ambiguous (octal?) so such a hop is unidentified rather than guessed at.
    assert run([(b"x-forwarded-for", b"010.0.0.1")])["client"] == PEER
    assert run([(b"x-forwarded-for", b"0:0:0:0:0:0:0:1")], trusted="127.0.0.1")["client"] == ("::1", 0)


def test_xff_ipv6_cidr_and_mapped_hops() -> None:
    headers = [(b"x-forwarded-for", b"2001:db8::9, fd00::2, ::ffff:10.0.0.7")]
    scope = run(headers, trusted="::1,fd00::/8,10.0.0.0/8", client=("::1", 443))
    assert scope["client"] == ("2001:db8::9", 0)


def test_zone_id_peer_is_matched_without_zone() -> None:
    scope = run([(b"x-forwarded-for", b"203.0.113.9")], trusted="fe80::/10", client=("fe80::1%eth0", 1))
    assert scope["client"] == ("203.0.113.9", 0)


# --- Forwarded (RFC 7239) -----------------------------------------------------------------------------------


def test_forwarded_ipv4() -> None:
    scope = run([(b"forwarded", b"for=203.0.113.9;proto=https")])
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "https"


def test_forwarded_quoted_ipv6_with_port() -> None:
    scope = run([(b"forwarded", b'For="[2001:db8:cafe::17]:4711"')])
    assert scope["client"] == ("2001:db8:cafe::17", 4711)


def test_forwarded_quoted_ipv4_with_port_and_obfuscated_port() -> None:
    assert run([(b"forwarded", b'for="203.0.113.9:8080"')])["client"] == ("203.0.113.9", 8080)
    assert run([(b"forwarded", b'for="203.0.113.9:_hidden"')])["client"] == ("203.0.113.9", 0)
    assert run([(b"forwarded", b'for="203.0.113.9:99999"')])["client"] == PEER


def test_forwarded_multiple_elements_and_headers() -> None:
    headers = [
        (b"forwarded", b"for=198.51.100.1;proto=http, for=203.0.113.9;proto=https"),
        (b"forwarded", b'for="10.0.0.2";proto=http'),
    ]
    scope = run(headers, trusted="127.0.0.1,10.0.0.0/8")
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "https"


def test_forwarded_all_trusted_takes_leftmost() -> None:
    scope = run([(b"forwarded", b"for=10.0.0.1;proto=https, for=10.0.0.2")], trusted="127.0.0.1,10.0.0.0/8")
    assert scope["client"] == ("10.0.0.1", 0)
    assert scope["scheme"] == "https"


def test_forwarded_case_insensitive_params_and_whitespace() -> None:
    scope = run([(b"forwarded", b"  FOR = 203.0.113.9 ; Proto=HTTPS ; By=10.0.0.1;host=example.com ")])
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "https"


def test_forwarded_quoted_string_escapes() -> None:
    scope = run([(b"forwarded", b'for="203.0.113.\\9";proto="h\\ttps"')])
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "https"


def test_forwarded_proto_falls_back_to_nearest_right() -> None:
    headers = [(b"forwarded", b"for=203.0.113.9, for=10.0.0.2;proto=https, for=10.0.0.3;proto=http")]
    scope = run(headers, trusted="127.0.0.1,10.0.0.0/8")
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "https"


@pytest.mark.parametrize("node", [b"unknown", b"_hidden", b'"_gazonk:_port"', b"UNKNOWN"])
def test_forwarded_unidentified_hop_keeps_peer(node: bytes) -> None:
    scope = run([(b"forwarded", b"for=198.51.100.1, for=" + node + b";proto=https")])
    assert scope["client"] == PEER
    assert scope["scheme"] == "https"


def test_forwarded_unidentified_hop_stops_walk_even_if_left_looks_trusted() -> None:
    scope = run([(b"forwarded", b"for=10.0.0.1, for=unknown")], trusted="127.0.0.1,10.0.0.0/8")
    assert scope["client"] == PEER


def test_forwarded_element_without_for_is_unidentified() -> None:
    scope = run([(b"forwarded", b"proto=https;host=example.com")])
    assert scope["client"] == PEER
    assert scope["scheme"] == "https"


def test_forwarded_star_leftmost_unidentified_keeps_peer() -> None:
    scope = run([(b"forwarded", b"for=unknown, for=203.0.113.9")], trusted="*")
    assert scope["client"] == PEER


@pytest.mark.parametrize(
    "value",
    [
        b'for="203.0.113.9',  # unterminated quoted-string
        b"for",  # pair without value
        b"=203.0.113.9",  # empty name
        b"for=203.0.113.9 proto=https",  # missing separator
        b"for=203.0.113.9;for=198.51.100.1",  # repeated parameter in one element
        b'for=203.0.113.9"x"',  # junk after a token
        b"for=a b",  # whitespace inside a token
        b"f\xf6r=203.0.113.9",  # non-token name
        b'for="\x01"',  # control character inside a quoted-string
    ],
)
def test_forwarded_malformed_is_ignored(value: bytes) -> None:
    headers = [(b"forwarded", value), (b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")]
    scope = run(headers)
    assert scope == make_scope(headers)


def test_forwarded_invalid_node_is_unidentified() -> None:
    for node in (b"not-an-ip", b'"[203.0.113.9]"', b'"203.0.113.9:"', b'"[::1"', b'"1.2.3.4]"'):
        assert run([(b"forwarded", b"for=" + node)])["client"] == PEER


def test_forwarded_lenient_unquoted_forms() -> None:
    assert run([(b"forwarded", b"for=203.0.113.9:81")])["client"] == ("203.0.113.9", 81)
    assert run([(b"forwarded", b"for=[2001:db8::1]:81")])["client"] == ("2001:db8::1", 81)
    assert run([(b"forwarded", b"for=2001:db8::1")])["client"] == ("2001:db8::1", 0)


def test_default_family_ignores_forwarded() -> None:
    """nginx's usual config sets X-Forwarded-* and passes the client's own Forwarded through."""
    headers = [
        (b"forwarded", b"for=6.6.6.6;proto=https"),
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-proto", b"http"),
    ]
    scope = run(headers, family="x-forwarded")
    assert scope["client"] == ("198.51.100.1", 0)
    assert scope["scheme"] == "http"
    only_forwarded = run([(b"forwarded", b"for=6.6.6.6;proto=https")], family="x-forwarded")
    assert only_forwarded["client"] == PEER
    assert only_forwarded["scheme"] == "http"


def test_forwarded_family_ignores_x_forwarded() -> None:
    headers = [
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-proto", b"http"),
        (b"forwarded", b"for=203.0.113.9;proto=https"),
    ]
    scope = run(headers, family="forwarded")
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "https"
    only_xff = run([(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https")], family="forwarded")
    assert only_xff["client"] == PEER
    assert only_xff["scheme"] == "http"


def test_host_and_port_headers_are_never_applied() -> None:
    headers = [
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-host", b"evil"),
        (b"x-forwarded-port", b"1"),
    ]
    scope = run(headers)
    assert scope == make_scope(headers, client=("198.51.100.1", 0))
    scope = run([(b"forwarded", b"for=198.51.100.1;host=evil")])
    assert set(scope) == {"type", "scheme", "client", "headers"}


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="x-forwarded, forwarded"):
        ProxyHeaders(TrustedHosts("127.0.0.1"), "both")


def test_forwarded_without_proto_does_not_borrow_xfp() -> None:
    headers = [(b"forwarded", b"for=203.0.113.9"), (b"x-forwarded-proto", b"https")]
    scope = run(headers)
    assert scope["client"] == ("203.0.113.9", 0)
    assert scope["scheme"] == "http"


def test_forwarded_empty_elements_skipped() -> None:
    assert run([(b"forwarded", b",, for=203.0.113.9 ,;")])["client"] == ("203.0.113.9", 0)
    assert run([(b"forwarded", b" , ")])["client"] == PEER


# --- ProxyHeadersMiddleware ---------------------------------------------------------------------------------


def drive(middleware: ProxyHeadersMiddleware, scope: dict[str, Any]) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        pass

    async def app(inner: Any, receive: Any, send: Any) -> None:
        seen.append(inner)

    middleware.app = app
    asyncio.run(middleware(scope, receive, send))
    assert len(seen) == 1
    return seen[0]


async def _unused_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("replaced in drive()")


def test_middleware_http() -> None:
    middleware = ProxyHeadersMiddleware(_unused_app, trusted_hosts="127.0.0.1")
    original = make_scope([(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")])
    inner = drive(middleware, original)
    assert inner["client"] == ("203.0.113.9", 0)
    assert inner["scheme"] == "https"
    assert original["client"] == PEER  # the caller's scope is not mutated


def test_middleware_websocket() -> None:
    middleware = ProxyHeadersMiddleware(_unused_app, trusted_hosts=["127.0.0.1"], family="forwarded")
    scope = make_scope(
        [(b"forwarded", b'for="[2001:db8::1]:9";proto=https')], scope_type="websocket", scheme="ws"
    )
    inner = drive(middleware, scope)
    assert inner["client"] == ("2001:db8::1", 9)
    assert inner["scheme"] == "wss"


def test_middleware_untrusted_passes_same_scope() -> None:
    middleware = ProxyHeadersMiddleware(_unused_app)
    scope = make_scope([(b"x-forwarded-for", b"203.0.113.9")], client=("192.0.2.1", 1))
    assert drive(middleware, scope) is scope


def test_middleware_lifespan_passthrough() -> None:
    middleware = ProxyHeadersMiddleware(_unused_app, trusted_hosts="*")
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}}
    assert drive(middleware, scope) is scope


def test_middleware_bad_spec_raises() -> None:
    with pytest.raises(ValueError, match="nope"):
        ProxyHeadersMiddleware(_unused_app, trusted_hosts="nope")
