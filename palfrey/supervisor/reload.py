"""--reload: a forked file-watcher process that writes one byte to a pipe per batch of changes.

The watcher is a separate child so the master stays free of threads (watchfiles runs its own) and of
polling: the master just sees the pipe become readable and rolls the workers over, replacement first,
exactly like HUP, so --reload works with any number of workers. Without watchfiles the child polls
file modification times every --reload-delay seconds instead.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from palfrey.config import Config
from palfrey.supervisor.process import fork, reset_signals, set_title

logger = logging.getLogger("palfrey.error")

DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", ".py[cod]", "*.py[cod]", ".sw.*", "~*", "__pycache__")


class Reloader:
    """The master's handle on the watcher child: `start()` gives the fd to select on."""

    def __init__(self, config: Config) -> None:
        self.dirs = [str(Path(d).resolve()) for d in config.reload_dirs] or [os.getcwd()]
        self.accept = make_filter(self.dirs, config.reload_includes, config.reload_excludes)
        self.delay = float(config.reload_delay)
        self.app = config.app
        self.pid: int | None = None
        self.fd = -1

    def start(self) -> int:
        read_fd, write_fd = os.pipe()
        pid = fork()
        if pid == 0:
            os.close(read_fd)
            code = 0
            try:
                reset_signals()
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the master's to handle
                set_title("reloader", self.app)
                self._watch(write_fd, os.getppid())
            except BaseException:
                logger.exception("The file watcher failed")
                code = 1
            os._exit(code)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.pid, self.fd = pid, read_fd
        logger.info(
            "Will watch for changes in these directories: %s (%s)",
            ", ".join(repr(d) for d in self.dirs),
            "watchfiles" if _has_watchfiles() else "stat polling",
        )
        return read_fd

    def read(self) -> bool | None:
        """True when files changed, False for nothing new, None when the watcher is gone."""
        try:
            data = os.read(self.fd, 4096)
        except (BlockingIOError, InterruptedError):
            return False
        return bool(data) if data else None

    def stop(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGTERM)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1

    def close_in_child(self) -> None:
        self.close()

    # In the watcher child

    def _watch(self, write_fd: int, master: int) -> None:
        def notify(paths: Iterable[str]) -> bool:
            names = sorted({os.path.relpath(p) for p in paths})
            logger.warning("Detected changes in %s. Reloading...", ", ".join(repr(n) for n in names[:5]))
            try:
                os.write(write_fd, b"!")
            except OSError:  # the master is gone
                return False
            return True

        if _has_watchfiles():
            _watch_with_watchfiles(self.dirs, self.accept, self.delay, master, notify)
        else:
            _watch_with_stat(self.dirs, self.accept, self.delay, master, notify)


def _has_watchfiles() -> bool:
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        return False
    return True


def _watch_with_watchfiles(
    dirs: list[str], accept: Callable[[str], bool], delay: float, master: int, notify: Callable[..., bool]
) -> None:
    import watchfiles

    for changes in watchfiles.watch(
        *dirs,
        watch_filter=lambda _change, path: accept(path),
        step=max(1, int(delay * 1000)),
        rust_timeout=1000,
        yield_on_timeout=True,
        raise_interrupt=False,
    ):
        if os.getppid() != master:
            return
        if changes and not notify(path for _, path in changes):
            return


def _watch_with_stat(
    dirs: list[str], accept: Callable[[str], bool], delay: float, master: int, notify: Callable[..., bool]
) -> None:
    """The fallback: compare modification times every `delay` seconds (this child only sleeps)."""
    known = _snapshot(dirs, accept)
    while os.getppid() == master:
        time.sleep(max(delay, 0.05))
        current = _snapshot(dirs, accept)
        changed = [p for p, mtime in current.items() if known.get(p) != mtime]
        changed += [p for p in known if p not in current]
        known = current
        if changed and not notify(changed):
            return


def _snapshot(dirs: list[str], accept: Callable[[str], bool]) -> dict[str, float]:
    found: dict[str, float] = {}
    for top in dirs:
        for root, subdirs, files in os.walk(top):
            subdirs[:] = [d for d in subdirs if accept(os.path.join(root, d, ""))]
            for name in files:
                path = os.path.join(root, name)
                if accept(path):
                    with contextlib.suppress(OSError):
                        found[path] = os.stat(path).st_mtime
    return found


def make_filter(dirs: list[str], includes: Iterable[str], excludes: Iterable[str]) -> Callable[[str], bool]:
    """A path filter: a file counts if its name matches an include glob (`*.py` always) and neither its
    name nor a directory between the watched root and it matches an exclude glob.

    A path ending in a separator is a directory: only the exclude globs apply to it.
    """
    include = [*DEFAULT_INCLUDES, *includes]
    exclude = [e for e in (*DEFAULT_EXCLUDES, *excludes) if e not in include]

    def matches(name: str, path: Path, patterns: list[str]) -> bool:
        return any(fnmatch.fnmatch(name, p) or ("/" in p and path.match(p)) for p in patterns)

    def accept(raw: str) -> bool:
        is_dir = raw.endswith(os.sep)
        path = Path(raw)
        parts = _relative_parts(path, dirs)
        if any(matches(part, path, exclude) for part in parts):
            return False
        return is_dir or matches(path.name, path, include)

    return accept


def _relative_parts(path: Path, dirs: list[str]) -> tuple[str, ...]:
    for top in dirs:
        with contextlib.suppress(ValueError):
            return path.relative_to(top).parts
    return (path.name,)
