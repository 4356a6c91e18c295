"""uvicorn parity for a switching user (issue 13): `run(headers=[(name, value)])`, `--ws
websockets-sansio`, and the scope's `server` on a unix socket ([path, None], as the ASGI spec says)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from palfrey.config import Config, ConfigError
from tests.support import run_server, spawn_script, wait_ready

APP = "tests.apps.server_apps:app"


def test_run_accepts_uvicorn_header_tuples_and_strings() -> None:
    process = spawn_script(
        """
        import palfrey
        palfrey.run(
            "tests.apps.server_apps:app", host="127.0.0.1", port=0,
            headers=[("X-Frame-Options", "DENY"), "X-Other: yes"],
        )
        """
    )
    try:
        url = wait_ready(process)
        response = httpx.get(url + "/", timeout=5)
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-other"] == "yes"
    finally:
        process.signal(signal.SIGTERM)
        process.wait_exit()
    assert "Traceback" not in process.output()


@pytest.mark.parametrize("bad", [("", "x"), ("a:b", "x"), ("one",), 3])
def test_bad_header_entries_are_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError, match="--header"):
        Config(app=APP, headers=[bad])


def test_ws_websockets_sansio_is_the_websockets_engine() -> None:
    assert Config(app=APP, ws="websockets-sansio").ws == "websockets"
    with run_server(APP, "--ws", "websockets-sansio") as server:
        assert httpx.get(server.url + "/", timeout=5).status_code == 200


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_uds_scope_server_is_path_and_none(tmp_path: Path, http: str) -> None:
    path = tmp_path / "s.sock"
    with (
        run_server(APP, "--uds", str(path), "--http", http),
        httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), timeout=5) as client,
    ):
        body = client.get("http://palfrey/").json()
    assert body["server"] == [str(path), None]
