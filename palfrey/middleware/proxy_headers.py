"""Recover the real client address and scheme from headers set by trusted reverse proxies.

Behaviour worth documenting (the user docs mirror this list):

* Trust is decided only by the immediate peer (``scope["client"]``; ``None`` for a unix socket). Headers
  from an untrusted peer are ignored and the scope is left untouched.
* Hop selection: the hop list is walked right (nearest proxy) to left, skipping hops that are themselves
  trusted; the first untrusted hop is the client. If every hop is trusted, the left-most hop is used.
  Entries left of the chosen hop are never examined, so whatever a client prepends cannot matter.
* ``unknown``, obfuscated (``_name``), missing (a ``Forwarded`` element without ``for=``) or unparsable
  node identifiers are *unidentified* hops. They can never match a trusted address, so the walk stops
  there and ``scope["client"]`` is kept as it was (the peer's address): there is no real address to
  report, and looking further left would mean believing data nobody trusted vouched for. With ``*`` every
  hop counts as trusted, so the left-most hop is used, and if that one is unidentified the client is
  likewise kept.
* Port: taken from the chosen ``Forwarded`` node when it has a numeric port, otherwise 0 (obfuscated ports
  and ``X-Forwarded-For`` entries always give 0).
* Scheme: only http/https/ws/wss (case-insensitive) are accepted; websocket scopes get ws/wss and http
  scopes get http/https whichever spelling the proxy used. With ``Forwarded`` the chosen element's
  ``proto=`` is used; if it has none, the nearest ``proto=`` to its right (an element written by a trusted
  proxy). With ``X-Forwarded-Proto`` the entry at the chosen hop's position is used when it has exactly as
  many entries as ``X-Forwarded-For``, otherwise the right-most entry. Any other value leaves the scheme
  unchanged.
* Families: one family of headers is trusted, never both. By default that is ``X-Forwarded-For`` and
  ``X-Forwarded-Proto`` (what uvicorn reads and nginx's usual config sets); RFC 7239 ``Forwarded`` is
  ignored then, so a client's own ``Forwarded`` passed through by an unchanged proxy cannot spoof the
  client or the scheme. With the ``forwarded`` family only ``Forwarded`` is read and ``X-Forwarded-*``
  are ignored. ``X-Forwarded-Host``/``X-Forwarded-Port`` and ``Forwarded: host=`` are never applied:
  the app sees the request's own ``Host`` and ``scope["server"]`` stays the listening socket.
* Repeated header lines are joined with commas in order. Malformed headers never raise; they are ignored.
* Leniency in ``Forwarded``: optional whitespace around ``;``, ``,`` and ``=`` and unquoted values
  containing ``:``, ``[`` or ``]`` (e.g. ``for=192.0.2.1:8080``, ``for=[2001:db8::1]``) are accepted, as
  are bare unbracketed IPv6 addresses; parameter names are case-insensitive, and a parameter repeated
  within one element makes the whole header malformed.
"""

import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import Any

__all__ = ["ProxyHeaders", "ProxyHeadersMiddleware", "TrustedHosts"]

IPAddress = IPv4Address | IPv6Address
# (address family, packed address, port): packed bytes hash and compare far faster than ipaddress objects.
Node = tuple[int, bytes, int]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAMILIES = ("x-forwarded", "forwarded")
_ENTRY_HINT = "expected an IP address, a CIDR network, '*' or 'unix:'"

# RFC 7230 token characters; unquoted values additionally allow ":[]" because proxies often forget to quote.
_TCHAR = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_PAIR = re.compile(
    rf"([{_TCHAR}]+)[ \t]*=[ \t]*"
    r'(?:"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"'
    rf"|([{_TCHAR}:\[\]]+))[ \t]*"
)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_OBFUSCATED_PORT = re.compile(r"_[A-Za-z0-9._-]+")

_V4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"

_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


