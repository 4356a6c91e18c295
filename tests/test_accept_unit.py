"""`Acceptor` (palfrey/server/accept.py) in-process: the back-off schedule out of descriptors, one log
line and one count per episode, and the end of an episode, with a listener whose accept() fails on cue.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Iterator

import pytest

from palfrey.server.accept import FIRST_DELAY, MAX_DELAY, Acceptor


class ScriptedListener(socket.socket):
    """A real listening socket whose accept raises the queued errors first (the Acceptor calls the
    raw `_accept` that `socket.accept` wraps)."""

    errors: list[int]

    def _accept(self) -> tuple[int, object]:
        if self.errors:
            code = self.errors.pop(0)
            raise BlockingIOError(code, "again") if code == errno.EAGAIN else OSError(code, "scripted")
        return super()._accept()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def make(loop: asyncio.AbstractEventLoop, episodes: list[int]) -> tuple[Acceptor, ScriptedListener]:
    sock = ScriptedListener(socket.AF_INET, socket.SOCK_STREAM)
    sock.errors = []
    sock.bind(("127.0.0.1", 0))
    acceptor = Acceptor(loop, [sock], asyncio.Protocol, backlog=8, on_exhausted=lambda: episodes.append(1))
    acceptor.start()
    return acceptor, sock


def test_backoff_doubles_to_the_cap_logs_once_and_ends(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    episodes: list[int] = []
    acceptor, sock = make(loop, episodes)
    delays = []
    with caplog.at_level(logging.INFO, logger="palfrey.error"):
        for _ in range(7):
            sock.errors.append(errno.EMFILE)
            acceptor._accept(sock)
            assert not acceptor.reading  # every listener stops being read while paused
            assert acceptor.retry is not None
            delays.append(round(acceptor.retry.when() - loop.time(), 2))
            acceptor.retry.cancel()
            acceptor.retry = None
            acceptor._add_readers()
        assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
        assert FIRST_DELAY == 0.1 and MAX_DELAY == 2.0
        assert episodes == [1]
        paused = [r for r in caplog.records if "Accepting paused" in r.getMessage()]
        assert len(paused) == 1 and "RLIMIT_NOFILE" in paused[0].getMessage()
        sock.errors.append(errno.EAGAIN)  # accept() got past the descriptor check: room again
        acceptor._accept(sock)
        assert acceptor.delay == 0.0
        assert any("Accepting connections again" in r.getMessage() for r in caplog.records)
        sock.errors.append(errno.ENFILE)  # a new episode: logged and counted again
        acceptor._accept(sock)
        assert episodes == [1, 1]
        assert len([r for r in caplog.records if "Accepting paused" in r.getMessage()]) == 2
    acceptor.close()
    assert sock.fileno() == -1


def test_resume_retries_at_once_and_stop_cancels(loop: asyncio.AbstractEventLoop) -> None:
    episodes: list[int] = []
    acceptor, sock = make(loop, episodes)
    sock.errors += [errno.EMFILE, errno.EMFILE]
    acceptor._accept(sock)
    acceptor._resume()  # the retry finds the process still out of descriptors: paused again, longer
    assert not acceptor.reading and acceptor.delay == 4 * FIRST_DELAY
    assert episodes == [1]
    acceptor.stop()
    assert acceptor.retry is None and not acceptor.reading
    acceptor._resume()  # a stopped acceptor never reads again
    assert not acceptor.reading
    acceptor.close()
