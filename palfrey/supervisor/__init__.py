"""The pre-fork master and its workers (see master.py for the model, worker.py for the child side).

`palfrey app` with no supervision options stays one process, like uvicorn. A master runs when more
than one worker is asked for, for --reload, or when any option that only a master can honour is set:
a worker limit (--limit-max-requests/-memory, --limit-worker-lifetime), --timeout-worker-healthcheck,
--preload or --reuse-port. So `--workers 1 --limit-max-requests 1000` is one supervised worker that is
recycled replacement-first, with no gap in service.
"""

from __future__ import annotations

from palfrey.config import Config

DEFAULT_HEALTHCHECK_TIMEOUT = 5.0


def uses_master(config: Config) -> bool:
    """Whether `config` needs the pre-fork master rather than one plain server process."""
    return bool(
        config.workers > 1
        or config.reload
        or config.limit_max_requests is not None
        or config.limit_max_memory is not None
        or config.limit_worker_lifetime is not None
        or config.timeout_worker_healthcheck is not None
        or config.preload
        or config.reuse_port
    )
