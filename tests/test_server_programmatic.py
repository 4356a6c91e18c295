"""Palfrey as a library: `palfrey.run(...)`, `await Server(Config(...)).serve()` inside a running
event loop (stopped by `request_exit()` or `should_exit`), `Server.run()` in a thread, and a
single-process Server honouring limit_max_requests."""

from __future__ import annotations

import signal
import socket
import threading

import httpx
import pytest

import palfrey
from tests.apps import server_apps
from tests.support import spawn_script, stop, wait_ready

script = spawn_script  # the names other modules used before they moved to tests/support.py


@pytest.mark.parametrize(
    "target", ['"tests.apps.server_apps:app"', "server_apps.app"], ids=["import-string", "app-object"]
)
def test_run(target: str) -> None:
    process = script(
        f"""
        import palfrey
        from tests.apps import server_apps
        palfrey.run({target}, host="127.0.0.1", port=0, root_path="/mounted", headers=["x-run:yes"])
        """
    )
    try:
        url = wait_ready(process)
        response = httpx.get(url + "/item")
        assert response.json()["path"] == "/mounted/item"
        assert response.headers["x-run"] == "yes"
        process.signal(signal.SIGTERM)
        assert process.wait_exit() == 0
    finally:
        stop(process)
    assert "Application shutdown complete." in process.output()


def test_run_exits_with_the_boot_failure_code() -> None:
    process = script(
        """
        import palfrey
        palfrey.run("tests.apps.server_apps:missing", port=0)
        """
    )
    assert process.wait_exit() == 3
    assert 'Attribute "missing" not found' in process.output()
    assert "Traceback" not in process.output()


def test_run_rejects_bad_settings() -> None:
    with pytest.raises(palfrey.config.ConfigError, match="--port must be at least 0"):
        palfrey.run("tests.apps.server_apps:app", port=-1)
    with pytest.raises(TypeError, match="unknown setting"):
        palfrey.run("tests.apps.server_apps:app", prot=8000)


@pytest.mark.parametrize(
    "stop_with",
    ["server.request_exit", "lambda: setattr(server, 'should_exit', True)"],
    ids=["request_exit", "should_exit"],
)
def test_serve_inside_a_running_loop(stop_with: str) -> None:
    process = script(
        f"""
        import asyncio, logging, sys
        import palfrey
        from tests.apps import server_apps

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)

        async def main():
            ticks = 0
            async def other_work():
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0.01)
            worker = asyncio.create_task(other_work())
            server = palfrey.Server(palfrey.Config(server_apps.app, host="127.0.0.1", port=0))
            server_apps.STOP_HOOK = {stop_with}
            code = await server.serve()
            print("serve returned", code, "other work ran:", ticks > 0, flush=True)
            worker.cancel()
            await asyncio.sleep(0)  # the loop is still ours after serve()
            print("loop still usable", flush=True)

        asyncio.run(main())
        """
    )
    try:
        url = wait_ready(process)
        assert httpx.get(url + "/state").json()["started"] == "yes"
        assert httpx.get(url + "/stop").text == "stopping"
        assert process.wait_exit() == 0
    finally:
        stop(process)
    output = process.output()
    assert "serve returned 0 other work ran: True" in output
    assert "loop still usable" in output
    assert output.index("Application shutdown complete.") < output.index("serve returned")


@pytest.mark.parametrize("how", ["should_exit", "request_exit"])
def test_server_run_in_a_thread(how: str) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = palfrey.Server(palfrey.Config(server_apps.app, lifespan="on", access_log=False))
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(server.run(sockets=[listener])), daemon=True)
    thread.start()
    try:
        # The socket is listening already, so this request simply waits until the server serves it.
        response = httpx.get(f"http://127.0.0.1:{port}/state", timeout=10)
        assert response.json()["started"] == "yes"
        assert server.started
    finally:
        if how == "should_exit":
            server.should_exit = True
        else:
            server.request_exit()
        thread.join(timeout=10)
        listener.close()
    assert not thread.is_alive()
    assert result == [0]


def test_single_process_server_exits_after_limit_max_requests() -> None:
    process = script(
        """
        import logging, sys
        import palfrey

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
        config = palfrey.Config("tests.apps.server_apps:app", host="127.0.0.1", port=0, limit_max_requests=3)
        sys.exit(palfrey.Server(config).run())
        """
    )
    try:
        url = wait_ready(process)
        with httpx.Client() as client:
            for index in range(3):
                assert client.get(f"{url}/n{index}").status_code == 200
        assert process.wait_exit() == 0
    finally:
        stop(process)
    output = process.output()
    assert "Maximum request limit of 3 exceeded. Terminating process." in output
    assert "Application shutdown complete." in output
