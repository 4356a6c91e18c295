"""Every benchmark app answers correctly when palfrey serves it, and the WebSocket load client talks
to a real WebSocket server. Without this, a broken endpoint would be benchmarked as a fast 404."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import brotli
import httpx
import pytest

from tests.support import ROOT, free_port, run_server

APPS = ROOT / "benchmarks" / "apps"
DJANGO = APPS / "django_seed"


def _check_plain_endpoints(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/plaintext").text == "Hello, world!"
        data = client.get("/json")
        assert data.headers["content-type"] == "application/json"
        assert 150 <= len(data.content) <= 260 and json.loads(data.content)["id"] == 12345
        assert len(client.get("/64k").content) == 65536
        body = bytes(range(256)) * 16
        assert client.post("/echo", content=body).content == body
        stream = client.get("/stream")
        assert stream.headers.get("transfer-encoding") == "chunked" or "content-length" not in stream.headers
        assert stream.content == b"y" * 1024 * 16
        assert client.get("/sleep").text == "Hello, world!"
        assert client.get("/nope").status_code == 404


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_plain_apps(interface: str) -> None:
    with run_server(
        f"{interface}:app",
        "--app-dir",
        str(APPS),
        "--interface",
        interface + ("3" if interface == "asgi" else ""),
    ) as server:
        _check_plain_endpoints(server.url)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """The harness's loopback upstream (benchmarks/bench/upstream.py), for the upstream pages."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench.upstream", "--port", str(port)],
        cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and b"upstream on" in proc.stdout.readline()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_django_seed_views(interface: str, tmp_path: Path, upstream: str) -> None:
    """Every seed page answers as the harness expects, with the sync (WSGI) and async (ASGI) views."""
    env = {
        "DJANGO_SETTINGS_MODULE": "seedsite.settings",
        "BENCH_DJANGO_DB": str(tmp_path / "seed.sqlite3"),
        "BENCH_UPSTREAM": upstream,
    }
    app = f"seedsite.{interface}:application"
    with (
        run_server(app, "--app-dir", str(DJANGO), "--workers", "1", env=env) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        assert client.get("/json").json()["message"] == "Hello, world!"
        items = client.get("/db").json()["items"]
        assert [i["id"] for i in items] == list(range(1, 11))
        page = client.get("/template")
        assert page.status_code == 200 and page.text.count("<tr>") == 21 and "ITEM-20" in page.text
        plain = client.get("/brotli", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and len(plain.json()["items"]) == 200
        with client.stream("GET", "/brotli", headers={"Accept-Encoding": "br"}) as raw:
            compressed = b"".join(raw.iter_raw())
        assert raw.headers["content-encoding"] == "br"
        assert json.loads(brotli.decompress(compressed))["items"] == plain.json()["items"]
        assert len(compressed) < len(plain.content) / 4
        started = time.monotonic()
        assert client.get("/gateway/1").json() == {"gateway": "done", "waited": 1}
        assert time.monotonic() - started >= 1.0
        for via in ("requests", "httpx"):
            assert client.get(f"/{via}").json() == {
                "via": via,
                "upstream": {"status": "ok", "source": "upstream"},
            }


def test_starlette_app() -> None:
    with (
        run_server("starlette_app:app", "--app-dir", str(APPS)) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        assert client.get("/plaintext").text == "Hello, world!"
        assert client.get("/json").json()["id"] == 12345
        assert client.get("/users/7?x=1").json() == {"id": 7, "query": {"x": "1"}}


async def _run_client(port: int, *args: str) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.bench.wsclient", *args, "--port", str(port),
        cwd=str(ROOT), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    proc.stdin.close()
    await asyncio.wait_for(proc.wait(), 20)
    return json.loads(line)


def test_ws_client_against_websockets_server() -> None:
    serve = pytest.importorskip("websockets.asyncio.server").serve

    async def echo(ws) -> None:  # type: ignore[no-untyped-def]
        async for message in ws:
            await ws.send(message)

    async def main() -> tuple[dict[str, object], dict[str, object]]:
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            load = await _run_client(
                port, "echo", "--connections", "4", "--duration", "0.5", "--warmup", "0.1"
            )
            idle = await _run_client(port, "idle", "--connections", "50", "--deflate", "--hold", "10")
            return load, idle

    load, idle = asyncio.run(main())
    assert load["connections"] == 4 and load["errors"] == 0
    assert load["messages"] > 10 and load["p99_s"] is not None
    assert idle == {"opened": 50, "deflate": 50, "failed": 0, "first_error": None}


def test_ws_client_reports_a_refused_upgrade() -> None:
    """A server without WebSocket support answers the upgrade as plain HTTP: one clear error line."""

    async def main(port: int) -> dict[str, object]:
        return await _run_client(port, "echo", "--connections", "2", "--duration", "0.2", "--warmup", "0")

    with run_server("asgi:app", "--app-dir", str(APPS), "--ws", "none") as server:
        outcome = asyncio.run(main(server.port))
    assert "handshake answered" in str(outcome["error"])


def _run_h2idle(port: int, *args: str) -> dict[str, object]:
    async def main() -> dict[str, object]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.bench.h2idle", *args, "--port", str(port), "--hold", "10",
            cwd=str(ROOT), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdin is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 20)
        return json.loads(line)

    return asyncio.run(main())


def test_h2_endpoints_and_idle_client_against_palfrey_http2() -> None:
    """The HTTP/2 rows' app over h2c, the bench's own h2c probe (curl) and the idle-connection
    client's hand-written frames, against palfrey --http2."""
    from benchmarks.bench.h2load import h2c_request

    with run_server("asgi:app", "--app-dir", str(APPS), "--http2") as server:
        with httpx.Client(http1=False, http2=True, base_url=server.url, timeout=10) as client:
            assert client.get("/plaintext").http_version == "HTTP/2"
            _check_plain_endpoints_h2(client)
        assert h2c_request(server.port, "/plaintext", 10.0) == (200, b"Hello, world!")
        for proto in ("h2", "http/1.1"):
            outcome = _run_h2idle(server.port, "--connections", "30", "--proto", proto)
            assert outcome == {"opened": 30, "failed": 0, "first_error": None}, proto


def _check_plain_endpoints_h2(client: httpx.Client) -> None:
    assert client.get("/json").json()["id"] == 12345
    assert len(client.get("/64k").content) == 65536
    body = bytes(range(256)) * 16
    assert client.post("/echo", content=body).content == body
    assert client.get("/stream").content == b"y" * 1024 * 16
