"""The worker side of the pre-fork model: what a forked child does until it exits.

A worker is an ordinary `Server` on the sockets the master bound, plus a control channel read *by its
event loop*: a ping is answered only when the loop is free to run callbacks, so a loop blocked by a
sync call in an async handler is seen as hung (and SIGUSR2 makes faulthandler dump where it is stuck,
which the master asks for before killing it).

A limit (requests, memory, lifetime) is a limit: the moment a worker reaches one it tells the master
(which starts the replacement at once) and takes no new work: it stops accepting right away (the
listener stays open in the master, so its backlog holds new connections for the other workers or the
replacement; with --reuse-port that is its slot's own listener), every response from then on carries
`Connection: close`, in-flight requests finish, and the worker exits.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import logging
import os
import random
import signal
import socket
import sys
import traceback
from typing import NoReturn

from palfrey.config import Config
from palfrey.importer import AppLoadError
from palfrey.metrics.snapshot import resident_bytes
from palfrey.metrics.supervisor import send_snapshot
from palfrey.server.server import Server
from palfrey.supervisor.channel import (
    DUMP_SIGNAL,
    MSG_BOOT_ERROR,
    MSG_DRAIN,
    MSG_MEMORY_FLOOR,
    MSG_PING,
    MSG_PONG,
    MSG_READY,
    MSG_RECYCLE,
    MSG_SIGNALLED,
    MSG_STATS,
    Channel,
)
from palfrey.supervisor.process import reopen_log_files, reset_signals, set_title

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
        # faulthandler writes from its C signal handler, so it works while the loop is blocked in C
        # or in time.sleep; all threads, because a process signal may land on a thread-pool thread.
        faulthandler.register(DUMP_SIGNAL, file=sys.stderr, all_threads=True, chain=False)
        set_title("worker", config.app)
        code = WorkerProcess(config, sockets, channel).run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        code = 0  # Ctrl+C reached the whole group while this worker was still booting: a shutdown
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
        self.config = config
        self.sockets = sockets
        self.channel = channel
        self.server = Server(config)
        self.server.shares_listeners = config.workers > 1  # siblings to leave connections to
        self.server.log_listening = False
        self.server.metrics_endpoint = False  # --metrics, --health-bind: the master serves them
        self.server.shutdown_delay = 0.0  # --shutdown-delay is the master's: it sends TERM after it
        self.server.on_started = self._started
        self.server.on_boot_error = self._boot_error
        self.server.on_max_requests = self._max_requests_reached  # recycled, rather than just exiting
        self._server_signal = self.server.handle_signal
        self.server.handle_signal = self._signalled  # type: ignore[method-assign]
        self.loop: asyncio.AbstractEventLoop | None = None
        self.recycle_asked = False
        self.draining = False

    def run(self) -> int:
        try:
            return self.server.run(self.sockets)
        finally:  # --metrics: the final counts, after the drain, so a recycled worker's requests all count
            send_snapshot(self.channel, self.server.state)
            self.channel.flush(timeout=1.0)

    def _started(self) -> None:
        """Called by the Server inside its loop once it listens: from here on the loop answers pings."""
        loop = self.loop = asyncio.get_running_loop()
        loop.add_reader(self.channel.fileno(), self._on_channel)
        try:
            loop.add_signal_handler(signal.SIGUSR1, self._reopen_logs)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        limit = self.config.limit_max_memory
        if limit is not None:
            rss = _mib(resident_bytes())
            if rss is not None and rss >= limit:
                # Recycling would only start another worker just as big, in a loop: refuse, say why.
                self.channel.send(f"{MSG_MEMORY_FLOOR} {rss:.0f} {limit}")
            else:
                loop.call_later(MEMORY_SAMPLE_INTERVAL, self._sample_memory)
        if self.config.limit_worker_lifetime is not None:
            lifetime = self.config.limit_worker_lifetime
            lifetime += random.uniform(0, lifetime * LIFETIME_JITTER)
            loop.call_later(
                lifetime, self._ask_recycle, "lifetime", f"reached its lifetime of {lifetime:.0f}s"
            )
        self.channel.send(MSG_READY)

    def _boot_error(self, exc: AppLoadError) -> None:
        """The app cannot be loaded: tell the master, which logs the first worker's error only."""
        text = str(exc)
        if exc.show_traceback and exc.__cause__ is not None:
            text += "\n" + "".join(traceback.format_exception(exc.__cause__)).rstrip()
        if not self.channel.send(f"{MSG_BOOT_ERROR} {json.dumps(text)}"):
            logger.error("%s", text)  # no master to tell: say it here
        self.channel.flush(timeout=1.0)

    def _signalled(self, sig: int) -> None:
        """TERM/INT/QUIT reached this worker: tell the master before stopping, so it is not a crash.

        The master's own signals arrive here too (shutdown, health kill); it knows those already.
        """
        if not self.server.should_exit:
            self.channel.send(f"{MSG_SIGNALLED} {signal.Signals(sig).name}")
        self._server_signal(sig)

    def _on_channel(self) -> None:
        for message in self.channel.receive():
            if message == MSG_PING:
                self.channel.send(MSG_PONG)
                send_snapshot(self.channel, self.server.state)  # --metrics: pushed, so a crash loses ~1s
            elif message == MSG_DRAIN:
                self._drain()
            elif message.startswith(MSG_STATS):  # a scrape: a fresh snapshot, tagged with its number
                send_snapshot(self.channel, self.server.state, message[len(MSG_STATS) + 1 :])
        if self.channel.closed:
            # The master is gone (killed, or crashed): nobody will supervise us, so stop cleanly.
            assert self.loop is not None
            self.loop.remove_reader(self.channel.fileno())
            if not self.server.should_exit:
                logger.warning("Worker (pid %d): master went away; shutting down", os.getpid())
                self.server.request_exit()

    def _drain(self) -> None:
        """Take no new work: stop accepting, answer with `Connection: close`, then shut down gracefully.

        A client sending back to back on a keep-alive connection gets its next answer with
        `Connection: close` and reconnects to another worker; only a connection still idle after the
        grace is closed. Closing idle connections at the very instant of the drain would race with
        requests already on their way, which clients see as a reset connection.
        """
        if self.draining:
            return
        self.draining = True
        logger.info("Worker (pid %d) draining: finishing in-flight requests", os.getpid())
        state = self.server.state
        assert state is not None and self.loop is not None
        state.draining = True
        state.restarting = True  # a replacement serves on: open WebSockets close with 1012, not 1001
        state.on_request_done = None
        self.server.pause_accepting()
        self.loop.create_task(self.server.stop_accepting())
        self.loop.call_later(DRAIN_GRACE, self.server.request_exit)

    def _reopen_logs(self) -> None:
        count = reopen_log_files()
        logger.info("Worker (pid %d) reopened %d log file(s)", os.getpid(), count)

    def _max_requests_reached(self) -> None:
        state = self.server.state
        assert state is not None
        limit = self.server.max_requests
        self._ask_recycle("max-requests", f"served {state.total_requests} requests (limit {limit})")

    def _sample_memory(self) -> None:
        limit = self.config.limit_max_memory
        assert limit is not None
        rss = _mib(resident_bytes())
        if rss is not None and rss >= limit:
            self._ask_recycle("memory", f"uses {rss:.0f} MiB of memory (limit {limit} MiB)")
            return
        if self.loop is not None and not self.server.should_exit and not self.draining:
            self.loop.call_later(MEMORY_SAMPLE_INTERVAL, self._sample_memory)

    def _ask_recycle(self, kind: str, reason: str) -> None:
        """A limit is reached: tell the master, and from this moment take no new work."""
        if self.recycle_asked or self.server.should_exit or self.draining:
            return
        self.recycle_asked = True
        self.channel.send(f"{MSG_RECYCLE} {kind} {reason}")
        self._drain()


def _mib(size: int | None) -> float | None:
    return None if size is None else size / 1048576
