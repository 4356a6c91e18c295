"""What is measured: each scenario names its servers, its reference row and the target the issue sets.

Targets are printed in the report, never asserted: a miss is information for whoever optimises.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from dataclasses import dataclass, field

from benchmarks.bench.servers import (
    ServerSpec,
    granian,
    gunicorn,
    gunicorn_palfrey,
    hypercorn,
    palfrey,
    uvicorn,
)

HTTP, WS_ECHO, IDLE_RSS, WS_IDLE = "http", "ws-echo", "idle-rss", "ws-idle"
H2, H2_IDLE = "h2load", "h2-idle"  # HTTP/2 rows: h2load throughput, idle-connection memory


@dataclass(frozen=True)
class Target:
    """A goal for some rows: ratio bounds against the reference, and optional extra conditions."""

    text: str
    servers: tuple[str, ...] = ("palfrey",)
    min_ratio: float | None = None
    max_ratio: float | None = None
    p99_at_most_reference: bool = False
    no_timeouts: bool = False
    threads_at_most: int | None = None  # peak threads of the server's process tree
    no_failed: bool = False  # h2load rows: no failed, errored, timed-out or unfinished request


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kind: str
    servers: tuple[ServerSpec, ...]
    reference: str
    path: str = "/plaintext"
    ready_path: str = "/plaintext"
    connections: int = 64
    post_size: int = 0
    pinned: bool = True  # server on one core, client on the other
    min_duration: int = 0
    warmup: bool = True  # a wrk run (at most 64 connections) before each measured one
    restart_each_round: bool = False  # fresh processes per round: no backlog or memory carried over
    target: Target | None = None
    notes: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    wrk_timeout: int = 5  # wrk --timeout (s); the seed table uses wrk's default, 2
    headers: tuple[str, ...] = ()  # extra request headers (wrk -H)
    upstream: bool = False  # the pages call the harness's loopback upstream (benchmarks/bench/upstream.py)

    @property
    def metric(self) -> str:
        """What the ratio compares: throughput (higher is better) or memory (lower is better)."""
        return "rss" if self.kind in (IDLE_RSS, WS_IDLE, H2_IDLE) else "rate"

    @property
    def unit(self) -> str:
        return "msg/s" if self.kind == WS_ECHO else "req/s"


ASGI = "asgi:app"
WSGI = "wsgi:app"
STARLETTE = "starlette_app:app"
DJANGO_WSGI = "seedsite.wsgi:application"
DJANGO_ASGI = "seedsite.asgi:application"
WSGI_THREADS = 16  # the peers' thread count (palfrey's fixed pool before --threads auto became the default)
# wrk counts a timeout only for a request older than --timeout (5 s) while the run lasts: rows whose
# target is "no timeouts" run at least this long, even in quick mode.
TIMEOUT_VISIBLE = 7


def _asgi_peers(app: str = ASGI) -> tuple[ServerSpec, ...]:
    return (palfrey(app), uvicorn(app), granian(app), hypercorn(app))


def _asgi(name: str, title: str, path: str, target: Target | None, **kw: object) -> Scenario:
    kw.setdefault("restart_each_round", kw.get("connections", 64) >= 1000)  # type: ignore[operator]
    return Scenario(name, title, HTTP, _asgi_peers(), "uvicorn", path=path, target=target, **kw)  # type: ignore[arg-type]


def _ws_servers(*extra: str) -> tuple[ServerSpec, ...]:
    return (palfrey(ASGI, "--ws", "websockets", *extra), uvicorn(ASGI, "--ws", "websockets", *extra))


def _wsgi_peers(threads: int = WSGI_THREADS) -> tuple[ServerSpec, ...]:
    return (
        palfrey(WSGI, "--interface", "wsgi", label="palfrey wsgi", interface="wsgi"),
        gunicorn(WSGI, "gthread", threads=threads),
        granian(WSGI, "wsgi", threads=threads, label=f"granian wsgi t{threads}"),
    )


SEED_SYNC = "gunicorn sync w5"
SEED_GEVENT = "gunicorn gevent w2"
SEED_PALFREY = ("palfrey wsgi w2",)
WRK_DEFAULT_TIMEOUT = 2  # the seed runs wrk without --timeout
SEED_SECONDS = 10  # the seed's -d10s


def _seed_servers() -> tuple[ServerSpec, ...]:
    """The seed's setups: gunicorn sync with 2xcores+1 workers, gevent with 1,000 connections per
    worker (the seed's own), the rest one worker per core with their defaults."""
    return (
        palfrey(
            DJANGO_WSGI, "--interface", "wsgi", "--workers", "2", label="palfrey wsgi w2", interface="wsgi"
        ),
        palfrey(DJANGO_ASGI, "--workers", "2", label="palfrey asgi w2"),
        gunicorn(DJANGO_WSGI, "sync", workers=5),
        gunicorn(DJANGO_WSGI, "gthread", workers=2, threads=WSGI_THREADS),
        gunicorn(DJANGO_WSGI, "gevent", workers=2, extra=("--worker-connections", "1000")),
        granian(DJANGO_WSGI, "wsgi", workers=2, label="granian wsgi w2"),
    )


def _seed(
    page: str,
    title: str,
    reference: str = SEED_SYNC,
    target: Target | None = None,
    **kw: object,
) -> Scenario:
    """One seed page, driven as the seed drives it: 2,000 connections, 10 s, wrk's 2 s timeout,
    fresh processes per round, no warm-up (a warm-up would leave slow requests queued behind)."""
    return Scenario(
        f"seed-{page.replace('/', '-')}",
        f"Seed table: Django {title}, 2,000 connections",
        HTTP,
        _seed_servers(),
        reference,
        path=f"/{page}",
        ready_path="/json",
        connections=2000,
        pinned=False,
        min_duration=SEED_SECONDS,
        warmup=False,
        restart_each_round=True,
        target=target,
        wrk_timeout=WRK_DEFAULT_TIMEOUT,
        notes="wrk's default 2 s timeout. Several workers per server: nothing pinned, wrk (2 threads) "
        "shares both cores.",
        **kw,  # type: ignore[arg-type]
    )


def _seed_scenarios() -> list[Scenario]:
    at_least_sync = Target("≥ gunicorn sync", servers=SEED_PALFREY, min_ratio=1.0)
    at_least_gevent = Target("≥ gunicorn gevent", servers=SEED_PALFREY, min_ratio=1.0)
    return [
        _seed("json", "JSON view", target=at_least_sync),
        _seed("db", "SQLite query → JSON", target=at_least_sync),
        _seed("template", "SQLite query → HTML template", target=at_least_sync),
        _seed("brotli", "Brotli-compressed JSON (11.5 KiB → 0.7 KiB)", headers=("Accept-Encoding: br",)),
        _seed(
            "gateway/1",
            "view waiting 1 s on a gateway",
            SEED_GEVENT,
            Target("≥ gunicorn gevent, no timeouts", servers=SEED_PALFREY, min_ratio=1.0, no_timeouts=True),
        ),
        _seed("gateway/3", "view waiting 3 s on a gateway", SEED_GEVENT),
        _seed("gateway/10", "view waiting 10 s on a gateway", SEED_GEVENT),
        _seed(
            "requests", "view calling an upstream with requests", SEED_GEVENT, at_least_gevent, upstream=True
        ),
        _seed("httpx", "view calling an upstream with httpx", SEED_GEVENT, at_least_gevent, upstream=True),
    ]


def all_scenarios() -> list[Scenario]:
    uv_ref = "uvicorn"
    return [
        _asgi(
            "asgi-plaintext",
            "ASGI plaintext, 1 worker",
            "/plaintext",
            Target("≥ 1.5x uvicorn", min_ratio=1.5),
        ),
        _asgi("asgi-json", "ASGI JSON (~200 B), 1 worker", "/json", Target("≥ 1.4x uvicorn", min_ratio=1.4)),
        _asgi(
            "asgi-post4k",
            "ASGI POST echo 4 KiB, 1 worker",
            "/echo",
            Target("≥ 1.4x uvicorn", min_ratio=1.4),
            post_size=4096,
        ),
        _asgi("asgi-64k", "ASGI 64 KiB body, 1 worker", "/64k", Target("≥ 1.2x uvicorn", min_ratio=1.2)),
        _asgi(
            "asgi-stream16",
            "ASGI 16-chunk stream, 1 worker",
            "/stream",
            Target("≥ 3x uvicorn", min_ratio=3.0),
        ),
        _asgi(
            "asgi-sleep50-c1000",
            "ASGI 50 ms I/O endpoint, 1,000 connections",
            "/sleep",
            Target("≥ 1.1x uvicorn, p99 ≤ uvicorn's", min_ratio=1.1, p99_at_most_reference=True),
            connections=1000,
        ),
        Scenario(
            "h11-plaintext",
            "--http h11 plaintext, 1 worker",
            HTTP,
            (palfrey(ASGI, http="h11"), uvicorn(ASGI, http="h11"), hypercorn(ASGI)),
            uv_ref,
            target=Target("≥ 1.5x uvicorn h11", min_ratio=1.5),
            notes="hypercorn is h11-based: shown for context.",
        ),
        Scenario(
            "starlette-json",
            "Starlette JSON route, 1 worker",
            HTTP,
            _asgi_peers(STARLETTE),
            uv_ref,
            path="/json",
            notes="Realistic row: routing and response classes cost time too.",
        ),
        Scenario(
            "asgi-idle-rss",
            "RSS of an idle worker (ASGI app, after 100 requests)",
            IDLE_RSS,
            _asgi_peers(),
            uv_ref,
            target=Target("≤ 1.1x uvicorn", max_ratio=1.1),
        ),
        Scenario(
            "metrics-plaintext",
            "ASGI plaintext with --metrics on vs off",
            HTTP,
            (
                palfrey(ASGI),
                palfrey(ASGI, "--metrics", "--metrics-bind", "127.0.0.1:{aux}", label="palfrey --metrics"),
            ),
            "palfrey",
            target=Target("within 5% of off", servers=("palfrey --metrics",), min_ratio=0.95),
        ),
        Scenario(
            "gunicorn-metrics",
            "ASGI plaintext under gunicorn + palfrey worker (1 worker), PALFREY_METRICS_BIND on vs off",
            HTTP,
            (gunicorn_palfrey(ASGI, metrics=False), gunicorn_palfrey(ASGI, metrics=True)),
            "gunicorn+palfrey",
            target=Target("within 3% of off", servers=("gunicorn+palfrey metrics",), min_ratio=0.97),
        ),
        Scenario(
            "ws-echo",
            "WebSocket echo (32 B text), 64 connections, websockets implementation",
            WS_ECHO,
            _ws_servers(),
            uv_ref,
            ready_path="/plaintext",
            target=Target("≥ 1.3x uvicorn", min_ratio=1.3),
        ),
        Scenario(
            "ws-idle2000-deflate",
            "RSS with 2,000 idle WebSocket connections, permessage-deflate on",
            WS_IDLE,
            _ws_servers("--ws-per-message-deflate", "true"),
            uv_ref,
            connections=2000,
            restart_each_round=True,
            extra={"deflate": True},
        ),
        Scenario(
            "ws-idle2000-plain",
            "RSS with 2,000 idle WebSocket connections, permessage-deflate off",
            WS_IDLE,
            _ws_servers("--ws-per-message-deflate", "false"),
            uv_ref,
            connections=2000,
            restart_each_round=True,
            extra={"deflate": True},  # offered, so "0 accepted" shows the server's flag at work
        ),
        Scenario(
            "wsgi-plaintext",
            f"WSGI plaintext, 1 worker, {WSGI_THREADS} threads",
            HTTP,
            _wsgi_peers(),
            f"gunicorn gthread t{WSGI_THREADS}",
            target=Target("≥ 2x gunicorn gthread", servers=("palfrey wsgi",), min_ratio=2.0),
        ),
        Scenario(
            "wsgi-sleep50-c1000",
            f"WSGI 50 ms sleep, 1,000 connections, peers {WSGI_THREADS} threads, palfrey --threads auto",
            HTTP,
            _wsgi_peers(),
            f"granian wsgi t{WSGI_THREADS}",
            path="/sleep",
            connections=1000,
            restart_each_round=True,
            min_duration=TIMEOUT_VISIBLE,
            target=Target(
                "≥ granian wsgi (same threads), no timeouts",
                servers=("palfrey wsgi",),
                min_ratio=1.0,
                no_timeouts=True,
            ),
        ),
        Scenario(
            "wsgi-gateway-c2000",
            "WSGI view waiting 1 s (gateway page), 2,000 connections, 2 workers, WSGI defaults",
            HTTP,
            (
                palfrey(
                    WSGI, "--interface", "wsgi", "--workers", "2", label="palfrey wsgi w2", interface="wsgi"
                ),
                gunicorn(WSGI, "gevent", workers=2, extra=("--worker-connections", "1000")),
                gunicorn(WSGI, "gthread", workers=2, threads=WSGI_THREADS),
            ),
            "gunicorn gevent w2",
            path="/gateway",
            connections=2000,
            pinned=False,
            min_duration=TIMEOUT_VISIBLE,
            warmup=False,
            restart_each_round=True,
            target=Target(
                "≥ gunicorn gevent, no timeouts",
                servers=("palfrey wsgi w2",),
                min_ratio=1.0,
                no_timeouts=True,
            ),
            notes="The adaptive pool (--threads auto) against gevent's monkey-patched greenlets.",
        ),
        Scenario(
            "wsgi-cpu-c64",
            "WSGI CPU-bound view (~2 ms of Python), 64 connections, 1 worker: --threads auto vs 16",
            HTTP,
            (
                palfrey(WSGI, "--interface", "wsgi", label="palfrey wsgi", interface="wsgi"),
                palfrey(
                    WSGI, "--interface", "wsgi", "--threads", "16", label="palfrey wsgi t16", interface="wsgi"
                ),
            ),
            "palfrey wsgi t16",
            path="/cpu",
            target=Target(
                "threads ≤ 2x cores (+ the loop's), p99 ≤ a fixed 16-thread pool's",
                servers=("palfrey wsgi",),
                p99_at_most_reference=True,
                threads_at_most=2 * len(os.sched_getaffinity(0)) + 1,
            ),
            notes="The adaptive pool must not grow for an app that computes.",
        ),
        *_seed_scenarios(),
        *http2_scenarios(),
    ]


# --- HTTP/2 (issue 15): h2load over cleartext h2c with prior knowledge -----------------------------
H2_REF = "uvicorn zttp"
H2_CLIENTS, H2_STREAMS = 8, 16  # h2load -c 8 -m 16
H2_LONG_REQUESTS = 100_000


def _h2_peers(*palfrey_extra: str, uvicorn_extra: tuple[str, ...] = ()) -> tuple[ServerSpec, ...]:
    return (
        palfrey(ASGI, "--http2", *palfrey_extra),
        uvicorn(ASGI, "--http2", *uvicorn_extra, http="zttp", label=H2_REF),
        granian(ASGI, http="2"),
        hypercorn(ASGI),
    )


def _h2(name: str, title: str, path: str, target: Target | None = None, **kw: object) -> Scenario:
    title = f"h2c {title}, 1 worker, h2load -c {H2_CLIENTS} -m {H2_STREAMS}"
    extra = {"streams": H2_STREAMS}
    return Scenario(
        name,
        title,
        H2,
        _h2_peers(),
        H2_REF,
        path=path,
        connections=H2_CLIENTS,
        target=target,
        extra=extra,
        **kw,
    )  # type: ignore[arg-type]


def http2_scenarios() -> list[Scenario]:
    """h2load rows against every peer's HTTP/2 (granian --http 2, uvicorn --http zttp --http2,
    hypercorn), the 100,000-requests-on-one-connection row and idle-connection memory."""
    at_least = Target("≥ 1.5x uvicorn + zttp", min_ratio=1.5)
    idle_keep = ("--timeout-keep-alive", "120")  # idle connections must outlive the measurement
    return [
        _h2(
            "h2-plaintext",
            "plaintext",
            "/plaintext",
            Target("≥ 1.5x uvicorn + zttp, 0 failed", min_ratio=1.5, no_failed=True),
        ),
        _h2("h2-json", "JSON (~200 B)", "/json"),
        _h2("h2-post4k", "POST echo 4 KiB", "/echo", at_least, post_size=4096),
        _h2("h2-stream16", "16-chunk stream", "/stream", at_least),
        _h2("h2-64k", "64 KiB body", "/64k"),
        Scenario(
            "h2-100k-one-connection",
            f"h2c {H2_LONG_REQUESTS:,} requests on one connection (h2load -n {H2_LONG_REQUESTS} -c 1 -m 16)",
            H2,
            _h2_peers(),
            H2_REF,
            connections=1,
            warmup=False,
            target=Target("0 failed", no_failed=True),
            extra={"streams": H2_STREAMS, "requests": H2_LONG_REQUESTS},
            notes="A legitimate client, not a flood: every request should succeed.",
        ),
        Scenario(
            "h2-idle1000",
            "RSS per idle connection: 1,000 idle HTTP/2 vs HTTP/1.1 connections (one request each)",
            H2_IDLE,
            (
                palfrey(ASGI, "--http2", *idle_keep, label="palfrey http/1.1"),
                palfrey(ASGI, "--http2", *idle_keep, label="palfrey h2"),
                uvicorn(ASGI, "--http2", *idle_keep, http="zttp", label=H2_REF),
                granian(ASGI, http="2"),
                hypercorn(ASGI, "--keep-alive", "120"),
            ),
            "palfrey http/1.1",
            connections=1000,
            restart_each_round=True,
            target=Target("≤ 2x an idle HTTP/1.1 connection", servers=("palfrey h2",), max_ratio=2.0),
            extra={"http1_rows": ("palfrey http/1.1",)},
            notes="Both palfrey rows run palfrey --http2; only the client's protocol differs. "
            "The ratio compares KiB per connection (RSS with them open minus before, over the count).",
        ),
    ]


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) if any(c in p for c in "*?[") else p in name for p in patterns)


def select(scenarios: list[Scenario], only: str = "", servers: str = "") -> list[Scenario]:
    """Keep scenarios whose name contains (or glob-matches) a comma-separated `only` pattern, and in them
    the servers whose family or label matches `servers`. A scenario left without servers is dropped."""
    names = [p.strip() for p in only.split(",") if p.strip()]
    keys = [k.strip() for k in servers.split(",") if k.strip()]
    chosen = []
    for scenario in scenarios:
        if names and not _matches(scenario.name, names):
            continue
        if keys:
            kept = tuple(s for s in scenario.servers if s.key in keys or s.label in keys)
            if not kept:
                continue
            scenario = dataclasses.replace(scenario, servers=kept)
        chosen.append(scenario)
    return chosen
