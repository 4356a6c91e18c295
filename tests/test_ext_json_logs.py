"""`--log-format json` on real servers: every line the server writes (master, workers, access, an app
that raises, an app logging on its own logger) parses with json.loads; plus the formatter's fields."""

from __future__ import annotations

import json
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from palfrey.logging import JSON_LOGGING_CONFIG, AccessLog, JsonFormatter, LogConfigError, configure_logging
from tests.support import PARSERS, ServerProcess, run_gunicorn, run_server

APP = "tests.apps.ext_apps:app"
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def records(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line of the server's output as JSON; a line that is not JSON fails the test."""
    parsed = []
    for line in server.output().splitlines():
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    return parsed


def check_common(record: dict[str, Any]) -> None:
    assert STAMP.fullmatch(record["timestamp"]), record
    assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), record
    assert isinstance(record["logger"], str) and isinstance(record["message"], str), record
    assert isinstance(record["pid"], int), record


@pytest.mark.parametrize("http", PARSERS)
def test_every_line_is_json_under_a_master(http: str) -> None:
    with run_server(APP, "--log-format", "json", "--workers", "2", "--http", http) as server:
        with httpx.Client(timeout=5) as client:
            assert client.get(server.url + "/ok?a=1&b=2").text == "ok"
            assert client.get(server.url + "/boom").status_code == 500
            assert client.get(server.url + "/applog").text == "logged"
            assert client.post(server.url + "/ok", content=b"x" * 100).status_code == 200
        server.wait_for_line(r'"method": "POST"')
        server.signal(15)
        assert server.wait_exit() == 0
    parsed = records(server)
    for record in parsed:
        check_common(record)
    master_pid = server.proc.pid
    messages = [r["message"] for r in parsed]
    assert any(m.startswith("Started master process") for m in messages)
    assert {r["pid"] for r in parsed if r["message"].startswith("Started server process")} - {master_pid}
    assert any(m.startswith("Master process") and "finished" in m for m in messages)

    access = {r["path"]: r for r in parsed if r["logger"] == "palfrey.access" and r["method"] == "GET"}
    ok = access["/ok"]
    assert ok["level"] == "INFO" and ok["status"] == 200 and ok["query"] == "a=1&b=2"
    assert ok["http_version"] == "1.1" and ok["bytes"] == 2 and ok["method"] == "GET"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", ok["client"])
    assert isinstance(ok["duration"], float) and 0 <= ok["duration"] < 5
    assert ok["pid"] != master_pid
    assert access["/boom"]["status"] == 500
    post = next(r for r in parsed if r["logger"] == "palfrey.access" and r["method"] == "POST")
    assert post["path"] == "/ok" and post["status"] == 200

    (failure,) = [r for r in parsed if "exc_info" in r]
    assert failure["logger"] == "palfrey.error" and failure["level"] == "ERROR"
    assert failure["message"] == "Exception in ASGI application"
    assert failure["exc_info"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: boom\nsecond line of the message" in failure["exc_info"]

    (app_record,) = [r for r in parsed if r["logger"] == "tests.app"]
    assert app_record["message"] == "app says hi" and app_record["order"] == 7
    assert app_record["level"] == "WARNING"


def test_custom_access_format_keeps_the_request_fields() -> None:
    args = ("--log-format", "json", "--access-log-format", '%(h)s "%(r)s" %(s)s %({x-req}i)s')
    with run_server(APP, *args) as server:
        assert httpx.get(server.url + "/ok?q=1", headers={"x-req": "r-1"}, timeout=5).text == "ok"
        server.wait_for_line(r"palfrey\.access")
    (access,) = [r for r in records(server) if r["logger"] == "palfrey.access"]
    assert access["message"] == '127.0.0.1 "GET /ok?q=1 HTTP/1.1" 200 r-1'
    assert (access["method"], access["path"], access["query"], access["status"]) == ("GET", "/ok", "q=1", 200)


def test_log_config_decides_the_format(tmp_path: Path) -> None:
    config = tmp_path / "log.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "formatters": {"plain": {"format": "PLAIN %(message)s"}},
                "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain"}},
                "loggers": {"palfrey": {"handlers": ["out"], "level": "INFO"}},
            }
        )
    )
    with run_server(APP, "--log-format", "json", "--log-config", str(config)) as server:
        server.wait_for_line(r"PLAIN --log-format json has no effect with --log-config")