class TrustedHosts:
    """The set of peers allowed to speak for the client, parsed once so per-request checks stay cheap."""

    __slots__ = ("_ips", "_literals", "_v4_networks", "_v6_networks", "always_trust", "trust_unix")

    def __init__(self, spec: str | list[str] | tuple[str, ...]) -> None:
        if isinstance(spec, str):
            items: list[str] = [spec]
        elif isinstance(spec, list | tuple):
            items = list(spec)
        else:
            raise ValueError(f"invalid trusted hosts {spec!r}: expected a comma-separated string or a list")
        self.always_trust = False
        self.trust_unix = False
        ips: set[IPAddress] = set()
        v4_networks: list[tuple[int, int]] = []
        v6_networks: list[tuple[int, int]] = []
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"invalid trusted host entry {item!r}: {_ENTRY_HINT}")
            for part in item.split(","):
                entry = part.strip()
                if not entry:
                    continue
                if entry == "*":
                    self.always_trust = True
                elif entry.lower() == "unix:":
                    self.trust_unix = True
                elif "/" in entry:
                    network = _parse_trusted_network(entry)
                    if network.prefixlen == network.max_prefixlen:
                        ips.add(_unmap(network.network_address))
                        continue
                    masked = (int(network.network_address), int(network.netmask))
                    (v4_networks if network.version == 4 else v6_networks).append(masked)
                else:
                    ips.add(_unmap(_parse_trusted_address(entry)))
        self._ips = frozenset(ip.packed for ip in ips)
        # Peers are reported in canonical spelling, so most checks end with this string lookup.
        self._literals = frozenset(str(ip) for ip in ips)
        self._v4_networks = tuple(v4_networks)
        self._v6_networks = tuple(v6_networks)

    def __contains__(self, host: str | None) -> bool:
        """Membership test for a peer host string; ``None`` stands for a unix-socket peer."""
        if self.always_trust:
            return True
        if host is None:
            return self.trust_unix
        if host in self._literals:
            return True
        parsed = _parse_ip(host.partition("%")[0])  # link-local peers may carry a zone id
        return parsed is not None and self._contains_packed(*parsed)

    def _contains_packed(self, family: int, packed: bytes) -> bool:
        """Membership test for an already parsed address, so hop walking never parses twice."""
        if self.always_trust or packed in self._ips:
            return True
        if family == AF_INET:
            if self._v4_networks:
                value = int.from_bytes(packed, "big")
                return any(value & mask == network for network, mask in self._v4_networks)
            return False
        if self._v6_networks:
            value = int.from_bytes(packed, "big")
            if any(value & mask == network for network, mask in self._v6_networks):
                return True
        # Dual-stack listeners report IPv4 peers as ::ffff:a.b.c.d; trust them like the plain IPv4 address.
        return packed[:12] == _V4_MAPPED_PREFIX and self._contains_packed(AF_INET, packed[12:])


class ProxyHeaders:
    """Applied by the protocol once per request, in place, before the app sees the scope."""

    __slots__ = ("_rfc7239", "_trusted")

    def __init__(self, trusted: TrustedHosts, family: str = "x-forwarded") -> None:
        if family not in FAMILIES:
            raise ValueError(
                f"invalid proxy headers family {family!r}: expected one of {', '.join(FAMILIES)}"
            )
        self._trusted = trusted
        self._rfc7239 = family == "forwarded"

    def apply(self, scope: Scope) -> None:
        """Rewrite ``scope["client"]``/``scope["scheme"]`` from forwarding headers sent by a trusted peer."""
        update = self.resolve(scope)
        if update is not None:
            _write(scope, update)

    def resolve(self, scope: Scope) -> tuple[tuple[str, int] | None, str | None] | None:
        """Compute the new (client, scheme) without mutating, so middleware can copy the scope only if needed.

        Returns None when nothing changes; otherwise at least one member of the pair is not None.
        """
        forwarded = forwarded_for = forwarded_proto = None
        if self._rfc7239:
            for name, value in scope.get("headers", ()):
                if name == b"forwarded":
                    forwarded = value if forwarded is None else forwarded + b"," + value
            if forwarded is None:
                return None
        else:
            for name, value in scope.get("headers", ()):
                if name == b"x-forwarded-for":
                    forwarded_for = value if forwarded_for is None else forwarded_for + b"," + value
                elif name == b"x-forwarded-proto":
                    forwarded_proto = value if forwarded_proto is None else forwarded_proto + b"," + value
            if forwarded_for is None and forwarded_proto is None:
                return None
        peer = scope.get("client")
        if (peer[0] if peer else None) not in self._trusted:
            return None

        node: Node | None = None
        proto: str | None = None
        if forwarded is not None:
            elements = _parse_forwarded(forwarded.decode("latin-1"))
            if not elements:
                return None
            index, node = self._choose([element.get("for") for element in elements])
            for element in elements[index:]:
                proto = element.get("proto")
                if proto is not None:
                    break
        else:
            hops = _split_list(forwarded_for) if forwarded_for is not None else []
            protos = _split_list(forwarded_proto) if forwarded_proto is not None else []
            index = -1
            if hops:
                index, node = self._choose(hops)
                if node is not None:
                    node = (node[0], node[1], 0)
            if protos:
                proto = protos[index] if len(protos) == len(hops) else protos[-1]

        client = (inet_ntop(node[0], node[1]), node[2]) if node is not None else None
        scheme = None
        if proto is not None:
            schemes = _WEBSOCKET_SCHEMES if scope.get("type") == "websocket" else _HTTP_SCHEMES
            scheme = schemes.get(proto.lower())
        if client is None and scheme is None:
            return None
        return client, scheme

    def _choose(self, hops: Sequence[str | None]) -> tuple[int, Node | None]:
        """Pick the client hop: the right-most untrusted one, or the left-most if all are trusted."""
        trusted = self._trusted
        if trusted.always_trust:
            first = hops[0]
            return 0, (None if first is None else _parse_node(first))
        node: Node | None = None
        for index in range(len(hops) - 1, -1, -1):
            raw = hops[index]
            node = None if raw is None else _parse_node(raw)
            if node is None or not trusted._contains_packed(node[0], node[1]):
                return index, node
        return 0, node


