"""Tests for palfrey.logging: formatters, access log atoms and configure_logging."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from palfrey.logging import (
    DEFAULT_ACCESS_MESSAGE,
    LOG_LEVELS,
    LOGGING_CONFIG,
    TRACE_LOG_LEVEL,
    AccessAtoms,
    AccessFormatter,
    AccessLog,
    DefaultFormatter,
    LogConfigError,
    configure_logging,
)

ESC = "\x1b["


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging mutates process-wide loggers; put them back so other modules are unaffected."""
    names = ["", "palfrey", "palfrey.error", "palfrey.access", "palfrey.test"]
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.level, logger.propagate, logger.disabled))
    yield
    for logger, handlers, level, propagate, disabled in saved:
        logger.handlers = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled


class ListHandler(logging.Handler):
    """Keeps records so tests can inspect both the record and the rendered line."""

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


def make_logger(formatter: logging.Formatter | None = None) -> tuple[logging.Logger, ListHandler]:
    logger = logging.getLogger("palfrey.test")
    handler = ListHandler(formatter)
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.disabled = False
    return logger, handler


def make_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": "/path",
        "raw_path": b"/path",
        "query_string": b"q=1",
        "client": ("127.0.0.1", 51234),
        "headers": [
            (b"host", b"example.com"),
            (b"referer", b"https://ref.example/"),
            (b"user-agent", b"curl/8.0"),
            (b"x-request-id", b"abc-123"),
            (b"authorization", b"Basic " + base64.b64encode(b"alice:secret")),
        ],
    }
    scope.update(overrides)
    return scope


RESPONSE_HEADERS = [(b"Content-Type", b"text/plain"), (b"content-length", b"12")]


def render(fmt: str | None, scope: dict[str, Any] | None = None, status: int = 200, **kwargs: Any) -> str:
    logger, handler = make_logger()
    access = AccessLog(fmt, logger)
    access.log(
        make_scope() if scope is None else scope,
        status,
        kwargs.get("response_headers", RESPONSE_HEADERS),
        kwargs.get("response_bytes", 12),
        kwargs.get("duration_ns", 2_341_567_891),
    )
    assert len(handler.records) == 1
    return handler.records[0].getMessage()


# --- levels ----------------------------------------------------------------------------------------


def test_trace_level_registered() -> None:
    assert TRACE_LOG_LEVEL == 5
    assert logging.getLevelName(TRACE_LOG_LEVEL) == "TRACE"
    assert LOG_LEVELS == {
        "critical": 50,
        "error": 40,
        "warning": 30,
        "info": 20,
        "debug": 10,
        "trace": 5,
    }


# --- default access format -------------------------------------------------------------------------


def test_default_format_matches_uvicorn() -> None:
    logger, handler = make_logger()
    AccessLog(None, logger).log(make_scope(), 200, RESPONSE_HEADERS, 12, 1_000)
    record = handler.records[0]
    assert record.getMessage() == '127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200'
    # Same msg/args shape as uvicorn, so filters reading record.args keep working.
    assert record.msg == DEFAULT_ACCESS_MESSAGE
    assert record.args == ("127.0.0.1:51234", "GET", "/path?q=1", "1.1", 200)
    assert record.levelno == logging.INFO
    assert record.status_code == 200  # type: ignore[attr-defined]
    assert record.duration_ns == 1_000  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("client", "expected"),
    [(None, "-"), (("10.0.0.1", None), "10.0.0.1"), (("/tmp/palfrey.sock",), "/tmp/palfrey.sock")],
)
def test_default_format_client_variants(client: Any, expected: str) -> None:
    line = render(None, make_scope(client=client, query_string=b""))
    assert line == f'{expected} - "GET /path HTTP/1.1" 200'


def test_default_format_without_raw_path_quotes_path() -> None:
    scope = make_scope(raw_path=None, path="/a b\n", query_string=b"")
    assert render(None, scope) == '127.0.0.1:51234 - "GET /a%20b%0A HTTP/1.1" 200'


