"""Loading the app: `module:attr.sub`, --app-dir, --factory, ASGI 2 apps (class and closure),
and interface auto-detection, each on a real server answering a real request."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import run_server, spawn

MODULE = "tests.apps.server_apps"


def test_dotted_attribute() -> None:
    with run_server(f"{MODULE}:nested.inner.app") as server:
        assert httpx.get(server.url + "/dotted").json()["path"] == "/dotted"


def test_app_dir(tmp_path: Path) -> None:
    package = tmp_path / "elsewhere_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "service.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'from app-dir'})\n"
    )
    with run_server("elsewhere_pkg.service:app", "--app-dir", str(tmp_path), "--lifespan", "off") as server:
        assert httpx.get(server.url).text == "from app-dir"


def test_app_dir_missing_module_is_one_line(tmp_path: Path) -> None:
    server = spawn("elsewhere_pkg.service:app", "--app-dir", str(tmp_path), "--port", "0")
    assert server.wait_exit() == 3
    assert 'Could not import module "elsewhere_pkg.service"' in server.output()
    assert "Traceback" not in server.output()


def test_current_directory_is_importable(tmp_path: Path) -> None:
    (tmp_path / "cwd_main.py").write_text("from tests.apps.server_apps import app\n")
    with run_server("cwd_main:app", cwd=tmp_path) as server:
        assert httpx.get(server.url + "/").status_code == 200


def test_factory() -> None:
    with run_server(f"{MODULE}:create_app", "--factory") as server:
        server.wait_for_line("app: factory called")
        assert httpx.get(server.url + "/made").json()["path"] == "/made"


def test_factory_that_fails_to_call_shows_why() -> None:
    server = spawn(f"{MODULE}:broken_factory", "--factory", "--port", "0")
    assert server.wait_exit() == 3
    assert "Error calling the app factory" in server.output()
    assert "required" in server.output()


@pytest.mark.parametrize(
    ("attribute", "args", "tag"),
    [
        ("ASGI2ClassApp", [], "asgi2-class"),
        ("asgi2_closure_app", [], "asgi2-closure"),
        ("asgi2_closure_app", ["--interface", "asgi2"], "asgi2-closure"),
        ("asgi3_instance", [], "asgi3-instance"),
        ("asgi3_instance", ["--interface", "asgi3"], "asgi3-instance"),
    ],
    ids=["asgi2-class", "asgi2-closure", "asgi2-explicit", "asgi3-instance", "asgi3-explicit"],
)
def test_interfaces(attribute: str, args: list[str], tag: str) -> None:
    with run_server(f"{MODULE}:{attribute}", *args) as server:
        # Startup completed through the same interface (the lifespan line only appears if it did).
        server.wait_for_line("Application startup complete")
        with httpx.Client() as client:
            for path in ("/a", "/b"):  # a new ASGI 2 instance per request
                assert client.get(server.url + path).json() == {"tag": tag, "path": path}


@pytest.mark.parametrize("args", [[], ["--interface", "wsgi"]], ids=["auto", "explicit"])
def test_wsgi_app(args: list[str]) -> None:
    with run_server(f"{MODULE}:wsgi_app", *args) as server:
        assert httpx.get(server.url + "/").text == "wsgi"
