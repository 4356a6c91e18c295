"""A gunicorn config file for palfrey workers: `gunicorn main:app -c gunicorn_conf.py`.

gunicorn stays the process manager; palfrey serves each worker's requests. Every setting below is
read by palfrey's worker (see docs/gunicorn.md for the full mapping).
"""

import os

# Where to listen. `-b` on the command line overrides it (gunicorn's CLI wins over this file).
bind = os.environ.get("BIND", "0.0.0.0:8000")

# One async worker per core is the usual start; WEB_CONCURRENCY overrides it.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "palfrey.workers.PalfreyWorker"  # or palfrey.workers.PalfreyH11Worker (pure Python)

# Idle keep-alive connections close after this many seconds (behind a load balancer, set it
# longer than the balancer's own idle timeout).
keepalive = 5

# A worker whose event loop is blocked for this long (a sync call in an async handler) is killed and
# replaced. On TERM, in-flight requests get graceful_timeout seconds to finish.
timeout = 30
graceful_timeout = 30

# Recycle each worker after about this many requests; the jitter keeps workers from restarting
# together. In-flight requests finish first and the other workers keep serving.
max_requests = 10_000
max_requests_jitter = 1_000

# Proxies trusted to set X-Forwarded-For / X-Forwarded-Proto / Forwarded (comma separated IPs or
# networks, or "*"). Unix-socket peers are always trusted, as in gunicorn.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
