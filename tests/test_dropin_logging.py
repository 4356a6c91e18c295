"""Logging for a switching uvicorn user (issue 13): a `--log-config` written for uvicorn's logger and
formatter names works on palfrey (applied to `palfrey.*`, and said so), in JSON and .ini form."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support import run_server

APP = "tests.apps.server_apps:app"

# uvicorn's documented LOGGING_CONFIG shape, with marked formats so the test sees which one applied.
UVICORN_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "UVERR %(levelprefix)s %(message)s"},
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": 'UVACC %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

UVICORN_INI = """
[loggers]
keys=root,uvicorn,uvicorn_access

[handlers]
keys=plain

[formatters]
keys=marked

[logger_root]
level=WARNING
handlers=

[logger_uvicorn]
level=INFO
handlers=plain
propagate=0
qualname=uvicorn

[logger_uvicorn_access]
level=INFO
handlers=plain
propagate=0
qualname=uvicorn.access

[handler_plain]
class=StreamHandler
formatter=marked
args=(sys.stdout,)

[formatter_marked]
format=UVINI %(name)s %(message)s
"""


@pytest.mark.parametrize("kind", ["json", "ini"])
def test_uvicorn_log_config_applies_to_palfrey(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"log.{kind}"
    path.write_text(json.dumps(UVICORN_CONFIG) if kind == "json" else UVICORN_INI)
    with run_server(APP, "--log-config", str(path)) as server:
        assert httpx.get(server.url + "/marked", timeout=5).status_code == 200
        if kind == "json":
            server.wait_for_line(r'UVACC 127\.0\.0\.1:\d+ - "GET /marked HTTP/1\.1" 200 OK')
            server.wait_for_line(r"UVERR INFO: +Log config .* names uvicorn's loggers")
        else:
            server.wait_for_line(r'UVINI palfrey\.access 127\.0\.0\.1:\d+ - "GET /marked HTTP/1\.1" 200')
            server.wait_for_line(r"UVINI palfrey\.error Log config .* names uvicorn's loggers")


def test_config_naming_palfrey_loggers_is_left_alone(tmp_path: Path) -> None:
    config = json.loads(json.dumps(UVICORN_CONFIG).replace("uvicorn.logging", "palfrey.logging"))
    loggers = config["loggers"]
    loggers["palfrey"] = loggers.pop("uvicorn")
    loggers["palfrey.access"] = loggers.pop("uvicorn.access")  # "uvicorn.error" stays: someone else's
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(config))
    with run_server(APP, "--log-config", str(path)) as server:
        httpx.get(server.url + "/", timeout=5)
        server.wait_for_line(r'UVACC 127\.0\.0\.1:\d+ - "GET / HTTP/1\.1" 200 OK')
        assert "names uvicorn's loggers" not in server.output()


def test_env_file_says_which_file_it_loaded(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("APP_GREETING=hi\n")
    with run_server(APP, "--env-file", str(env_file)) as server:
        server.wait_for_line(rf"INFO: +Loaded environment variables from {env_file}")


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_protocol_errors_name_the_client_and_reach_the_access_log(http: str) -> None:
    import socket

    from tests.support import read_response

    with run_server(APP, "--http", http) as server:
        for request, status in (
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"THIS IS NOT HTTP\r\n\r\n", 400),
            (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        ):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(request)
                assert read_response(sock)[0] == status
                port = sock.getsockname()[1]
            server.wait_for_line(rf"WARNING: .* from 127\.0\.0\.1:{port}$")
            server.wait_for_line(rf'INFO: +127\.0\.0\.1:{port} - "- - HTTP/1\.1" {status} ')


@pytest.mark.parametrize("path", ["/flask-style", "/print-exc"])
def test_wsgi_errors_traceback_is_one_record(path: str) -> None:
    with run_server("tests.apps.dropin_wsgi:app", "--interface", "wsgi") as server:
        assert httpx.get(server.url + path, timeout=5).text == "logged"
        server.wait_for_line(r"ValueError: boom in the view")
        lines = server.output().splitlines()
    first = next(i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line)
    last = next(i for i, line in enumerate(lines) if line.startswith("ValueError: boom"))
    record = lines[first - (path == "/flask-style") : last + 1]
    assert len(record) >= 4, record
    assert record[0].startswith("ERROR:"), record
    assert not any(line.startswith(("ERROR:", "WARNING:", "INFO:")) for line in record[1:]), record


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_log_level_trace_traces_connections_and_asgi_messages(http: str) -> None:
    with run_server(APP, "--http", http, "--log-level", "trace") as server:
        httpx.post(server.url + "/traced", content=b"x" * 10, headers={"connection": "close"}, timeout=5)
        server.wait_for_line(r"TRACE: +127\.0\.0\.1:\d+ - HTTP connection made")
        server.wait_for_line(r"TRACE: +127\.0\.0\.1:\d+ - ASGI \[\d+\] Started scope=.*'path': '/traced'")
        server.wait_for_line(r"TRACE: +127\.0\.0\.1:\d+ - ASGI \[\d+\] Receive .*'body': '<10 body>'")
        server.wait_for_line(
            r"TRACE: +127\.0\.0\.1:\d+ - ASGI \[\d+\] Send \{'type': 'http\.response\.start'"
        )
        server.wait_for_line(r"TRACE: +127\.0\.0\.1:\d+ - ASGI \[\d+\] Completed")
        server.wait_for_line(r"TRACE: +127\.0\.0\.1:\d+ - HTTP connection lost")
    with run_server(APP, "--http", http, "--log-level", "debug") as server:
        httpx.get(server.url + "/quiet", timeout=5)
        server.wait_for_line(r'"GET /quiet HTTP/1\.1" 200')
    assert "HTTP connection made" not in server.output() and "ASGI [" not in server.output()