# --- atoms -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%(h)s", "127.0.0.1"),
        ("%(l)s", "-"),
        ("%(u)s", "alice"),
        ("%(r)s", "GET /path?q=1 HTTP/1.1"),
        ("%(m)s", "GET"),
        ("%(U)s", "/path"),
        ("%(q)s", "q=1"),
        ("%(H)s", "HTTP/1.1"),
        ("%(s)s", "404"),
        ("%(B)s", "12"),
        ("%(b)s", "12"),
        ("%(f)s", "https://ref.example/"),
        ("%(a)s", "curl/8.0"),
        ("%(T)s", "2"),
        ("%(M)s", "2341"),
        ("%(D)s", "2341567"),
        ("%(L)s", "2.341567"),
        ("%(p)s", "<PID>"),
        ("%({x-request-id}i)s", "abc-123"),
        ("%({content-type}o)s", "text/plain"),
        ("%({PALFREY_TEST_ENV}e)s", "from-env"),
        ("%(client_addr)s", "127.0.0.1:51234"),
        ("%(request_line)s", "GET /path?q=1 HTTP/1.1"),
        ("%(status_code)s", "404 Not Found"),
        ("%(s)d %(B)d %(T)d %(M)d %(D)d", "404 12 2 2341 2341567"),
        (
            '%(h)s %(l)s %(u)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
            '127.0.0.1 - alice "GET /path?q=1 HTTP/1.1" 404 12 "https://ref.example/" "curl/8.0"',
        ),
    ],
)
def test_atoms(fmt: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALFREY_TEST_ENV", "from-env")
    # The pid is filled in at run time: a test id must be the same in every xdist process.
    assert render(fmt, status=404) == expected.replace("<PID>", f"<{os.getpid()}>")


def test_time_atom() -> None:
    line = render("%(t)s")
    assert re.fullmatch(r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]", line), line


def test_missing_values_render_as_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PALFREY_TEST_MISSING", raising=False)
    scope = make_scope(headers=[], client=None, query_string=b"")
    fmt = (
        "%(h)s %(u)s %(f)s %(a)s %({x-missing}i)s %({x-missing}o)s %({PALFREY_TEST_MISSING}e)s %(b)s [%(q)s]"
    )
    assert render(fmt, scope, response_headers=[], response_bytes=0) == "- - - - - - - - []"


def test_header_atoms_are_case_insensitive() -> None:
    scope = make_scope(headers=[(b"x-request-id", b"r1"), (b"x-multi", b"a"), (b"x-multi", b"b")])
    response = [(b"X-Trace-ID", b"t1"), (b"SERVER", b"palfrey")]
    fmt = "%({X-Request-ID}i)s %({x-REQUEST-id}i)s %({x-multi}i)s %({x-trace-id}o)s %({Server}o)s"
    assert render(fmt, scope, response_headers=response) == "r1 r1 a,b t1 palfrey"


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (b"Bearer token", "-"),
        (b"Basic !!!notbase64", "-"),
        (b"basic " + base64.b64encode(b"bob:pw:with:colons"), "bob"),
        (b"Basic " + base64.b64encode(b":nouser"), "-"),
        (b"Basic " + base64.b64encode(b"evil\nuser:pw"), "evil\\nuser"),
    ],
)
def test_user_atom(authorization: bytes, expected: str) -> None:
    assert render("%(u)s", make_scope(headers=[(b"authorization", authorization)])) == expected


def test_atoms_are_lazy() -> None:
    """Only what the format names is computed: here the status, never the scope."""

    class TrackingScope(dict):  # type: ignore[type-arg]
        accessed: set[str]

        def __getitem__(self, key: str) -> Any:
            self.accessed.add(key)
            return super().__getitem__(key)

        def get(self, key: str, default: Any = None) -> Any:
            self.accessed.add(key)
            return super().get(key, default)

    scope = TrackingScope(make_scope())
    scope.accessed = set()
    assert render("%(s)s %(M)s", scope) == "200 2341"
    assert scope.accessed == set()
    assert render("%(a)s", scope) == "curl/8.0"
    assert scope.accessed == {"headers"}


def test_custom_format_record_args_are_atoms() -> None:
    logger, handler = make_logger()
    AccessLog("%(h)s %(s)s", logger).log(make_scope(), 201, [], 0, 0)
    record = handler.records[0]
    assert isinstance(record.args, AccessAtoms)
    assert record.args["m"] == "GET"
    assert set(record.args) == {"h", "s"}
    assert record.status_code == 201  # type: ignore[attr-defined]