GUNICORN_CONFIG = """
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "palfrey.logging.JsonFormatter"}},
    "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["out"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["out"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["out"], "level": "INFO", "propagate": False},
    },
}
accesslog = "-"
"""


def test_json_lines_under_gunicorn_through_its_logconfig_dict(tmp_path: Path) -> None:
    """--log-format is palfrey's flag; under gunicorn the formatter is named in gunicorn's config."""
    config = tmp_path / "gunicorn_conf.py"
    config.write_text(GUNICORN_CONFIG)
    with run_gunicorn("-c", str(config), app=APP, workers=1) as server:
        with httpx.Client(timeout=5) as client:
            assert client.get(server.url + "/ok").text == "ok"
            assert client.get(server.url + "/boom").status_code == 500
        server.wait_for_line(r"GET /boom HTTP/1\.1\\\" 500")
    parsed = records(server)
    for record in parsed:
        check_common(record)
    (failure,) = [r for r in parsed if "exc_info" in r]
    assert failure["logger"] == "palfrey.error" and "RuntimeError: boom" in failure["exc_info"]
    assert {"gunicorn.error", "gunicorn.access", "palfrey.error"} <= {r["logger"] for r in parsed}


# --- the formatter and configure_logging, in process --------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    names = ("", "palfrey", "palfrey.error", "palfrey.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    yield
    logging.captureWarnings(False)  # JSON mode turned it on: give warnings.showwarning back
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers = handlers
        logger.setLevel(level)


def make_record(**kwargs: Any) -> logging.LogRecord:
    record = logging.LogRecord("palfrey.error", logging.ERROR, __file__, 1, "failed %s", ("x",), None)
    record.__dict__.update(kwargs)
    return record


def test_timestamp_is_rfc3339_utc_with_milliseconds() -> None:
    formatter = JsonFormatter()
    record = make_record(created=0.9996)
    assert json.loads(formatter.format(record))["timestamp"] == "1970-01-01T00:00:00.999Z"
    assert formatter.timestamp(86400 + 61.5) == "1970-01-02T00:01:01.500Z"


def test_a_traceback_stays_on_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = make_record(exc_info=sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "failed x" and data["exc_info"].endswith("ValueError: bad\nvalue")


def test_extra_fields_and_unserialisable_values() -> None:
    data = json.loads(JsonFormatter().format(make_record(user={"id": 1}, where=Path("/x"))))
    assert data["user"] == {"id": 1} and data["where"] == "/x"
    assert "color_message" not in data and "args" not in data


def test_access_record_fields_in_process(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_config=None, log_level=None, access_log=True, use_colors=True, log_format="json")
    scope = {
        "client": ("10.0.0.1", 5),
        "method": "PUT",
        "raw_path": b"/a%20b",
        "query_string": b"x=1",
        "http_version": "2",
    }
    AccessLog(None).log(scope, 201, [], 12, 1_500_000)
    data = json.loads(capsys.readouterr().out)
    assert data["client"] == "10.0.0.1:5" and data["path"] == "/a%20b" and data["query"] == "x=1"
    assert (data["method"], data["http_version"], data["status"], data["bytes"]) == ("PUT", "2", 201, 12)
    assert data["duration"] == 0.0015
    assert "\x1b[" not in data["message"], "--use-colors does not color JSON"


def test_root_logger_writes_json(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_config=None, log_level=None, access_log=True, use_colors=None, log_format="json")
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    assert json.loads(capsys.readouterr().err)["logger"] == "asyncio"
    assert JSON_LOGGING_CONFIG["root"]["level"] == "WARNING"


def test_python_warnings_become_json(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(log_config=None, log_level=None, access_log=True, use_colors=None, log_format="json")
    warnings.showwarning(DeprecationWarning("old API"), DeprecationWarning, "app.py", 3)
    record = json.loads(capsys.readouterr().err)
    assert record["logger"] == "py.warnings" and "DeprecationWarning: old API" in record["message"]


def test_unknown_log_format_is_one_clear_error(restore_logging: None) -> None:
    with pytest.raises(LogConfigError, match="Invalid log format 'xml'"):
        configure_logging(log_config=None, log_level=None, access_log=True, use_colors=None, log_format="xml")


def test_cli_rejects_an_unknown_format() -> None:
    from click.testing import CliRunner

    from palfrey.cli import main

    result = CliRunner().invoke(main, ["tests.apps.ext_apps:app", "--log-format", "xml"])
    assert result.exit_code == 2 and "'xml' is not one of 'text', 'json'" in result.output
