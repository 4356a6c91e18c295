"""Request-head checks and framing decisions shared by both parser adapters.

httptools (llhttp) and h11 disagree on many edge cases: duplicate Content-Length, `gzip, chunked`,
HTTP/2.0 request lines, missing Host. Each adapter turns bytes into (method, target, version,
headers); this module then applies one policy to both, so a request that could be framed two ways is
rejected identically whichever parser read it (RFC 9112 §6.1, §6.3, §3.2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Methods llhttp knows; both adapters answer 501 for any other well-formed token so they agree.
KNOWN_METHODS = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH SEARCH "
    b"UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY SUBSCRIBE "
    b"UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE QUERY".split()
)

_TCHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def is_token(value: bytes) -> bool:
    """RFC 9110 token: deleting every tchar leaves nothing (one C-level pass over the bytes)."""
    return bool(value) and not value.translate(None, _TCHARS)


class ParseError(Exception):
    """A request the server answers itself (and then closes): status and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


BODY_NONE, BODY_LENGTH, BODY_CHUNKED = 0, 1, 2


@dataclass(slots=True)
class Framing:
    """What the head says about the body and the connection."""

    body: int = BODY_NONE
    length: int = 0
    keep_alive: bool = True
    expect_continue: bool = False
    upgrade: bytes | None = None  # a WebSocket (or CONNECT) upgrade: the parser stops after the head
    ignored_upgrade: bool = False  # an upgrade palfrey does not take (h2c...): served as plain HTTP/1.1
    forwarded: bool = False  # a proxy header is present: only then is the proxy policy consulted


_CONTENT_LENGTH, _TRANSFER_ENCODING, _HOST, _CONNECTION, _EXPECT, _UPGRADE, _FORWARDED = range(7)
_FRAMING_FIELDS = {
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"host": _HOST,
    b"connection": _CONNECTION,
    b"expect": _EXPECT,
    b"upgrade": _UPGRADE,
    b"forwarded": _FORWARDED,
    b"x-forwarded-for": _FORWARDED,
    b"x-forwarded-proto": _FORWARDED,
}


def watch_proxy_headers(names: Iterable[bytes]) -> None:
    """Embedding hook: more (lower-case) header names whose presence means the proxy rules must run.

    The gunicorn worker's `secure_scheme_headers` (`X-Forwarded-Ssl: on`, ...) are read by its proxy
    rules; without this, a request carrying only such a header would skip them. Process-wide, like
    the one server a gunicorn worker runs; costs nothing per request (the same one dict lookup).
    """
    for name in names:
        _FRAMING_FIELDS.setdefault(name, _FORWARDED)


