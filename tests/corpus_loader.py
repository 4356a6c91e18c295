"""The raw-request corpus (``tests/corpus/``, format in ``tests/corpus/README.md``) as `Case`
objects: the files, plus cases too large for a file (limit boundaries) built by `generated_cases`.

Socket-free: replayed end to end by test_corpus.py and through the parser adapters directly by
test_http_parsers.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CORPUS_DIR = Path(__file__).parent / "corpus"
KINDS = ("valid", "invalid")
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELD_SIZE = 8190
LIMIT_REQUEST_FIELDS = 100
DEFAULT_HEAD_LIMIT = 32768  # palfrey.http.parsers.DEFAULT_HEAD_LIMIT, the --limit-request-head default

CASE_KEYS = {"description", "chunk", "close", "app-called"}
RESPONSE_KEYS = {"expect", "method", "path", "raw-path", "query", "version", "body", "header"}
GROUP_SEPARATOR = "---"
_KEY_LINE = re.compile(r"#\s*([a-z][a-z0-9-]*):(.*)\Z")
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}


# ----------------------------------------------------------------------------------------------------
# Corpus format
# ----------------------------------------------------------------------------------------------------


class CorpusError(ValueError):
    """A corpus file does not follow the format of tests/corpus/README.md."""


def unescape(text: str) -> bytes:
    r"""Turn corpus text into bytes: ``\r \n \t \\ \xNN`` are escapes, other characters are UTF-8."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\":
            out += char.encode("utf-8")
            i += 1
            continue
        code = text[i + 1 : i + 2]
        if code in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[code]
            i += 2
        elif code == "x" and len(text) >= i + 4 and set(text[i + 2 : i + 4]) <= _HEX:
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            raise CorpusError(f"invalid escape {text[i : i + 4]!r} (use \\r \\n \\t \\\\ or \\xNN)")
    return bytes(out)


@dataclass
class Expected:
    """What one response (and the request the app saw) must look like."""

    status: int = 200
    method: str | None = None
    path: str | None = None
    raw_path: bytes | None = None
    query: bytes | None = None
    version: str | None = None
    body: bytes | None = None
    headers: list[tuple[bytes, bytes]] | None = None


@dataclass
class Case:
    name: str
    kind: str  # "valid" or "invalid"
    data: bytes
    responses: list[Expected]
    description: str = ""
    chunk: int | None = None  # send in writes of this many bytes (None: one write)
    close: bool = False  # valid cases: the server must close the connection after the last response
    # invalid cases: True when the error is in the body, which the server may already be streaming to
    # the app (so the app may have been called once for the rejected request).
    app_may_run: bool = False

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"


def _set_expectation(expected: Expected, key: str, raw: str) -> None:
    value = raw.strip()
    if key == "expect":
        if not value.isdigit() or len(value) != 3:
            raise CorpusError(f"expect: needs a 3-digit status, got {value!r}")
        expected.status = int(value)
    elif key == "method":
        expected.method = unescape(value).decode("latin-1")
    elif key == "path":
        expected.path = unescape(value).decode("utf-8")
    elif key == "raw-path":
        expected.raw_path = unescape(value)
    elif key == "query":
        expected.query = unescape(value)
    elif key == "version":
        expected.version = value
    elif key == "body":
        expected.body = unescape(value)
    elif key == "header":
        name, colon, header_value = value.partition(":")
        if not colon or not name.strip():
            raise CorpusError(f"header: needs 'name: value', got {value!r}")
        if expected.headers is None:
            expected.headers = []
        expected.headers.append((unescape(name.strip()), unescape(header_value.strip())))


def parse_case(name: str, kind: str, text: str) -> Case:
    """Parse one corpus file (see tests/corpus/README.md)."""
    if kind not in KINDS:
        raise CorpusError(f"unknown kind {kind!r}")
    lines = text.split("\n")
    groups = [Expected()]
    case_options: dict[str, str] = {}
    index = 0
    while index < len(lines) and lines[index].startswith("#"):
        line = lines[index].rstrip("\r")
        index += 1
        if line[1:].strip() == GROUP_SEPARATOR:
            groups.append(Expected())
            continue
        match = _KEY_LINE.match(line)
        if match is None:
            continue  # free-form comment
        key, raw = match.groups()
        if key in CASE_KEYS:
            if key in case_options:
                raise CorpusError(f"{key}: given twice")
            case_options[key] = raw.strip()
        elif key in RESPONSE_KEYS:
            _set_expectation(groups[-1], key, raw)
        else:
            raise CorpusError(f"unknown key {key!r}")

    data = bytearray()
    for number, line in enumerate(lines[index:], start=index + 1):
        line = line.removesuffix("\r")
        if line != line.rstrip(" "):
            raise CorpusError(f"line {number}: trailing space (write it as \\x20)")
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in line):
            raise CorpusError(f"line {number}: literal control character (use an escape)")
        data += unescape(line)
    if not data:
        raise CorpusError("no request data")

    chunk: int | None = None
    if "chunk" in case_options:
        if not case_options["chunk"].isdigit() or int(case_options["chunk"]) < 1:
            raise CorpusError(f"chunk: needs a positive integer, got {case_options['chunk']!r}")
        chunk = int(case_options["chunk"])
    close_value = case_options.get("close", "no")
    if close_value not in ("yes", "no"):
        raise CorpusError(f"close: needs yes or no, got {close_value!r}")

    app_called = case_options.get("app-called", "no")
    if app_called not in ("no", "maybe"):
        raise CorpusError(f"app-called: needs no or maybe, got {app_called!r}")

    case = Case(
        name=name,
        kind=kind,
        data=bytes(data),
        responses=groups,
        description=case_options.get("description", ""),
        chunk=chunk,
        close=close_value == "yes",
        app_may_run=app_called == "maybe",
    )
    _check_case(case)
    return case


