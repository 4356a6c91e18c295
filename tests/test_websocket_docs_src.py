"""The docs_src/websockets examples, started as the docs show them and used as the docs say."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.support import ROOT, run_server
from tests.websocket_support import CLOSE, TEXT, RawWebSocket, client, frame, run


def test_echo() -> None:
    with run_server("docs_src.websockets.echo:app") as server:

        async def scenario() -> list[str | bytes]:
            async with client(f"ws://127.0.0.1:{server.port}/") as ws:
                got = []
                for message in ("hello", b"\x00bytes\xff", "ünïcode"):
                    await ws.send(message)
                    got.append(await ws.recv())
                return got

        assert run(scenario) == ["hello", b"\x00bytes\xff", "ünïcode"]
        assert httpx.get(f"{server.url}/", timeout=5).text == "Connect with a WebSocket client.\n"


async def _expect(ws: object, text: str) -> None:
    """Read until `text` arrives (announcements may interleave), bounded by the caller's timeout."""
    while (await ws.recv()) != text:  # type: ignore[attr-defined]
        pass


def test_chat_room() -> None:
    with run_server("docs_src.websockets.chat:app") as server:
        url = f"ws://127.0.0.1:{server.port}/chat"

        async def scenario() -> int:
            async with client(f"{url}?name=ann") as ann:
                await _expect(ann, "* ann joined")
                async with client(f"{url}?name=bob") as bob:
                    await _expect(bob, "* bob joined")
                    await _expect(ann, "* bob joined")
                    await ann.send("hi bob")
                    await _expect(bob, "ann: hi bob")
                    await _expect(ann, "ann: hi bob")
                    await bob.send("hi ann")
                    await _expect(ann, "bob: hi ann")
                await _expect(ann, "* bob left")
                with pytest.raises(InvalidStatus) as refused:
                    async with client(f"{url}?name=ann"):  # the name is taken
                        pass
                return refused.value.response.status_code

        assert run(scenario) == 403


def test_chat_drops_a_member_that_does_not_read() -> None:
    with run_server("docs_src.websockets.chat:app") as server:
        url = f"ws://127.0.0.1:{server.port}/chat"
        with RawWebSocket(server.port, rcvbuf=16384) as slow:
            slow.handshake("/chat?name=slow")  # then reads nothing while the room is busy

            async def flood() -> None:
                async with client(f"{url}?name=ann") as ann:
                    # 18 MB for the slow member, far more than its buffers. Ann reads her own copy of
                    # each message before sending the next: a member that only sends, faster than
                    # it reads, would fill its own outbox and be dropped as well.
                    for _ in range(300):
                        await ann.send("x" * 60_000)
                        await _expect(ann, "ann: " + "x" * 60_000)
                async with client(f"{url}?name=slow") as again:  # the name is free again
                    await _expect(again, "* slow joined")

            run(flood, timeout=30)
            while (data := slow.recv_data())[0] == TEXT:  # what was queued for it, then the close
                pass
            assert data[0] == CLOSE and data[1][:2] == (1008).to_bytes(2, "big")
            slow.send(frame(CLOSE, data[1][:2]))
            assert slow.closed()


def test_memory_measurement_script_runs() -> None:
    """docs_src/websockets/memory.py produced the table in docs/websockets.md; a tiny run proves it works."""
    result = subprocess.run(
        [sys.executable, "-m", "docs_src.websockets.memory", "--connections", "10", "--messages", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("| websockets") or line.startswith("| wsproto")
    ]
    assert len(rows) == 8, result.stdout