def check_head(method: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> Framing:
    """Validate a parsed request head and decide its framing. Raises ParseError.

    `headers` are (lowercase name, value with OWS stripped) pairs exactly as received: repeated
    fields are still separate entries, which is what lets repeated Content-Length be refused.
    """
    if version != "1.1" and version != "1.0":
        raise ParseError(400, f"Unsupported HTTP version {version}")
    framing = Framing(keep_alive=version == "1.1")
    content_length: bytes | None = None
    chunked = False
    hosts = 0
    connection_tokens: list[bytes] = []
    for name, value in headers:
        kind = _FRAMING_FIELDS.get(name)
        if kind is None:
            continue  # most fields: one dict lookup (bytes cache their hash)
        if kind == _CONTENT_LENGTH:
            if content_length is not None:
                raise ParseError(400, "Repeated Content-Length")
            if not value.isdigit() or len(value) > 18:
                raise ParseError(400, "Invalid Content-Length")
            content_length = value
        elif kind == _TRANSFER_ENCODING:
            if chunked or value.lower() != b"chunked":
                raise ParseError(400, "Unsupported Transfer-Encoding")
            chunked = True
        elif kind == _HOST:
            hosts += 1
        elif kind == _CONNECTION:
            connection_tokens.extend(t.strip().lower() for t in value.split(b","))
        elif kind == _EXPECT:
            if value.lower() == b"100-continue":
                framing.expect_continue = True
        elif kind == _UPGRADE:
            framing.upgrade = value
        else:
            framing.forwarded = True
    if chunked:
        if content_length is not None:
            raise ParseError(400, "Both Content-Length and Transfer-Encoding")
        if version == "1.0":
            raise ParseError(400, "Transfer-Encoding in an HTTP/1.0 request")
        framing.body = BODY_CHUNKED
    elif content_length is not None:
        framing.length = int(content_length)
        framing.body = BODY_LENGTH if framing.length else BODY_NONE
    if hosts > 1 or (hosts == 0 and version == "1.1"):
        raise ParseError(400, "An HTTP/1.1 request needs exactly one Host header")
    if connection_tokens:
        if b"close" in connection_tokens:
            framing.keep_alive = False
        elif b"keep-alive" in connection_tokens:
            framing.keep_alive = True
        if b"upgrade" not in connection_tokens:
            framing.upgrade = None
    else:
        framing.upgrade = None
    if method == b"CONNECT":
        framing.upgrade = b""
    elif framing.upgrade is not None and b"websocket" not in framing.upgrade.lower():
        # JDK HttpClient and Ktor send `Upgrade: h2c` on ordinary POSTs: an upgrade palfrey does not
        # take is ignored (RFC 9110 §7.8), the request keeps its body and the connection its framing.
        framing.upgrade = None
        framing.ignored_upgrade = True  # llhttp still stops at the head: its adapter reads on itself
    if framing.upgrade is not None:
        # llhttp stops at the end of an upgrade request's head and never reads its body; a WebSocket
        # handshake that is not taken is served as plain HTTP without a body and the connection
        # closes after the response, on both parsers.
        framing.body = BODY_NONE
        framing.keep_alive = False
    if framing.body == BODY_NONE or version == "1.0":
        framing.expect_continue = False  # RFC 9110 §10.1.1: ignored in an HTTP/1.0 request
    return framing


MAX_EMPTY_LINES = 8


def skip_empty_lines(data: bytes | bytearray, seen: int) -> tuple[int, int]:
    """Where the request line starts in `data`, after the empty lines before it, and how many.

    RFC 9112 §2.2 lets a server ignore CRLFs before a request line; llhttp also skips bare CR and
    LF there, h11 does not. Both adapters call this at a message boundary so both accept CRLF only,
    at most MAX_EMPTY_LINES of them. A CR at the very end may be half of a CRLF: the position
    returned then points at it, for the caller to keep until more bytes arrive.
    """
    pos = 0
    end = len(data)
    while pos < end:
        byte = data[pos]
        if byte == 13:  # CR
            if pos + 1 == end:
                break
            if data[pos + 1] != 10:
                raise ParseError(400, "Bare CR before the request line")
            pos += 2
            seen += 1
            if seen > MAX_EMPTY_LINES:
                raise ParseError(400, "Too many empty lines before the request line")
        elif byte == 10:
            raise ParseError(400, "Bare LF before the request line")
        else:
            break
    return pos, seen


MAX_UNKNOWN_METHOD = 32  # longer unknown tokens are 400: the httptools adapter must decide early


def method_status(method: bytes) -> int:
    """0 for a method palfrey serves, 501 for an unknown well-formed one, 400 for garbage."""
    if method in KNOWN_METHODS:
        return 0
    return 501 if len(method) <= MAX_UNKNOWN_METHOD and is_token(method) else 400


# `method SP request-target SP HTTP-version` (RFC 9112 §3): judged before an unknown method is called
# unimplemented, so "THIS IS NOT HTTP" is a malformed line (400), not an unknown method (501).
_REQUEST_LINE = re.compile(rb"[" + re.escape(_TCHARS) + rb"]+ [\x21-\x7e\x80-\xff]+ HTTP/[0-9]\.[0-9]")


def unknown_method_status(request_line: bytes) -> int:
    """For a request line whose method is not served: 501 when the line is well-formed, else 400."""
    method = request_line.partition(b" ")[0]
    if _REQUEST_LINE.fullmatch(request_line) is None:
        return 400
    return method_status(method) or 400


def check_method(method: bytes) -> None:
    status = method_status(method)
    if status:
        raise ParseError(status, "Method not implemented" if status == 501 else "Invalid method")


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """(raw_path, query_string) of a request target in origin, absolute or asterisk form."""
    if target[:1] != b"/" and b"://" in target[:16]:
        # absolute-form (RFC 9112 §3.2.2): the path starts at the first '/' after the authority.
        rest = target.partition(b"://")[2]
        slash = rest.find(b"/")
        mark = rest.find(b"?")
        if slash == -1 or (mark != -1 and mark < slash):
            target = b"/" + (rest[mark:] if mark != -1 else b"")
        else:
            target = rest[slash:]
    path, _, query = target.partition(b"?")
    return path, query
