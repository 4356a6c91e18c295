"""The worker half of metrics under gunicorn: a mixin for `palfrey.workers.PalfreyWorker`.

The arbiter builds the worker object in the master just before forking, then sets `worker.pid` on
both sides of the fork (the child's pid in the parent, `os.getpid()` in the child). That assignment
is the one moment each side can keep its end of the channel and close the other, so `pid` is a
property here; so is `aborted`, which the arbiter sets before killing a worker that missed its
`timeout` (counted as a `timeout` restart). Without PALFREY_METRICS_BIND there is no collector, no
socketpair, and both properties only store the value.

In the worker the channel is read from the event loop: `stats <n>` is answered with a snapshot
(snapshot.take, the same as under palfrey's master); a snapshot is pushed every PUSH_EVERY seconds
(a killed worker loses at most that much), and after the drain the final one goes out with the
worker's last words (`bye max-requests|term|quit`), so recycling and HUP lose nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from palfrey.metrics.gunicorn_master import Collector
    from palfrey.server.server import Server
    from palfrey.supervisor.channel import Channel

PUSH_EVERY = 1.0  # seconds between pushed snapshots (what a SIGKILL can lose)
LAST_WORDS_TIMEOUT = 1.0  # seconds the final snapshot may take to leave


def _collector() -> Collector | None:
    """The master's collector, without importing the metrics package when metrics are off."""
    module = sys.modules.get("palfrey.metrics.gunicorn_master")
    return None if module is None else module.collector()


class GunicornMetrics:
    """Metrics hooks of the gunicorn worker class (see the module docstring)."""

    max_requests: int  # gunicorn's Worker sets it
    _metrics_pair: tuple[socket.socket, socket.socket] | None = None
    _metrics_channel: Channel | None = None
    _metrics_server: Server | None = None
    _metrics_timer: asyncio.TimerHandle | None = None
    _metrics_loop: asyncio.AbstractEventLoop | None = None
    _metrics_said_draining = False
    _pid: Any = None
    _aborted = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if _collector() is not None:  # in the master, just before the fork
            self._metrics_pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        super().__init__(*args, **kwargs)

    @property
    def pid(self) -> Any:
        return self._pid

    @pid.setter
    def pid(self, value: Any) -> None:
        self._pid = value
        pair = self._metrics_pair
        if pair is None or not isinstance(value, int):
            return
        self._metrics_pair = None
        master_end, worker_end = pair
        collector = _collector()
        if collector is not None and value != os.getpid():  # the arbiter, right after the fork
            worker_end.close()
            collector.adopt(value, master_end)
        else:  # the new worker
            master_end.close()
            from palfrey.supervisor.channel import Channel

            self._metrics_channel = Channel(worker_end)

    @property
    def aborted(self) -> bool:
        return self._aborted

    @aborted.setter
    def aborted(self, value: bool) -> None:
        self._aborted = value
        collector = _collector()
        if value and collector is not None and isinstance(self._pid, int):
            collector.abort(self._pid)

    # Worker side.

    def metrics_settings(self) -> dict[str, Any]:
        """palfrey settings for this worker: the recorder on when the master collects."""
        return {"metrics": True} if self._metrics_channel is not None else {}

    def metrics_start(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        """Before serving: the master serves /metrics, this loop answers its `stats` requests."""
        channel = self._metrics_channel
        if channel is None:
            return
        server.metrics_endpoint = False
        self._metrics_server = server
        self._metrics_loop = loop
        loop.add_reader(channel.fileno(), self._metrics_read)
        self._metrics_timer = loop.call_later(PUSH_EVERY, self._metrics_push, loop)

    def metrics_ready(self) -> None:
        if self._metrics_channel is not None:
            self._metrics_channel.send("ready")

    def metrics_draining(self) -> None:
        if self._metrics_channel is not None and not self._metrics_said_draining:
            self._metrics_said_draining = True
            self._metrics_channel.send("draining")

    def metrics_stop(self) -> None:
        """After the drain: the final snapshot and why this worker exits, then close the channel."""
        channel = self._metrics_channel
        if channel is None:
            return
        self._metrics_channel = None
        if self._metrics_timer is not None:
            self._metrics_timer.cancel()
        if self._metrics_loop is not None:
            with contextlib.suppress(Exception):
                self._metrics_loop.remove_reader(channel.fileno())
        server = self._metrics_server
        state = server.state if server is not None else None
        if server is not None and state is not None:
            self._send_snapshot(channel, "0")
            if state.total_requests >= self.max_requests:
                reason = "max-requests"
            else:
                reason = "quit" if server.force_exit else "term"
            channel.send(f"bye {reason}")
        channel.flush(LAST_WORDS_TIMEOUT)
        channel.close()

    def _metrics_read(self) -> None:
        channel = self._metrics_channel
        if channel is None:
            return
        for line in channel.receive():
            verb, _, sequence = line.partition(" ")
            if verb == "stats" and sequence.isdigit():
                self._send_snapshot(channel, sequence)
        if channel.closed and self._metrics_loop is not None:  # the master went away
            with contextlib.suppress(Exception):
                self._metrics_loop.remove_reader(channel.fileno())

    def _metrics_push(self, loop: asyncio.AbstractEventLoop) -> None:
        channel = self._metrics_channel
        if channel is None:
            return
        self._send_snapshot(channel, "0")
        self._metrics_timer = loop.call_later(PUSH_EVERY, self._metrics_push, loop)

    def _send_snapshot(self, channel: Channel, sequence: str) -> None:
        server = self._metrics_server
        state = server.state if server is not None else None
        if state is None or state.metrics is None:
            return
        from palfrey.metrics.snapshot import encode, take

        channel.send(f"stats {sequence} {encode(take(state))}")
