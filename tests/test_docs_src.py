"""Every docs_src example is started as the docs show it and answers as the docs say."""

from __future__ import annotations

import httpx

from tests.support import run_server


def test_hello_world() -> None:
    with run_server("docs_src.getting_started.hello_world:app") as server:
        response = httpx.get(f"{server.url}/", timeout=5)
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.headers["server"] == "palfrey"
    assert "date" in response.headers


def test_json_api() -> None:
    with (
        run_server("docs_src.getting_started.json_api:app") as server,
        httpx.Client(base_url=server.url, timeout=5) as client,
    ):
        assert client.get("/items").json() == [{"id": 1, "name": "hay"}]
        created = client.post("/items", json={"name": "oats"})
        assert created.status_code == 201
        assert created.json() == {"id": 2, "name": "oats"}
        assert len(client.get("/items").json()) == 2
        assert client.post("/items", content=b"{nope").status_code == 400
        assert client.get("/elsewhere").status_code == 404


def test_streaming_is_chunked() -> None:
    with (
        run_server("docs_src.getting_started.streaming:app") as server,
        httpx.Client(timeout=5) as client,
        client.stream("GET", f"{server.url}/") as response,
    ):
        assert response.headers["transfer-encoding"] == "chunked"
        lines = [line for line in response.iter_lines() if line]
    assert lines == ["tick 1", "tick 2", "tick 3", "tick 4", "tick 5", "done"]


def test_lifespan_state() -> None:
    with run_server("docs_src.getting_started.lifespan_state:app") as server:
        body = httpx.get(f"{server.url}/", timeout=5).json()
        output = server.output()
    assert body["greeting"] == "hello from startup"
    assert body["uptime"] >= 0
    assert "Application startup complete." in output