class ProxyHeadersMiddleware:
    """ASGI 3 wrapper for users who assemble their own stack instead of relying on ``--proxy-headers``."""

    def __init__(
        self,
        app: ASGIApp,
        trusted_hosts: str | list[str] | tuple[str, ...] = "127.0.0.1",
        family: str = "x-forwarded",
    ) -> None:
        self.app = app
        self.trusted_hosts = TrustedHosts(trusted_hosts)
        self._proxy_headers = ProxyHeaders(self.trusted_hosts, family)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a rewritten copy of http/websocket scopes on; the caller's scope is never mutated."""
        if scope["type"] in ("http", "websocket"):
            update = self._proxy_headers.resolve(scope)
            if update is not None:
                scope = dict(scope)
                _write(scope, update)
        await self.app(scope, receive, send)


def _write(scope: Scope, update: tuple[tuple[str, int] | None, str | None]) -> None:
    client, scheme = update
    if client is not None:
        scope["client"] = client
    if scheme is not None:
        scope["scheme"] = scheme


def _unmap(ip: IPAddress) -> IPAddress:
    """Store IPv4-mapped IPv6 entries as IPv4 so they match however the peer is reported."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _parse_trusted_address(entry: str) -> IPAddress:
    host = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
    try:
        return ip_address(host)
    except ValueError:
        raise ValueError(f"invalid trusted host entry {entry!r}: {_ENTRY_HINT}") from None


def _parse_trusted_network(entry: str) -> IPv4Network | IPv6Network:
    try:
        return ip_network(entry)
    except ValueError as exc:
        # Host bits set (10.0.0.1/8) is rejected rather than masked: it is more likely a typo than intent.
        raise ValueError(f"invalid trusted host entry {entry!r}: {exc}") from None


def _split_list(value: bytes) -> list[str]:
    """Split a comma-separated header, dropping empty items as the HTTP list syntax requires."""
    text = value.decode("latin-1")
    if "," not in text:  # the usual single-hop case
        text = text.strip(" \t")
        return [text] if text else []
    return [item for part in text.split(",") if (item := part.strip(" \t"))]


def _parse_ip(text: str) -> tuple[int, bytes] | None:
    """Strictly parse an address with the C parser; ipaddress costs microseconds per call on the hot path."""
    family = AF_INET6 if ":" in text else AF_INET
    try:
        return family, inet_pton(family, text)
    except (OSError, ValueError):
        return None


def _parse_node(value: str) -> Node | None:
    """Parse ``IPv4[:port]``, ``[IPv6][:port]`` or bare IPv6; anything else (unknown, _obfuscated) is None."""
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or ":" not in host or (rest and rest[0] != ":"):
            return None
        parsed = _parse_ip(host)
    else:
        parsed = _parse_ip(value)  # plain IPv4 or bare IPv6: the common case
        if parsed is not None:
            return parsed[0], parsed[1], 0
        host, colon, rest = value.partition(":")
        if not colon or ":" in rest:
            return None
        parsed = _parse_ip(host)
        rest = colon + rest
    if parsed is None:
        return None
    port = 0
    if rest:
        text = rest[1:]
        if text.isascii() and text.isdigit() and len(text) <= 5:
            port = int(text)
            if port > 65535:
                return None
        elif not _OBFUSCATED_PORT.fullmatch(text):
            return None
    return parsed[0], parsed[1], port


def _parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """Parse an RFC 7239 ``Forwarded`` value into per-hop parameter dicts; None when malformed."""
    elements: list[dict[str, str]] = []
    current: dict[str, str] = {}
    position, end = 0, len(value)
    while position < end:
        char = value[position]
        if char in " \t;":
            position += 1
        elif char == ",":
            if current:
                elements.append(current)
                current = {}
            position += 1
        else:
            match = _PAIR.match(value, position)
            if match is None:
                return None
            name = match[1].lower()
            if name in current:
                return None
            quoted = match[2]
            if quoted is None:
                current[name] = match[3]
            else:
                current[name] = _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted
            position = match.end()
            if position < end and value[position] not in ",;":
                return None
    if current:
        elements.append(current)
    return elements
