"""--reload: a file change rolls the workers over (replacement first), with watchfiles or stat polling."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import pytest

from tests.master_support import ready_pids, request, restarted_pids, wait_for_count
from tests.support import run_server

TEMPLATE = textwrap.dedent(
    """
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = {answer!r}.encode()
        await send({{"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]}})
        await send({{"type": "http.response.body", "body": body}})
    """
)


def write_app(path: Path, answer: str) -> None:
    path.write_text(TEMPLATE.format(answer=answer))


def answers(port: int, count: int = 6) -> set[bytes]:
    return {request(port, "/")[2] for _ in range(count)}


@pytest.mark.parametrize("watcher", ["watchfiles", "stat"])
def test_reload_with_two_workers_picks_up_edits(tmp_path: Path, watcher: str) -> None:
    code = tmp_path / "code"
    code.mkdir()
    module = code / "reload_app.py"
    write_app(module, "v1")
    env = {}
    if watcher == "stat":
        shadow = tmp_path / "shadow" / "watchfiles"  # an import that fails: the stat poller takes over
        shadow.mkdir(parents=True)
        (shadow / "__init__.py").write_text("raise ImportError('hidden for this test')\n")
        env["PYTHONPATH"] = f"{shadow.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    args = ["reload_app:app", "--app-dir", str(code), "--reload", "--reload-dir", str(code)]
    with run_server(*args, "--workers", "2", "--reload-delay", "0.1", env=env, cwd=tmp_path) as server:
        server.wait_for_line(
            rf"Will watch for changes in these directories: .*\({watcher if watcher == 'watchfiles' else 'stat polling'}\)"
        )
        first = ready_pids(server)
        assert answers(server.port) == {b"v1"}

        write_app(module, "v2")
        assert not set(first) & set(restarted_pids(server))
        assert answers(server.port) == {b"v2"}

        # A broken edit keeps the running workers; the next good edit recovers.
        module.write_text("def broken(:\n")
        wait_for_count(server, r"failed to boot; waiting for a file change", 1, timeout=30)
        assert answers(server.port) == {b"v2"}
        write_app(module, "v3")
        restarted_pids(server, occurrence=2)
        assert answers(server.port) == {b"v3"}


def test_hup_picks_up_new_code(tmp_path: Path) -> None:
    module = tmp_path / "hup_app.py"
    write_app(module, "old")
    with run_server("hup_app:app", "--app-dir", str(tmp_path), "--workers", "2", cwd=tmp_path) as server:
        ready_pids(server)
        assert answers(server.port) == {b"old"}
        write_app(module, "new")
        server.signal(signal.SIGHUP)
        restarted_pids(server)
        assert answers(server.port) == {b"new"}
