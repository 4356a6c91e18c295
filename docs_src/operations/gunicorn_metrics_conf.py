"""gunicorn with palfrey workers and Prometheus metrics: `gunicorn main:app -c gunicorn_metrics_conf.py`.

One endpoint in gunicorn's master serves /metrics for every worker and the master itself
(docs/metrics.md, "Under gunicorn"). Needs prometheus_client (palfrey's metrics extra).
"""

import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "palfrey.workers.PalfreyWorker"  # or palfrey.workers.PalfreyH11Worker; ASGI or WSGI apps

# The metrics line: gunicorn puts raw_env into the environment of its master (and of every worker)
# before the worker class starts; palfrey's worker class then serves /metrics on this address from
# the master. An address of its own, never the app's port: keep it private (127.0.0.1, or a
# firewalled interface). Here the environment may override it: PALFREY_METRICS_BIND=... gunicorn ...
raw_env = [f"PALFREY_METRICS_BIND={os.environ.get('PALFREY_METRICS_BIND', '127.0.0.1:9100')}"]

# Recycled workers, HUP and TTIN/TTOU keep every total: counters only go up across restarts.
max_requests = 10_000
max_requests_jitter = 1_000
timeout = 30
graceful_timeout = 30
