"""Resident memory of a server, summed over its whole process tree (master + workers), from /proc.

Summing RSS counts pages shared between a master and its forked workers once per process; that is
what `ps` users see and it is the same rule for every server, so ratios stay fair.
"""

from __future__ import annotations

import threading
from pathlib import Path

PROC = Path("/proc")


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants that exist right now."""
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of one process, 0 if it is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(root: int) -> int:
    return sum(rss_bytes(pid) for pid in process_tree(root))


def tree_threads(root: int) -> int:
    """Threads of the whole tree, as the kernel counts them (0 for processes gone meanwhile)."""
    total = 0
    for pid in process_tree(root):
        try:
            total += len(list((PROC / str(pid) / "task").iterdir()))
        except OSError:
            pass
    return total


class PeakSampler:
    """Samples a tree's RSS and thread count on a thread until stopped and keeps the peaks (load
    changes memory; an adaptive pool's size is the thread count)."""

    def __init__(self, root: int, interval: float = 0.25) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, tree_rss_bytes(self.root))
            self.peak_threads = max(self.peak_threads, tree_threads(self.root))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, tree_rss_bytes(self.root))
