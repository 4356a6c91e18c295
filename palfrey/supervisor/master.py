"""The pre-fork master: binds the listeners, forks workers and keeps the right number of them healthy.

The master has no threads and no event loop, so `os.fork()` is safe. Its loop is one `selectors` wait
over the workers' control channels, the signal wake-up pipe and the reloader's pipe, with a timeout
that is the next deadline (a ping, a boot or kill deadline): it never sleeps to poll.

What to spawn, drain or kill is decided by the pure `policy.plan()` (see policy.py for the rules):
a worker at its limit is replaced at once and takes no new work meanwhile; HUP and --reload roll
workers over replacement first. Workers that die at runtime are always replaced (with a growing
delay if they keep dying young, `policy.Backoff`); only workers that cannot boot stop the master.
Once a shutdown has begun, by any signal path, a worker's exit is expected and never replaced.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import selectors
import signal
import socket
import threading
import time

from palfrey.config import Config, ConfigError
from palfrey.errors import EXIT_BOOT
from palfrey.metrics.supervisor import MasterMetrics, NullMetrics, master_metrics
from palfrey.server.sockets import bind_sockets, describe
from palfrey.supervisor import DEFAULT_HEALTHCHECK_TIMEOUT
from palfrey.supervisor.channel import (
    MSG_BOOT_ERROR,
    MSG_MEMORY_FLOOR,
    MSG_PONG,
    MSG_READY,
    MSG_RECYCLE,
    MSG_SIGNALLED,
    MSG_STATS,
    Channel,
)
from palfrey.supervisor.deaths import Deaths, crash_label, judge
from palfrey.supervisor.handle import BOOTING, READY, STOPPING, WorkerHandle
from palfrey.supervisor.health import INF, HealthCheck
from palfrey.supervisor.policy import plan, readiness
from palfrey.supervisor.probes import Probes
from palfrey.supervisor.process import (
    MASTER_SIGNALS,
    describe_status,
    fork,
    pid_file,
    preload,
    ready_line,
    reload_env_file,
    reopen_log_files,
    reset_signals,
    set_title,
    signal_all,
)
from palfrey.supervisor.reload import Reloader
from palfrey.supervisor.reuseport import SlotListeners, reserve_sockets
from palfrey.supervisor.signals import SignalPipe
from palfrey.supervisor.worker import run_worker

logger = logging.getLogger("palfrey.error")

STOP_MARGIN = 2.0  # beyond --timeout-graceful-shutdown, for the worker's own lifespan shutdown
QUIT_GRACE = 1.0  # immediate stop: SIGQUIT, then SIGKILL after this long


class Master:
    """`Master(config).run()` supervises `config.workers` workers and returns the exit code."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.worker_config = config
        self.target = config.workers or 1
        self.workers: dict[int, WorkerHandle] = {}
        self.generation = 0
        self.health = HealthCheck(
            config.timeout_worker_healthcheck or DEFAULT_HEALTHCHECK_TIMEOUT, config.timeout_worker_boot
        )
        self.selector = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        self.slots: SlotListeners | None = None  # --reuse-port: one listener per worker slot
        self.stopping: str | None = None  # "graceful" or "immediate"
        self.stop_deadline = INF
        self.exit_code = 0
        self.deaths = Deaths()  # the crash backoff, and workers dying before they were ever ready
        self.all_ready = False
        self.restarting = False  # a HUP / reload rollout is under way
        self.restart_kind = "hup"  # why the rollout under way replaces workers: "hup" or "reload"
        self.metrics: MasterMetrics | NullMetrics = NullMetrics()  # --metrics: counters, scrape listener
        self.waiting_for_change = False  # --reload after a failed boot: try again on the next change
        self.reloader: Reloader | None = None
        self.signals = SignalPipe(MASTER_SIGNALS)
        self.probes = Probes(self)  # --health-bind, --shutdown-delay

    # Lifecycle

    def run(self) -> int:
        with pid_file(self.config.pid):
            try:
                return self._run()
            finally:
                self._cleanup()

    def _run(self) -> int:
        config = self.config
        logger.info("Started master process [%d]", os.getpid())
        set_title("master", config.app)
        if threading.current_thread() is not threading.main_thread():
            logger.error("The pre-fork master must run in the main thread (it owns the signals).")
            return 1
        if threading.active_count() > 1:
            logger.warning("The master is forking workers from a process with threads; prefer the CLI.")
        if config.reload:  # forked first, so the watcher holds none of the listeners
            self.reloader = Reloader(config)
            fd = self.reloader.start()
            self.selector.register(fd, selectors.EVENT_READ, self._on_reloader)
        try:
            self.sockets = reserve_sockets(config) if config.reuse_port else bind_sockets(config)
            self.slots = SlotListeners(config, self.sockets) if config.reuse_port else None
            self.metrics = master_metrics(self)
            self.probes.start()
        except ConfigError as exc:
            logger.error("%s", exc)
            return 1
        for sock in self.sockets:
            logger.info("Palfrey running on %s (Press CTRL+C to quit)", describe(sock, config.is_ssl))
        # Workers serve sockets they inherit: they must not unlink --uds when one of them drains.
        self.worker_config = config.replace(uds=None) if config.uds else config
        if config.preload:
            preloaded = preload(self.worker_config)
            if preloaded is None:
                return EXIT_BOOT
            self.worker_config = preloaded
        self._install_signals()
        logger.info("Starting %d worker%s", self.target, "" if self.target == 1 else "s")
        self._manage(time.monotonic())
        while not (self.stopping and not self.workers):
            timeout = self._next_deadline() - time.monotonic()
            for key, _ in self.selector.select(None if timeout == INF else max(0.0, timeout)):
                key.data()
            self._reap()
            now = time.monotonic()
            self._check_timers(now)
            self._manage(now)
        logger.info("Master process [%d] finished (exit code %d)", os.getpid(), self.exit_code)
        return self.exit_code

    def _cleanup(self) -> None:
        self.metrics.close()
        self.probes.close()
        if self.reloader is not None:
            self.reloader.stop()
        for handle in self.workers.values():  # only after an error: a normal stop has none left
            with contextlib.suppress(OSError):
                os.kill(handle.pid, signal.SIGKILL)
                os.waitpid(handle.pid, 0)
        self.signals.restore()
        self.selector.close()
        for sock in self.sockets:
            sock.close()
        if self.slots is not None:
            self.slots.close()
        if self.config.uds and not self.config.reuse_port:
            with contextlib.suppress(OSError):
                os.unlink(self.config.uds)

    # Signals arrive as bytes on a pipe (see signals.py) and are handled here, in the loop.

    def _install_signals(self) -> None:
        self.selector.register(self.signals.install(), selectors.EVENT_READ, self._on_signals)

    def _on_signals(self) -> None:
        for number in self.signals.read():
            self._handle_signal(number)

    def _handle_signal(self, sig: int) -> None:
        self.metrics.signal(sig)
        if sig == signal.SIGCHLD:
            return  # the loop reaps after every wake-up
        name = signal.Signals(sig).name
        if sig == signal.SIGTERM:
            if not self.probes.on_term(time.monotonic()):  # --shutdown-delay: stop when it is over
                self.stop(f"Received {name}", immediate=False)
        elif sig == signal.SIGINT:
            self.stop(f"Received {name}", immediate=self.stopping is not None)
        elif sig == signal.SIGQUIT:
            self.stop(f"Received {name}", immediate=True)
        elif self.stopping:
            return
        elif sig == signal.SIGHUP:
            self.restart_all(f"Received {name}", kind="hup")
        elif sig == signal.SIGTTIN:
            self.target += 1
            logger.info("Received %s: increasing to %d workers", name, self.target)
        elif sig == signal.SIGTTOU:
            if self.target > 1:
                self.target -= 1
                logger.info("Received %s: decreasing to %d workers", name, self.target)
            else:
                logger.info("Received %s: already at one worker", name)
        elif sig == signal.SIGUSR1:
            logger.info("Received %s: reopened %d log file(s); telling the workers", name, reopen_log_files())
            signal_all([handle.pid for handle in self.workers.values()], signal.SIGUSR1)

    # Commands

    def stop(self, reason: str, immediate: bool) -> None:
        """Graceful: TERM every worker and give them --timeout-graceful-shutdown. Immediate: QUIT, then KILL."""
        if self.stopping == "immediate" or (self.stopping == "graceful" and not immediate):
            return
        now = time.monotonic()
        if immediate:
            logger.info("%s: stopping now", reason)
            self.stopping = "immediate"
            self.stop_deadline = now + QUIT_GRACE
            sig = signal.SIGQUIT
        else:
            logger.info("%s: shutting down gracefully", reason)
            self.stopping = "graceful"
            grace = self.config.timeout_graceful_shutdown
            self.stop_deadline = INF if grace is None else now + grace + STOP_MARGIN
            sig = signal.SIGTERM
        if self.reloader is not None:
            self.reloader.stop()
        for sock in self.sockets:  # the workers hold their own copies; new workers are not forked now
            sock.close()
        if self.slots is not None:
            self.slots.close()
        for handle in self.workers.values():
            handle.exit_expected = True
            handle.ping_sent = None
            if handle.state != STOPPING or immediate:
                handle.state = STOPPING
                with contextlib.suppress(OSError):
                    os.kill(handle.pid, sig)

    def restart_all(self, reason: str, kind: str = "hup") -> None:
        """HUP and --reload: every worker is rolled over, replacement first (see policy.plan)."""
        self.restart_kind = kind
        if self.config.env_file:
            reload_env_file(self.config.env_file)
        self.generation += 1
        self.deaths.backoff.reset()  # the operator asked for new workers: no crash delay for them
        self.restarting = True
        self.waiting_for_change = False
        if self.config.preload:
            logger.warning(
                "%s: restarting workers; with --preload they keep the code the master loaded", reason
            )
        else:
            logger.info("%s: restarting all workers, replacement first", reason)

    def fail(self, message: str) -> None:
        """Stop everything with exit code 3: booting in a loop would only repeat the same failure."""
        if self.stopping:
            return
        logger.error("%s", message)
        self.exit_code = EXIT_BOOT
        self.stop("Stopping", immediate=False)

    # Workers

    def spawn(self, now: float, replaces: WorkerHandle | None = None) -> WorkerHandle:
        slot = replaces.slot if replaces is not None else WorkerHandle.free_slot(list(self.workers.values()))
        sockets = self.sockets if self.slots is None else self.slots.for_slot(slot)
        master_end, worker_end = Channel.pair()
        pid = fork()
        if pid == 0:  # the child: drop the master's resources, then serve (never returns)
            reset_signals()
            self._close_in_child(master_end, slot)
            run_worker(self.worker_config, sockets, worker_end)
        worker_end.close()
        handle = WorkerHandle(
            pid=pid,
            channel=master_end,
            generation=self.generation,
            started=now,
            boot_deadline=now + self.health.boot_timeout,
            replaces=replaces,
            slot=slot,
        )
        if replaces is not None:
            replaces.replaced_by = handle
        self.workers[pid] = handle
        self.selector.register(
            master_end.sock, selectors.EVENT_READ, functools.partial(self._on_channel, handle)
        )
        logger.info("Booting worker (pid %d)", pid)
        return handle

    def _close_in_child(self, master_end: Channel, slot: int) -> None:
        # Closing (not unregistering) leaves the master's shared epoll interest list alone.
        master_end.sock.close()
        for handle in self.workers.values():
            handle.channel.sock.close()
        self.metrics.close_in_child()
        self.probes.close_in_child()
        if self.slots is not None:
            self.slots.close_in_child(keep=slot)
        self.selector.close()
        self.signals.close()
        if self.reloader is not None:
            self.reloader.close_in_child()

    def _on_channel(self, handle: WorkerHandle) -> None:
        for message in handle.channel.receive():
            verb, _, argument = message.partition(" ")
            if verb == MSG_PONG:
                self.metrics.pong(handle, time.monotonic())
                handle.ping_sent = None
            elif verb == MSG_STATS:
                self.metrics.stats(handle, argument)
            elif verb == MSG_READY:
                handle.ready(time.monotonic())
            elif verb == MSG_RECYCLE and handle.recycle_reason is None and handle.state == READY:
                self._recycle(handle, argument)
            elif verb == MSG_SIGNALLED:
                handle.signalled = argument
            elif verb == MSG_BOOT_ERROR:
                self.deaths.boot_error(handle, argument)
            elif verb == MSG_MEMORY_FLOOR:
                self.deaths.memory_floor(handle, argument)
        if handle.channel.closed:
            self._forget_channel(handle)

    def _forget_channel(self, handle: WorkerHandle) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(handle.channel.sock)
        handle.channel.close()

    def _recycle(self, handle: WorkerHandle, argument: str) -> None:
        """The worker reached a limit: it takes no new work from now on; the policy replaces it at once."""
        handle.recycle_kind, _, handle.recycle_reason = argument.partition(" ")
        self.metrics.restart(handle.recycle_kind)
        logger.info(
            "Worker (pid %d) %s: recycling it (it stopped accepting; its replacement starts now)",
            handle.pid,
            handle.recycle_reason,
        )
        handle.draining(self._kill_at(time.monotonic()))

    def drain(self, handle: WorkerHandle, reason: str, now: float) -> None:
        handle.drain(reason, self._kill_at(now))

    def _kill_at(self, now: float) -> float | None:
        """When a draining worker gets SIGKILL: --timeout-graceful-shutdown plus its lifespan shutdown."""
        grace = self.config.timeout_graceful_shutdown
        return None if grace is None else now + grace + STOP_MARGIN

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._exited(pid, status)

    def _exited(self, pid: int, status: int) -> None:
        code, sig, text = describe_status(status)
        if self.reloader is not None and pid == self.reloader.pid:
            self.reloader.pid = None
            if not self.stopping:
                logger.warning("The file watcher (pid %d) exited (%s); --reload is off now", pid, text)
            return
        handle = self.workers.pop(pid, None)
        if handle is None:
            logger.debug("Reaped child process %d (%s)", pid, text)
            return
        slot_free = all(w.slot != handle.slot for w in self.workers.values())
        if self.slots is not None and handle.slot >= self.target and slot_free:  # fewer workers (TTOU)
            self.slots.release(handle.slot)
        if not (handle.exit_expected or self.stopping) and self.signals.read_fd >= 0:
            # A signal to the whole group reaches the workers and the master at once; the worker may
            # exit before the master's loop has read its own copy. Read it now, before judging.
            self._on_signals()
        self.metrics.exited(handle)  # its final snapshot, if it sent one, joins the totals
        self._forget_channel(handle)
        old = handle.replaces
        handle.unlink()
        now = time.monotonic()
        verdict = judge(handle, code, sig, expected=self.stopping is not None)
        if verdict == "expected":
            logger.info("Worker (pid %d) exited (%s)", pid, text)
        elif verdict == "boot-failed":
            self._boot_failed(handle, old)
        elif verdict == "outside":
            self.metrics.restart("stopped")
            self.deaths.outside(handle, text, now)
        else:
            self.metrics.restart(crash_label(sig))
            stop = self.deaths.crashed(handle, sig, text, now, self.target)
            if stop is not None:
                self.fail(stop)

    def _boot_failed(self, handle: WorkerHandle, old: WorkerHandle | None) -> None:
        if self.config.reload:
            logger.error("Worker (pid %d) failed to boot; waiting for a file change to try again", handle.pid)
            self.waiting_for_change = True
            self._abort_rollout()
            return
        if old is not None and old.pid in self.workers and old.state == READY:
            logger.error(
                "Replacement worker (pid %d) failed to boot; worker (pid %d) keeps serving and the "
                "restart is abandoned",
                handle.pid,
                old.pid,
            )
            self._abort_rollout()
            return
        self.fail(f"Worker (pid {handle.pid}) failed to boot (exit code {EXIT_BOOT}); stopping the master.")

    def _abort_rollout(self) -> None:
        self.restarting = False
        for worker in self.workers.values():
            worker.generation = self.generation
            if worker.state == READY:
                worker.recycle_reason = None

    # The loop's housekeeping

    def _check_timers(self, now: float) -> None:
        workers = list(self.workers.values())
        if not self.stopping:
            for handle, reason, stopped in self.health.overdue(workers, now):
                booting = handle.state == BOOTING
                self.metrics.restart("boot-timeout" if booting else "healthcheck")
                handle.kill(reason, now, "kill" if stopped else "dump")
                stop = self.deaths.boot_death(now, self.target) if booting else None
                if stop is not None:
                    self.fail(stop)
            self.health.ping_due(workers, now)
        for handle in workers:
            if handle.kill_at is not None and now >= handle.kill_at:
                handle.kill_at = None
                logger.warning("Worker (pid %d) did not exit in time; sending SIGKILL", handle.pid)
                signal_all([handle.pid], signal.SIGKILL)
        self.metrics.check(now)
        self.probes.check(now)
        if self.probes.delay_over(now):
            self.stop("Shutdown delay over", immediate=False)
        if now >= self.stop_deadline:
            self.stop_deadline = INF
            pids = [handle.pid for handle in self.workers.values()]
            for pid in pids:
                logger.warning(
                    "Worker (pid %d) still running after the shutdown timeout; sending SIGKILL", pid
                )
            signal_all(pids, signal.SIGKILL)

    def _next_deadline(self) -> float:
        workers = list(self.workers.values())
        wake = self.deaths.backoff.not_before if self.deaths.backoff.not_before > time.monotonic() else INF
        parts = (
            self.health.next_deadline(workers),
            self.metrics.next_deadline(),
            self.probes.next_deadline(),
        )
        return min(self.stop_deadline, wake, *parts)

    def _manage(self, now: float) -> None:
        """Carry out the policy's next actions (policy.plan), then log when every worker is ready."""
        if self.stopping or self.waiting_for_change:
            return
        workers = list(self.workers.values())
        actions = plan(workers, self.target, self.generation, now, self.deaths.backoff.not_before)
        for old, reason in actions.drain:
            if old.recycle_reason is None and old.replaced_by is not None:
                self.metrics.restart(self.restart_kind)
            self.drain(old, reason, now)
        for handle, reason in actions.kill:
            handle.kill(reason, now)
        for replaces in actions.spawn:
            self.spawn(now, replaces=replaces)
        self._log_all_ready()

    def _log_all_ready(self) -> None:
        ready, settled, pids = readiness(list(self.workers.values()), self.target, self.generation)
        if ready and not self.all_ready:
            logger.info("%s", ready_line(self.target, pids))
        self.all_ready = ready
        if settled and self.restarting:
            self.restarting = False
            logger.info("Restart complete: every worker was replaced (pids %s)", pids)

    def _on_reloader(self) -> None:
        assert self.reloader is not None
        changed = self.reloader.read()
        if changed is None:
            self.selector.unregister(self.reloader.fd)
            self.reloader.close()
        elif changed and not self.stopping:
            self.restart_all("Files changed", kind="reload")
