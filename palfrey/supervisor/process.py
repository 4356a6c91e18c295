"""Small process-level helpers shared by the master and its workers.

CPU counting for `--workers auto`, process titles, the pid file, resetting inherited signal handlers,
reopening log files on USR1 and describing how a child ended. Each is a few lines; together they keep
master.py and worker.py about supervision and serving only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from palfrey.config import Config

logger = logging.getLogger("palfrey.error")

# Signals the master handles; a forked worker must not run the master's handlers for them.
MASTER_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGUSR1,
    signal.SIGCHLD,
)


def usable_cpus(cgroup_root: str = "/sys/fs/cgroup", proc_self: str = "/proc/self") -> int:
    """CPUs this process may really use: its affinity mask, capped by a cgroup CPU quota.

    os.cpu_count() reports the host's CPUs, which over-forks inside a container limited to two.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_self)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def cgroup_cpu_quota(cgroup_root: str = "/sys/fs/cgroup", proc_self: str = "/proc/self") -> float | None:
    """The CPU quota (in CPUs) of this process's cgroup (v2 `cpu.max` or v1 CFS files), if any."""
    root = Path(cgroup_root)
    v2_path, v1_path = "/", "/"
    try:
        for line in Path(proc_self, "cgroup").read_text().splitlines():
            hierarchy, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            if hierarchy == "0" and controllers == "":
                v2_path = path or "/"
            elif "cpu" in controllers.split(","):
                v1_path = path or "/"
    except OSError:
        pass
    for base in _candidates(root, v2_path):
        text = _read(base / "cpu.max")
        if text is not None:
            fields = text.split()
            if len(fields) == 2 and fields[0] != "max":
                return _ratio(fields[0], fields[1])
            return None
    for cpu_dir in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
        for base in _candidates(cpu_dir, v1_path):
            quota, period = _read(base / "cpu.cfs_quota_us"), _read(base / "cpu.cfs_period_us")
            if quota is not None and period is not None:
                return None if quota.strip() == "-1" else _ratio(quota, period)
    return None


def _candidates(root: Path, path: str) -> list[Path]:
    # Inside a container the cgroup is usually mounted at the root; outside, at its own path.
    nested = root / path.lstrip("/")
    return [nested, root] if nested != root else [root]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def set_title(role: str, app: Any) -> None:
    """`palfrey: master [main:app]` in ps/top, when setproctitle is installed."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    name = app if isinstance(app, str) else getattr(app, "__name__", type(app).__name__)
    setproctitle(f"palfrey: {role} [{name}]")


@contextlib.contextmanager
def pid_file(path: str | None) -> Iterator[None]:
    """Write this process's pid for init scripts; remove the file on exit if it is still ours."""
    if path is None:
        yield
        return
    pid = os.getpid()
    Path(path).write_text(f"{pid}\n")
    try:
        yield
    finally:
        if os.getpid() == pid:
            with contextlib.suppress(OSError):
                if Path(path).read_text().strip() == str(pid):
                    os.unlink(path)


def fork() -> int:
    """os.fork() with the master's signals blocked across it.

    Otherwise a signal landing in the child before reset_signals() would run the master's handler
    and write into the master's wake-up pipe, which the child shares: the master would act on a
    signal nobody sent it. The child unblocks them in reset_signals(); the parent right here.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        raise
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


def reset_signals() -> None:
    """In a fresh worker: drop the master's handlers and wake-up fd, so signals mean what a worker expects.

    HUP, TTIN and TTOU address the master; a worker ignores them (a terminal hang-up or a stray TTIN
    must not stop it). TERM, INT and QUIT are taken over by the worker's Server.
    """
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    for sig in MASTER_SIGNALS:
        if sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)
        elif sig == signal.SIGINT:
            signal.signal(sig, signal.default_int_handler)
        else:
            signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)


def reopen_log_files() -> int:
    """USR1: reopen every file handler (after logrotate moved the file away); returns how many."""
    handlers: list[logging.Handler] = list(logging.getLogger().handlers)
    for logger_ in logging.Logger.manager.loggerDict.values():
        if isinstance(logger_, logging.Logger):
            handlers.extend(logger_.handlers)
    reopened = 0
    for handler in {id(h): h for h in handlers}.values():
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                if handler.stream is not None:
                    handler.stream.close()
                handler.stream = handler._open()
                reopened += 1
            finally:
                handler.release()
    return reopened


def signal_all(pids: list[int], sig: int) -> None:
    """Send `sig` to every pid, ignoring processes that are already gone."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def ready_line(target: int, pids: str) -> str:
    """The log line once every worker is ready: "1 worker ready (pid 7)", "All 2 workers ready (pids 7, 8)"."""
    return f"1 worker ready (pid {pids})" if target == 1 else f"All {target} workers ready (pids {pids})"


def describe_status(status: int) -> tuple[int | None, int | None, str]:
    """Decode a waitpid status into (exit code, signal, 'exit code 3' / 'signal SIGKILL')."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return None, sig, f"signal {name}"
    code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
    return code, None, f"exit code {code}"


def reload_env_file(path: str) -> None:
    """HUP re-reads --env-file, so new workers see changed values."""
    try:
        from dotenv import load_dotenv

        load_dotenv(dotenv_path=path, override=True)
    except Exception as exc:  # a broken file must not take the running workers down
        logger.error("Could not re-read --env-file %s: %s", path, exc)


def is_stopped(pid: int) -> bool:
    """Whether `pid` is stopped by a signal (SIGSTOP, SIGTSTP: state 'T' in /proc/PID/stat).

    A stopped process cannot run a SIGTERM handler, so the master goes straight to SIGKILL for it.
    A traced stop ('t', a debugger) is left alone. False where /proc cannot tell.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rpartition(b")")[2].split()[0] == b"T"
    except (OSError, IndexError):
        return False


def preload(config: Config) -> Config | None:
    """--preload: import the app in the master (shared copy-on-write). Returns the workers' config with
    the raw app in it (each worker still wraps it, ASGI 2 or WSGI, in its own process), or None after
    logging why it failed."""
    import threading

    from palfrey.importer import AppLoadError, load_app, log_app_load_error

    try:
        app = load_app(config.app, app_dir=config.app_dir, factory=config.factory)
    except AppLoadError as exc:
        log_app_load_error(logger, exc)
        logger.error("The app could not be preloaded; stopping (exit code 3).")
        return None
    if threading.active_count() > 1:
        logger.warning("The app started threads at import; forked workers will not have them.")
    return config.replace(app=app, factory=False)
