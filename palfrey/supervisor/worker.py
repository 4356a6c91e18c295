"""The worker side of the pre-fork model: what a forked child does until it exits.

A worker is an ordinary `Server` on the sockets the master bound, plus a control channel read *by its
event loop*: a ping is answered only when the loop is free to run callbacks, so a loop blocked by a
sync call in an async handler is seen as hung. Limits (requests, memory, lifetime) do not stop the
worker: it tells the master, which starts a replacement first and then sends `drain`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import sys
from typing import NoReturn

from palfrey.config import Config
from palfrey.metrics.supervisor import send_snapshot
from palfrey.server.server import Server
from palfrey.supervisor.channel import DRAIN, PING, PONG, READY, RECYCLE, STATS, Channel
from palfrey.supervisor.process import reopen_log_files, reset_signals, set_title
from palfrey.supervisor.reuseport import bind_reuse_port

logger = logging.getLogger("palfrey.error")

DRAIN_GRACE = 0.1  # seconds of Connection: close answers before idle keep-alive connections are closed
MEMORY_SAMPLE_INTERVAL = 1.0  # seconds between RSS samples when --limit-max-memory is set
# A lifetime limit is stretched by up to this fraction, so workers do not retire together.
LIFETIME_JITTER = 0.1


def run_worker(config: Config, sockets: list[socket.socket], channel: Channel) -> NoReturn:
    """Entry point in the forked child: never returns, always leaves through os._exit.

    os._exit keeps the child from running the parent's cleanup (atexit hooks, a caller's `finally`).
    """
    code = 1
    try:
        reset_signals()
        set_title("worker", config.app)
        code = WorkerProcess(config, sockets, channel).run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        logger.exception("Worker (pid %d) failed", os.getpid())
        code = 1
    finally:
        for handler in _all_handlers():
            try:
                handler.flush()
            except Exception:
                pass
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _all_handlers() -> list[logging.Handler]:
    handlers = list(logging.getLogger().handlers)
    for item in logging.Logger.manager.loggerDict.values():
        if isinstance(item, logging.Logger):
            handlers.extend(item.handlers)
    return handlers


class WorkerProcess:
    """Wires one Server to the master: readiness, pongs, drain, and limits that ask for recycling."""

    def __init__(self, config: Config, sockets: list[socket.socket], channel: Channel) -> None:
        # The Server must not exit on its own at the request limit: the master recycles it.
        self.config = config
        self.server_config = config.replace(limit_max_requests=None) if config.limit_max_requests else config
        self.sockets = sockets
        self.channel = channel
        self.server = Server(self.server_config)
        self.server.log_listening = False
        self.server.metrics_endpoint = False  # --metrics: the master serves scrapes; we send it snapshots
        self.server.on_started = self._started
        self.loop: asyncio.AbstractEventLoop | None = None
        self.recycle_asked = False
        self.max_requests: int | None = None
        if config.limit_max_requests is not None:
            self.max_requests = config.limit_max_requests + random.randint(
                0, config.limit_max_requests_jitter
            )

    def run(self) -> int:
        if self.config.reuse_port:
            self.sockets = [bind_reuse_port(self.config, self.sockets)]
        try:
            return self.server.run(self.sockets)
        finally:  # --metrics: the final counts, after the drain, so a recycled worker's requests all count
            send_snapshot(self.channel, self.server.state)
            self.channel.flush(timeout=1.0)

    def _started(self) -> None:
        """Called by the Server inside its loop once it listens: from here on the loop answers pings."""
        loop = self.loop = asyncio.get_running_loop()
        state = self.server.state
        assert state is not None
        loop.add_reader(self.channel.fileno(), self._on_channel)
        try:
            loop.add_signal_handler(signal.SIGUSR1, self._reopen_logs)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        if self.max_requests is not None:
            state.on_request_done = self._request_done
        if self.config.limit_max_memory is not None:
            loop.call_later(MEMORY_SAMPLE_INTERVAL, self._sample_memory)
        if self.config.limit_worker_lifetime is not None:
            lifetime = self.config.limit_worker_lifetime
            lifetime += random.uniform(0, lifetime * LIFETIME_JITTER)
            loop.call_later(
                lifetime, self._ask_recycle, "lifetime", f"reached its lifetime of {lifetime:.0f}s"
            )
        self.channel.send(READY)

    def _on_channel(self) -> None:
        for message in self.channel.receive():
            if message == PING:
                self.channel.send(PONG)
                send_snapshot(self.channel, self.server.state)  # --metrics: pushed, so a crash loses ~1s
            elif message == DRAIN:
                self._drain()
            elif message.startswith(STATS):  # a scrape: a fresh snapshot, tagged with its number
                send_snapshot(self.channel, self.server.state, message[len(STATS) + 1 :])
        if self.channel.closed:
            # The master is gone (killed, or crashed): nobody will supervise us, so stop cleanly.
            assert self.loop is not None
            self.loop.remove_reader(self.channel.fileno())
            if not self.server.should_exit:
                logger.warning("Worker (pid %d): master went away; shutting down", os.getpid())
                self.server.request_exit()

    def _drain(self) -> None:
        """Answer every request from now on with `Connection: close`, then shut down gracefully.

        A client sending back to back on a keep-alive connection gets its next answer with
        `Connection: close` and reconnects to another worker; only a connection still idle after the
        grace is closed. Closing idle connections at the very instant of the drain would race with
        requests already on their way, which clients see as a reset connection.
        """
        logger.info("Worker (pid %d) draining: finishing in-flight requests", os.getpid())
        state = self.server.state
        assert state is not None and self.loop is not None
        state.draining = True
        state.restarting = True  # a replacement serves on: open WebSockets close with 1012, not 1001
        self.loop.call_later(DRAIN_GRACE, self.server.request_exit)

    def _reopen_logs(self) -> None:
        count = reopen_log_files()
        logger.info("Worker (pid %d) reopened %d log file(s)", os.getpid(), count)

    def _request_done(self) -> None:
        state = self.server.state
        if state is not None and self.max_requests is not None and state.total_requests >= self.max_requests:
            self._ask_recycle(
                "max-requests", f"served {state.total_requests} requests (limit {self.max_requests})"
            )

    def _sample_memory(self) -> None:
        limit = self.config.limit_max_memory
        rss = rss_mib()
        if rss is not None and rss >= limit:
            self._ask_recycle("memory", f"uses {rss:.0f} MiB of memory (limit {limit} MiB)")
            return
        if self.loop is not None and not self.server.should_exit:
            self.loop.call_later(MEMORY_SAMPLE_INTERVAL, self._sample_memory)

    def _ask_recycle(self, kind: str, reason: str) -> None:
        if self.recycle_asked or self.server.should_exit:
            return
        self.recycle_asked = True
        if self.max_requests is not None and self.server.state is not None:
            self.server.state.on_request_done = None
        self.channel.send(f"{RECYCLE} {kind} {reason}")


def rss_mib() -> float | None:
    """Resident memory of this process in MiB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm", "rb") as file:
            pages = int(file.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1048576
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1048576 if sys.platform == "darwin" else peak / 1024