def _check_case(case: Case) -> None:
    statuses = [expected.status for expected in case.responses]
    if case.kind == "valid":
        if any(status != 200 for status in statuses):
            raise CorpusError("valid cases expect 200 for every response")
        if case.app_may_run:
            raise CorpusError("app-called: is for invalid cases")
    else:
        if statuses[-1] < 400 or any(status != 200 for status in statuses[:-1]):
            raise CorpusError("invalid cases expect 200s for pipelined requests, then one error status")
        if case.close:
            raise CorpusError("close: is implied for invalid cases")
        if case.app_may_run and len(case.responses) != 1:
            raise CorpusError("app-called: maybe is only for cases with a single (rejected) request")
        if any(expected.method == "HEAD" for expected in case.responses):
            raise CorpusError("HEAD is not supported in invalid cases")


def load_corpus(root: Path = CORPUS_DIR) -> list[Case]:
    cases = []
    for kind in KINDS:
        for path in sorted((root / kind).glob("*.http")):
            try:
                cases.append(parse_case(path.stem, kind, path.read_text(encoding="utf-8")))
            except CorpusError as exc:
                raise CorpusError(f"{path}: {exc}") from exc
    return cases


# ----------------------------------------------------------------------------------------------------
# Generated cases: limit boundaries (too large to keep as files)
# ----------------------------------------------------------------------------------------------------


def _request_line_of(length: int) -> bytes:
    """A ``GET /aaa... HTTP/1.1`` request line of exactly `length` bytes (without CRLF)."""
    fixed = len(b"GET / HTTP/1.1")
    return b"GET /" + b"a" * (length - fixed) + b" HTTP/1.1"


def _field_line_of(length: int) -> bytes:
    """An ``X-Big: bbb...`` field line of exactly `length` bytes (without CRLF)."""
    return b"X-Big: " + b"b" * (length - len(b"X-Big: "))


