"""Logging as a user sees it on a real server: the default access line, --no-access-log,
--access-log-format atoms, --log-level warning|debug|trace, --log-config (.json, .yaml, .ini) and
--use-colors/--no-use-colors."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, ServerProcess, raw_request, read_until_close, run_server, stop

APP = "tests.apps.server_apps:app"
ESC = "\x1b["
BROKEN = b"GET / HTTP/1.1\r\nHost: x\r\nno colon in this header line\r\n\r\n"


def access_lines(server: ServerProcess, path: str) -> list[str]:
    return [line for line in server.output().splitlines() if f" {path} " in line or f" {path}?" in line]


def test_default_access_line() -> None:
    with run_server(APP) as server:
        with httpx.Client() as client:
            response = client.get(server.url + "/hello?name=world")
            port = response.json()["client"][1]
            assert client.post(server.url + "/missing-body", content=b"x").status_code == 200
        server.wait_for_line(r'"POST /missing-body HTTP/1\.1" 200')
    line = access_lines(server, "/hello")[0]
    assert line == f'INFO:     127.0.0.1:{port} - "GET /hello?name=world HTTP/1.1" 200 OK'
    assert ESC not in server.output(), "no colors when stdout is not a terminal"


def test_no_access_log() -> None:
    with run_server(APP, "--no-access-log") as server:
        assert httpx.get(server.url + "/quiet").status_code == 200
        server.signal(15)
        server.wait_exit()
    assert access_lines(server, "/quiet") == []
    assert "Application shutdown complete." in server.output(), "other logging is unaffected"


def test_access_log_format_atoms() -> None:
    fmt = '%(h)s "%(r)s" %(s)s %(b)s %(D)s %({x-req}i)s %({content-type}o)s %(m)s %(U)s %(q)s %(H)s'
    with run_server(APP, "--access-log-format", fmt) as server:
        response = httpx.get(server.url + "/out-headers?a=1", headers={"x-req": "req-42"})
        assert response.text == "with headers"
        line = server.wait_for_line(r"INFO: +127\.0\.0\.1 \"GET").string.rstrip("\n")
    match = re.fullmatch(
        r'INFO: +127\.0\.0\.1 "GET /out-headers\?a=1 HTTP/1\.1" 200 12 (\d+) req-42 '
        r"text/plain; charset=utf-8 GET /out-headers a=1 HTTP/1\.1",
        line,
    )
    assert match, line


def test_access_log_duration_atoms() -> None:
    with run_server(APP, "--access-log-format", "%(U)s D=%(D)s M=%(M)s L=%(L)s T=%(T)s") as server:
        assert httpx.get(server.url + "/sleep?seconds=0.2").text == "slept"
        line = server.wait_for_line(r"/sleep D=").string
    match = re.search(r"D=(\d+) M=(\d+) L=(\d+\.\d{6}) T=(\d+)", line)
    assert match, line
    micros, millis, seconds, whole = match.groups()
    # The app's asyncio.sleep(0.2) may end up to 1 ms early on uvloop (its timers have millisecond
    # granularity), so the floor is 0.199 s: the check is on the atoms' units, not the loop's clock.
    assert 199_000 <= int(micros) < 5_000_000
    assert 199 <= int(millis) < 5_000 and int(millis) == int(micros) // 1000
    assert float(seconds) == pytest.approx(int(micros) / 1e6, abs=1e-6)
    assert whole == "0"


@contextmanager
def on_prebound_socket(*args: str) -> Iterator[tuple[ServerProcess, int]]:
    """A server on a socket bound here: usable at once, even when it logs nothing about starting."""
    listener = socket.create_server(("127.0.0.1", 0))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "palfrey", APP, "--fd", str(listener.fileno()), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(ROOT),
        pass_fds=(listener.fileno(),),
    )
    server = ServerProcess(proc)
    try:
        yield server, listener.getsockname()[1]
    finally:
        listener.close()
        stop(server)


def test_log_level_warning() -> None:
    with on_prebound_socket("--log-level", "warning") as (server, port):
        assert httpx.get(f"http://127.0.0.1:{port}/silent", timeout=10).status_code == 200
        assert raw_request(port, BROKEN).startswith(b"HTTP/1.1 400")
        server.wait_for_line(r"WARNING: +Invalid HTTP request received")
        server.signal(15)
        assert server.wait_exit() == 0
    output = server.output()
    assert "INFO:" not in output, output
    assert "/silent" not in output


@pytest.mark.parametrize("level", ["info", "debug", "trace"])
def test_log_level_debug_and_trace(level: str) -> None:
    # 1 s, not less: the marker request below must not itself run into the deadline when the test
    # process is descheduled between connecting and sending on a loaded machine.
    with run_server(APP, "--log-level", level, "--timeout-request-header", "1") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
            slow.sendall(b"GET /slow HTTP/1.1\r\n")
            assert read_until_close(slow).startswith(b"HTTP/1.1 408")
        httpx.get(server.url + "/marker")  # everything logged before this line is in the output now
        server.wait_for_line("/marker")
    output = server.output()
    assert ("Request head not received in time" in output) == (level in ("debug", "trace"))
    assert ("TRACE:    ASGI [lifespan] Send lifespan.startup.complete" in output) == (level == "trace")


def log_config_files(directory: Path) -> dict[str, Path]:
    """The same configuration as JSON, YAML and INI; each tags its lines so we can tell them apart.

    The palfrey loggers are set to WARNING in the file, and the tests pass --log-level info, which
    must win (as in uvicorn)."""
    files = {}
    for kind in ("json", "yaml"):
        config = {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"tagged": {"format": f"{kind.upper()}CFG %(levelname)s [%(name)s] %(message)s"}},
            "handlers": {
                "out": {"class": "logging.StreamHandler", "formatter": "tagged", "stream": "ext://sys.stdout"}
            },
            "loggers": {
                "palfrey": {"handlers": ["out"], "level": "WARNING", "propagate": False},
                "palfrey.error": {"level": "WARNING"},
                "palfrey.access": {"handlers": ["out"], "level": "WARNING", "propagate": False},
            },
        }
        path = directory / f"logging.{kind}"
        if kind == "json":
            path.write_text(json.dumps(config))
        else:
            import yaml

            path.write_text(yaml.safe_dump(config))
        files[kind] = path
    ini = directory / "logging.ini"
    ini.write_text(
        "[loggers]\nkeys=root,palfrey,error,access\n\n"
        "[handlers]\nkeys=out\n\n"
        "[formatters]\nkeys=tagged\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_palfrey]\nlevel=WARNING\nhandlers=out\npropagate=0\nqualname=palfrey\n\n"
        "[logger_error]\nlevel=WARNING\nhandlers=\npropagate=1\nqualname=palfrey.error\n\n"
        "[logger_access]\nlevel=WARNING\nhandlers=out\npropagate=0\nqualname=palfrey.access\n\n"
        "[handler_out]\nclass=StreamHandler\nformatter=tagged\nargs=(sys.stdout,)\n\n"
        "[formatter_tagged]\nformat=INICFG %(levelname)s [%(name)s] %(message)s\n"
    )
    files["ini"] = ini
    return files


@pytest.mark.parametrize("kind", ["json", "yaml", "ini"])
def test_log_config_files(tmp_path: Path, kind: str) -> None:
    path = log_config_files(tmp_path)[kind]
    tag = f"{kind.upper()}CFG"
    with run_server(APP, "--log-config", str(path), "--log-level", "info") as server:
        assert httpx.get(server.url + "/configured").status_code == 200
        server.wait_for_line(
            rf'{tag} INFO \[palfrey\.access\] 127\.0\.0\.1:\d+ - "GET /configured HTTP/1\.1" 200'
        )
    assert f"{tag} INFO [palfrey.error] Palfrey running on {server.url}" in server.output()
    assert "INFO:     " not in server.output(), "the default format is replaced"


def test_log_config_without_level_override(tmp_path: Path) -> None:
    path = log_config_files(tmp_path)["json"]
    with on_prebound_socket("--log-config", str(path)) as (server, port):
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
        assert raw_request(port, BROKEN).startswith(b"HTTP/1.1 400")
        server.wait_for_line(r"JSONCFG WARNING \[palfrey\.error\] Invalid HTTP request")
    assert "JSONCFG INFO" not in server.output(), "the file's WARNING level applies"


def test_log_config_and_no_access_log(tmp_path: Path) -> None:
    path = log_config_files(tmp_path)["yaml"]
    with run_server(APP, "--log-config", str(path), "--log-level", "info", "--no-access-log") as server:
        assert httpx.get(server.url + "/hidden").status_code == 200
        server.signal(15)
        server.wait_exit()
    assert "/hidden" not in server.output()
    assert "YAMLCFG INFO [palfrey.error] Finished server process" in server.output()


def test_bad_log_config_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(AssertionError, match="exited before"), run_server(APP, "--log-config", str(path)):
        pass  # pragma: no cover


@pytest.mark.parametrize(
    ("args", "env", "colored"),
    [
        (["--use-colors"], {}, True),
        (["--use-colors"], {"NO_COLOR": "1"}, True),  # an explicit flag beats NO_COLOR
        (["--no-use-colors"], {"NO_COLOR": ""}, False),
        ([], {"NO_COLOR": ""}, False),  # auto: stdout is a pipe here
    ],
    ids=["use-colors", "use-colors-over-NO_COLOR", "no-use-colors", "auto-on-a-pipe"],
)
def test_colors(args: list[str], env: dict[str, str], colored: bool) -> None:
    with run_server(APP, *args, env=env) as server:
        assert httpx.get(server.url + "/colors").status_code == 200
        line = server.wait_for_line(r'"GET /colors HTTP/1\.1"').string
    startup = next(line for line in server.output().splitlines() if "Application startup complete" in line)
    assert (ESC in startup) == colored
    assert (ESC in line) == colored
    if colored:
        assert f"{ESC}32m200 OK{ESC}0m" in line, "the status is green"
