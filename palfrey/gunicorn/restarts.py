"""Tell, inside a gunicorn worker, whether a TERM means "replaced" (HUP) or "the server stops".

palfrey's own master tells its workers why they drain; gunicorn's arbiter sends the same TERM for a
HUP (new workers are already running), a scale-down (TTOU) and a shutdown, and the worker cannot see
the HUP itself. What distinguishes them is in the master: on HUP the arbiter re-runs its `setup()`,
which reads `cfg.worker_class`, and gunicorn calls the worker class's `setup()` classmethod every time
it resolves that setting (gevent's worker patches there) — in the master, before it forks the new
workers. Nothing else in gunicorn resolves it.

So the master keeps a reload counter in one page of anonymous shared memory (created before the
first fork, so every worker maps the same page): `note_setup()` bumps it on every setup after the
first. A worker remembers the counter's value when the arbiter creates it (in the master, just before
the fork); a TERM that arrives after the counter moved on is a restart (WebSockets close with 1012,
"service restart"); any other TERM — shutdown, TTOU, the arbiter gone — is the server going away
(1001). Without the page (a worker built where no arbiter ran `check_config`) every TERM is 1001.
"""

from __future__ import annotations

import mmap
import struct

_COUNTER = struct.Struct("=Q")
_page: mmap.mmap | None = None


def note_setup() -> None:
    """Called by the worker class's `setup()` in gunicorn's master: the first call (boot) maps the
    shared page, before any fork; every later call is a HUP reload and bumps the counter."""
    global _page
    if _page is None:
        _page = mmap.mmap(-1, mmap.PAGESIZE)  # anonymous MAP_SHARED: inherited by every fork
        return
    _COUNTER.pack_into(_page, 0, generation() + 1)


def generation() -> int:
    """How many HUP reloads the master has done (0 without the shared page)."""
    if _page is None:
        return 0
    value: int = _COUNTER.unpack_from(_page, 0)[0]
    return value


def reset_for_tests() -> None:
    """Forget the page (unit tests simulate several masters in one process)."""
    global _page
    _page = None
