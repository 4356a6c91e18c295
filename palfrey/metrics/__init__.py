"""Prometheus metrics for the whole server, master and workers, on one endpoint (`--metrics`).

Layout (the design is in docs/metrics.md):

- `counters.py`: `Recorder`, the plain-Python counters a server process records into on the hot path.
- `snapshot.py`: a recorder (plus the process's gauges) as a JSON-able dict, and `Aggregate`, which
  sums the snapshots of live and finished workers so totals never go backwards across recycling.
- `supervisor.py`: what the pre-fork master adds (signals, restarts, health-check round trips,
  per-worker slots) and the scrape that asks every worker for a fresh snapshot.
- `endpoint.py`: the scrape listener, served from the master's selectors loop or, single-process,
  from the server's event loop.
- `exposition.py`: rendering with prometheus_client; the only module that imports it.
- `gunicorn_master.py`, `gunicorn_worker.py`: the same metrics under gunicorn's arbiter
  (`PALFREY_METRICS_BIND`): a collector thread in gunicorn's master, and the worker class's half.

Nothing here is imported unless `--metrics` is on, and prometheus_client only where the endpoint is
served (the master, or the single process), never in a forked worker.
"""

from __future__ import annotations

from importlib.util import find_spec

MISSING_CLIENT = (
    "needs prometheus_client: pip install prometheus_client (or install palfrey with its metrics extra)"
)


def client_available() -> bool:
    """Whether prometheus_client can be imported (checked by Config, without importing it)."""
    return find_spec("prometheus_client") is not None
