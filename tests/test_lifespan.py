"""The lifespan protocol on real servers: --lifespan auto|on|off, startup state in each request's
scope (a shallow copy), startup failures (exit 3), shutdown on exit, apps without lifespan support."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.support import run_server, spawn

MODULE = "tests.apps.server_apps"


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_state_is_a_shallow_copy_per_request(mode: str) -> None:
    with run_server(f"{MODULE}:app", "--lifespan", mode) as server:
        output = server.output()
        assert output.index("Waiting for application startup.") < output.index("app: lifespan startup")
        assert output.index("Application startup complete.") < output.index("Palfrey running on")
        with httpx.Client() as client:
            first = client.get(server.url + "/state").json()
            second = client.get(server.url + "/state").json()
            third = client.get(server.url + "/state").json()
        assert first == {"keys": ["hits", "started"], "started": "yes", "hits": []}
        # The key one request added is gone for the next; the list both share kept its appends.
        assert second == {"keys": ["hits", "started"], "started": "yes", "hits": [0]}
        assert third["hits"] == [0, 1]


def test_lifespan_off_never_calls_it() -> None:
    with run_server(f"{MODULE}:app", "--lifespan", "off") as server:
        assert httpx.get(server.url + "/").json()["state"] == {}
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
    output = server.output()
    for text in ("app: lifespan", "Waiting for application", "Application startup", "Application shutdown"):
        assert text not in output


def test_shutdown_runs_on_exit(tmp_path: Path) -> None:
    marker = tmp_path / "shutdown.txt"
    with run_server(f"{MODULE}:app", env={"APP_SHUTDOWN_FILE": str(marker)}) as server:
        assert httpx.get(server.url + "/").status_code == 200
        assert not marker.exists()
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
    assert marker.read_text() == "shutdown"
    output = server.output()
    lines = [
        "Shutting down",
        "Waiting for application shutdown.",
        "app: lifespan shutdown",
        "Application shutdown complete.",
        "Finished server process",
    ]
    positions = [output.index(line) for line in lines]
    assert positions == sorted(positions), output


def test_startup_failed_message_exits_3() -> None:
    server = spawn(f"{MODULE}:startup_failed_app", "--port", "0")
    assert server.wait_exit() == 3
    output = server.output()
    assert "ERROR:    database unreachable at startup" in output
    assert "Application startup failed. Exiting." in output
    assert "Palfrey running on" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_exception_exits_3_with_traceback(mode: str) -> None:
    server = spawn(f"{MODULE}:startup_raises_app", "--port", "0", "--lifespan", mode)
    assert server.wait_exit() == 3
    output = server.output()
    assert "Traceback (most recent call last)" in output
    assert "RuntimeError: kaboom during startup" in output
    assert "Application startup failed. Exiting." in output
    assert "Palfrey running on" not in output


def test_shutdown_failure_is_logged(tmp_path: Path) -> None:
    with run_server(f"{MODULE}:shutdown_failed_app") as server:
        assert httpx.get(server.url).text == "ok"
        server.signal(signal.SIGTERM)
        server.wait_exit()
    output = server.output()
    assert "could not flush the queue" in output
    assert "Application shutdown failed." in output
    assert "Finished server process" in output


def test_app_without_lifespan_is_served_under_auto() -> None:
    with run_server(f"{MODULE}:no_lifespan_app") as server:
        assert httpx.get(server.url).json() == {"state": []}
        server.signal(signal.SIGTERM)
        assert server.wait_exit() == 0
    output = server.output()
    assert "No lifespan support in the app" in output and "which is fine for an app that has none" in output
    assert "Traceback" not in output
    assert "Application shutdown" not in output


def test_app_without_lifespan_fails_under_on() -> None:
    server = spawn(f"{MODULE}:no_lifespan_app", "--port", "0", "--lifespan", "on")
    assert server.wait_exit() == 3
    output = server.output()
    assert "RuntimeError: unsupported scope type lifespan" in output
    assert "Application startup failed. Exiting." in output


def test_app_without_lifespan_under_off() -> None:
    with run_server(f"{MODULE}:no_lifespan_app", "--lifespan", "off") as server:
        assert httpx.get(server.url).status_code == 200
    assert "lifespan" not in server.output()