def test_atoms_mapping_rejects_unknown_keys() -> None:
    atoms = AccessAtoms({}, make_scope(), 200, [], 0, 0)
    assert atoms.get(2) is None
    assert atoms.get("nope") is None
    assert atoms["{x-request-id}i"] == "abc-123"
    with pytest.raises(KeyError):
        atoms["nope"]


def test_format_without_atoms_and_literal_percent() -> None:
    assert render("static 100%%") == "static 100%"
    assert render("%(s)s 100%%") == "200 100%"


@pytest.mark.parametrize(
    "fmt",
    ["%(nope)s", "%s", "%(h)s %s", "%(h)", "%(h)y", "%(b)d", "%({x}z)s", "%(h)*d", "%d%%"],
)
def test_invalid_format_raises_value_error(fmt: str) -> None:
    with pytest.raises(ValueError, match="Invalid access log format"):
        AccessLog(fmt, make_logger()[0])


def test_unknown_atom_message_names_it() -> None:
    with pytest.raises(ValueError, match="unknown atom 'zz'"):
        AccessLog("%(zz)s")


# --- enabled ---------------------------------------------------------------------------------------


def test_enabled_follows_logger_state() -> None:
    logger, handler = make_logger()
    assert AccessLog(None, logger).enabled
    logger.setLevel(logging.WARNING)
    assert not AccessLog(None, logger).enabled
    logger.setLevel(logging.INFO)
    logger.handlers = [logging.NullHandler()]
    assert not AccessLog(None, logger).enabled
    logger.handlers = []
    assert not AccessLog(None, logger).enabled
    logger.handlers = [handler]
    logger.disabled = True
    access = AccessLog(None, logger)
    assert not access.enabled
    access.log(make_scope(), 200, [], 0, 0)
    assert handler.records == []


def test_enabled_when_a_parent_has_the_handler() -> None:
    logger, handler = make_logger()
    logger.handlers = []
    logger.propagate = True
    parent = logging.getLogger("palfrey")
    parent.handlers = [handler]
    parent.setLevel(logging.INFO)
    access = AccessLog(None, logger)
    assert access.enabled
    access.log(make_scope(), 200, [], 0, 0)
    assert len(handler.records) == 1


# --- formatters ------------------------------------------------------------------------------------