def generated_cases() -> list[Case]:
    host = b"Host: example.com\r\n"
    host_header = (b"host", b"example.com")
    cases: list[Case] = []

    def add(name: str, kind: str, data: bytes, expected: Expected, chunk: int | None, what: str) -> None:
        cases.append(Case(f"gen_{name}", kind, data, [expected], what, chunk))

    line = _request_line_of(LIMIT_REQUEST_LINE)
    add(
        "request_line_at_limit",
        "valid",
        line + b"\r\n" + host + b"\r\n",
        Expected(path=line[4:-9].decode("ascii"), headers=[host_header]),
        None,
        f"A request line of exactly --limit-request-line ({LIMIT_REQUEST_LINE}) bytes is accepted.",
    )
    over = _request_line_of(LIMIT_REQUEST_LINE + 1) + b"\r\n" + host + b"\r\n"
    add("request_line_over_limit", "invalid", over, Expected(414), None, "Request line one byte too long.")
    add(
        "request_line_over_limit_byte_by_byte",
        "invalid",
        over,
        Expected(414),
        1,
        "Request line one byte too long, one byte per write.",
    )
    add(
        "request_line_endless",
        "invalid",
        b"GET /" + b"a" * (40 * LIMIT_REQUEST_LINE),
        Expected(414),
        1024,
        "A request line that never ends is refused once it passes the limit, not buffered.",
    )

    field_line = _field_line_of(LIMIT_REQUEST_FIELD_SIZE)
    add(
        "field_at_limit",
        "valid",
        b"GET / HTTP/1.1\r\n" + host + field_line + b"\r\n\r\n",
        Expected(headers=[host_header, (b"x-big", field_line[len(b"X-Big: ") :])]),
        None,
        f"A field line of exactly --limit-request-field-size ({LIMIT_REQUEST_FIELD_SIZE}) bytes is accepted.",
    )
    # The value alone exceeds the limit, so this is over the limit whether the server counts the whole
    # field line or only the value.
    big_field = b"X-Big: " + b"b" * (LIMIT_REQUEST_FIELD_SIZE + 1)
    over_field = b"GET / HTTP/1.1\r\n" + host + big_field + b"\r\n\r\n"
    add("field_over_limit", "invalid", over_field, Expected(431), None, "A field line too long.")
    add(
        "field_over_limit_sliced",
        "invalid",
        over_field,
        Expected(431),
        7,
        "A field line too long, in 7-byte writes.",
    )
    add(
        "field_endless",
        "invalid",
        b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"b" * (40 * LIMIT_REQUEST_FIELD_SIZE),
        Expected(431),
        1024,
        "A field value that never ends is refused once it passes the limit, not buffered.",
    )

    def fields(count: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """`count` field lines in total, Host first."""
        lines = [host]
        headers = [host_header]
        for number in range(1, count):
            lines.append(b"X-F%d: %d\r\n" % (number, number))
            headers.append((b"x-f%d" % number, b"%d" % number))
        return b"".join(lines), headers

    head, headers = fields(LIMIT_REQUEST_FIELDS)
    add(
        "fields_at_limit",
        "valid",
        b"GET / HTTP/1.1\r\n" + head + b"\r\n",
        Expected(headers=headers),
        None,
        f"Exactly --limit-request-fields ({LIMIT_REQUEST_FIELDS}) fields are accepted.",
    )
    head, _ = fields(LIMIT_REQUEST_FIELDS + 1)
    too_many = b"GET / HTTP/1.1\r\n" + head + b"\r\n"
    add("fields_over_limit", "invalid", too_many, Expected(431), None, "One field too many.")
    add(
        "fields_over_limit_byte_by_byte",
        "invalid",
        too_many,
        Expected(431),
        1,
        "One field too many, one byte per write.",
    )
    head, _ = fields(20 * LIMIT_REQUEST_FIELDS)
    add(
        "fields_endless",
        "invalid",
        b"GET / HTTP/1.1\r\n" + head,
        Expected(431),
        512,
        "A head with thousands of fields is refused once it passes the limit.",
    )

    # The whole head (request line and field lines with their CRLFs) is bounded by DEFAULT_HEAD_LIMIT.
    def head_of(size: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """A head of exactly `size` (> 16 KiB) bytes: field lines of 8000 bytes or less after Host."""
        request_line = b"GET / HTTP/1.1\r\n"
        lines, headers, left = [request_line + host], [host_header], size - len(request_line) - len(host)
        sizes = []
        while left > 16000:
            sizes.append(8000)
            left -= 8000
        sizes += [left // 2, left - left // 2]
        for number, line_size in enumerate(sizes, 1):
            name = b"X-H%d" % number
            value = b"v" * (line_size - len(name) - 4)
            lines.append(b"%s: %s\r\n" % (name, value))
            headers.append((name.lower(), value))
        data = b"".join(lines)
        assert len(data) == size
        return data, headers

    at_limit, at_limit_headers = head_of(DEFAULT_HEAD_LIMIT)
    for chunk, how in ((None, "in one write"), (7, "in 7-byte writes"), (4096, "in 4 KiB writes")):
        suffix = f"_sliced_{chunk}" if chunk else ""
        add(
            f"head_at_limit{suffix}",
            "valid",
            at_limit + b"\r\n",
            Expected(headers=at_limit_headers),
            chunk,
            f"A head of exactly {DEFAULT_HEAD_LIMIT} bytes (the default total limit) is accepted, {how}.",
        )
        add(
            f"head_over_limit{suffix}",
            "invalid",
            head_of(DEFAULT_HEAD_LIMIT + 1)[0] + b"\r\n",
            Expected(431),
            chunk,
            f"A head one byte over the total limit gets 431, {how}.",
        )
    add(
        "head_endless_fields",
        "invalid",
        b"GET / HTTP/1.1\r\n" + host + b"".join(b"X-%d: %s\r\n" % (n, b"w" * 8000) for n in range(13)),
        Expected(431),
        3000,
        "~100 KB of headers in 13 fields of 8 KB (each under the field limit) is refused, not served.",
    )

    body = bytes(range(256)) * 1024  # 256 KiB, every byte value
    add(
        "large_body_content_length",
        "valid",
        b"POST /big HTTP/1.1\r\n" + host + b"Content-Length: %d\r\n\r\n" % len(body) + body,
        Expected(method="POST", body=body),
        4096,
        "A 256 KiB Content-Length body in 4 KiB writes.",
    )
    chunks = b"".join(b"fa0;n=%d\r\n" % i + body[i : i + 4000] + b"\r\n" for i in range(0, 64000, 4000))
    add(
        "large_body_chunked",
        "valid",
        b"POST /big HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n",
        Expected(method="POST", body=body[:64000]),
        1000,
        "A 64000-byte chunked body (16 chunks with extensions) in 1000-byte writes.",
    )
    return cases


def all_cases() -> list[Case]:
    return load_corpus() + generated_cases()


CASES = all_cases()