def make_record(level: int, msg: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("palfrey.error", level, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_default_formatter_without_colors() -> None:
    formatter = DefaultFormatter(use_colors=False)
    assert formatter.format(make_record(logging.INFO, "hello %s", "x")) == "INFO:     hello x"
    assert formatter.format(make_record(logging.CRITICAL, "boom")) == "CRITICAL: boom"
    assert formatter.format(make_record(TRACE_LOG_LEVEL, "t")) == "TRACE:    t"
    colored = make_record(logging.INFO, "plain %s", "x", color_message="fancy %s")
    assert formatter.format(colored) == "INFO:     plain x"


def test_default_formatter_with_colors() -> None:
    formatter = DefaultFormatter("%(levelprefix)s %(message)s", use_colors=True)
    record = make_record(logging.WARNING, "careful", color_message="\x1b[1mcareful\x1b[0m")
    line = formatter.format(record)
    assert line == "\x1b[33mWARNING\x1b[0m:  \x1b[1mcareful\x1b[0m"
    # The record itself is untouched, so other handlers print it plain.
    assert not hasattr(record, "levelprefix")
    assert record.getMessage() == "careful"


def test_auto_colors_follow_tty_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeTTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys, "stderr", FakeTTY())
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert DefaultFormatter().use_colors
    assert not AccessFormatter().use_colors
    monkeypatch.setenv("NO_COLOR", "1")
    assert not DefaultFormatter().use_colors


def access_record(fmt: str | None, status: int = 200) -> logging.LogRecord:
    logger, handler = make_logger()
    AccessLog(fmt, logger).log(make_scope(), status, [], 5, 0)
    return handler.records[0]


def test_access_formatter_default_record_without_colors() -> None:
    formatter = AccessFormatter(use_colors=False)
    line = formatter.format(access_record(None))
    assert line == 'INFO:     127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200 OK'


@pytest.mark.parametrize(
    ("status", "color"), [(101, "97"), (200, "32"), (304, "33"), (404, "31"), (503, "91")]
)
def test_access_formatter_colors_status_by_class(status: int, color: str) -> None:
    formatter = AccessFormatter("%(message)s", use_colors=True)
    line = formatter.format(access_record(None, status))
    phrase = HTTPStatus(status).phrase
    assert line == f'127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" \x1b[{color}m{status} {phrase}\x1b[0m'


def test_access_formatter_colors_custom_format() -> None:
    record = access_record("%(s)s|%(s)d|%(status_code)s", 404)
    assert AccessFormatter("%(message)s", use_colors=True).format(record) == (
        "\x1b[31m404\x1b[0m|404|\x1b[31m404 Not Found\x1b[0m"
    )
    assert AccessFormatter("%(message)s", use_colors=False).format(record) == "404|404|404 Not Found"
    assert record.getMessage() == "404|404|404 Not Found"


@pytest.mark.parametrize("fmt", [None, "%(h)s"])
def test_access_formatter_exposes_uvicorn_fields(fmt: str | None) -> None:
    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    assert formatter.format(access_record(fmt)) == '127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200 OK'


def test_access_formatter_tolerates_foreign_records() -> None:
    formatter = AccessFormatter(
        "%(levelprefix)s %(client_addr)s %(status_code)s %(message)s", use_colors=False
    )
    assert formatter.format(make_record(logging.INFO, "other")) == "INFO:     - - other"


# --- configure_logging -----------------------------------------------------------------------------


def request(fmt: str | None = None) -> None:
    AccessLog(fmt).log(make_scope(), 200, [], 0, 0)


def test_configure_default(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_config=None, log_level=None, access_log=True, use_colors=False)
    logging.getLogger("palfrey.error").info("Started")
    logging.getLogger("palfrey.error").debug("hidden")
    request()
    out, err = capsys.readouterr()
    assert out == 'INFO:     127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200 OK\n'
    assert err == "INFO:     Started\n"
    assert not logging.getLogger("palfrey.access").propagate


def test_configure_forced_colors(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_config=None, log_level=None, access_log=True, use_colors=True)
    logging.getLogger("palfrey.error").info("Started")
    request()
    out, err = capsys.readouterr()
    assert ESC in out and ESC in err


@pytest.mark.parametrize("level", ["trace", "TRACE", 5, "5"])
def test_configure_trace_level(level: str | int, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_config=None, log_level=level, access_log=True, use_colors=False)
    for name in ("palfrey", "palfrey.error", "palfrey.access"):
        assert logging.getLogger(name).level == TRACE_LOG_LEVEL
    logging.getLogger("palfrey.error").log(TRACE_LOG_LEVEL, "deep")
    assert capsys.readouterr().err == "TRACE:    deep\n"


def test_configure_warning_level_disables_access() -> None:
    configure_logging(log_config=None, log_level="WARNING", access_log=True, use_colors=False)
    assert not AccessLog(None).enabled


def test_invalid_level() -> None:
    with pytest.raises(LogConfigError, match="Invalid log level 'loud'"):
        configure_logging(log_config=None, log_level="loud", access_log=True, use_colors=False)


def test_access_log_false(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_config=None, log_level="debug", access_log=False, use_colors=False)
    access = AccessLog(None)
    assert not access.enabled
    access.log(make_scope(), 200, [], 0, 0)
    assert capsys.readouterr().out == ""
    # A later configuration (reload) turns it back on.
    configure_logging(log_config=None, log_level=None, access_log=True, use_colors=False)
    assert AccessLog(None).enabled


def user_dict_config(use_colors: bool = False) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {
            "plain": {"format": "%(name)s|%(levelname)s|%(message)s"},
            "access": {
                "()": "palfrey.logging.AccessFormatter",
                "fmt": "%(levelprefix)s %(message)s",
                "use_colors": use_colors,
            },
        },
        "handlers": {
            "out": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"},
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "palfrey.error": {"handlers": ["out"], "level": "INFO", "propagate": False},
            "palfrey.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def test_configure_with_dict(capsys: pytest.CaptureFixture[str]) -> None:
    existing = logging.getLogger("palfrey.test.existing")
    config = user_dict_config(use_colors=False)
    configure_logging(log_config=config, log_level=None, access_log=True, use_colors=True)
    logging.getLogger("palfrey.error").info("hi")
    request("%(s)s")
    out = capsys.readouterr().out
    assert out.startswith("palfrey.error|INFO|hi\n")
    assert ESC in out  # --use-colors overrides palfrey formatters in the user's config...
    assert config["formatters"]["access"]["use_colors"] is False  # ...without mutating it.
    assert not existing.disabled  # disable_existing_loggers defaults to False, as with fileConfig.


def test_configure_dict_with_live_objects_and_default_untouched(capsys: pytest.CaptureFixture[str]) -> None:
    before = json.dumps(LOGGING_CONFIG, sort_keys=True)
    configure_logging(log_config=None, log_level=None, access_log=True, use_colors=True)
    assert json.dumps(LOGGING_CONFIG, sort_keys=True) == before
    stream = io.StringIO()  # A live object: the handler must get this very stream, not a copy.
    config = user_dict_config()
    config["handlers"]["out"]["stream"] = stream
    configure_logging(log_config=config, log_level=None, access_log=True, use_colors=False)
    logging.getLogger("palfrey.error").info("live")
    assert stream.getvalue() == "palfrey.error|INFO|live\n"


def test_configure_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.json"
    path.write_text(json.dumps(user_dict_config()))
    configure_logging(log_config=str(path), log_level=None, access_log=True, use_colors=None)
    logging.getLogger("palfrey.error").warning("from json")
    request("%(m)s %(U)s")
    assert capsys.readouterr().out == "palfrey.error|WARNING|from json\nINFO:     GET /path\n"


def test_configure_with_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "log.yaml"
    path.write_text(
        "version: 1\n"
        "formatters:\n"
        "  plain: {format: 'yaml|%(message)s'}\n"
        "handlers:\n"
        "  out: {class: logging.StreamHandler, formatter: plain, stream: 'ext://sys.stdout'}\n"
        "loggers:\n"
        "  palfrey: {handlers: [out], level: INFO, propagate: false}\n"
    )
    configure_logging(log_config=path, log_level="info", access_log=True, use_colors=False)
    logging.getLogger("palfrey.error").info("hello")
    request()
    assert capsys.readouterr().out == 'yaml|hello\nyaml|127.0.0.1:51234 - "GET /path?q=1 HTTP/1.1" 200\n'


def test_yaml_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "log.yml"
    path.write_text("version: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(RuntimeError, match=re.escape("pip install pyyaml")):
        configure_logging(log_config=str(path), log_level=None, access_log=True, use_colors=None)


def test_configure_with_ini(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.ini"
    path.write_text(
        "[loggers]\nkeys=root,palfrey\n\n"
        "[handlers]\nkeys=out\n\n"
        "[formatters]\nkeys=palfrey\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_palfrey]\nlevel=INFO\nhandlers=out\nqualname=palfrey\npropagate=0\n\n"
        "[handler_out]\nclass=StreamHandler\nformatter=palfrey\nargs=(sys.stdout,)\n\n"
        "[formatter_palfrey]\nclass=palfrey.logging.DefaultFormatter\n"
        "format=ini %(levelprefix)s %(message)s\n"
    )
    configure_logging(log_config=str(path), log_level=None, access_log=True, use_colors=False)
    logging.getLogger("palfrey.error").error("bad")
    assert capsys.readouterr().out == "ini ERROR:    bad\n"


@pytest.mark.parametrize("name", ["missing.json", "missing.yaml", "missing.ini", "missing.conf"])
def test_missing_config_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(LogConfigError, match="does not exist"):
        configure_logging(log_config=str(tmp_path / name), log_level=None, access_log=True, use_colors=None)


def test_broken_config_files(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(LogConfigError, match="Unable to read log config"):
        configure_logging(log_config=str(bad_json), log_level=None, access_log=True, use_colors=None)
    list_json = tmp_path / "list.json"
    list_json.write_text("[]")
    with pytest.raises(LogConfigError, match="expected a mapping"):
        configure_logging(log_config=str(list_json), log_level=None, access_log=True, use_colors=None)
    empty_ini = tmp_path / "empty.ini"
    empty_ini.write_text("")
    with pytest.raises(LogConfigError, match="Unable to configure logging"):
        configure_logging(log_config=str(empty_ini), log_level=None, access_log=True, use_colors=None)


def test_broken_dict_config_is_one_line() -> None:
    config = {"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}
    with pytest.raises(LogConfigError) as info:
        configure_logging(log_config=config, log_level=None, access_log=True, use_colors=None)
    message = str(info.value)
    assert "\n" not in message
    assert "Unable to configure logging from the log_config dict" in message
    assert "no.such" in message
