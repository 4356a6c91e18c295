"""The Markdown report: how it was measured, the targets at a glance, then one table per scenario."""

from __future__ import annotations

from collections.abc import Iterable

from benchmarks.bench.results import ScenarioResult, ServerResult
from benchmarks.bench.scenarios import H2, H2_IDLE, HTTP, WS_IDLE

MIB = 2**20

PLACEMENT = """\
- **Single-worker rows**: the server runs under `taskset -c {server}` and the load client (wrk with
  one thread, or the WebSocket client) under `taskset -c {client}`. Those servers are single-threaded
  (one event loop, or threads serialised by the GIL), so one core is all they can use; keeping the
  client off that core means the client never steals the server's CPU, and the server's req/s is
  the server's cost per request, not a scheduling accident.
- **WSGI rows** are single-process too (palfrey's thread pool, gunicorn gthread, granian's blocking
  threads): the same pinning, with the same thread count for every server.
- **Seed table rows** run several workers per server (gunicorn sync: 2xcores+1 = 5, the others 2):
  nothing is pinned and wrk (2 threads) shares both cores with the server, as on a small real host.
- Each scenario's servers are interleaved over rounds (A B C A B C …) so slow drift of a shared
  machine hits every server alike; the table shows the median round with min-max. Every round is
  preceded by a short wrk warm-up (at most 64 connections) that is not counted. Rows with 1,000+
  connections and the memory rows start fresh processes each round.
- RSS is summed over the server's process tree (master + workers) from /proc: the peak during the
  measured run, or the settled value for the idle rows.
- wrk's `--timeout` is {timeout} s, and wrk's "timeout" (t) counts only responses that arrived later
  than that. "never answered" counts connections that got no response at all during a run longer
  than the timeout (at least connections - responses of them, when fewer responses than
  connections came back): each waited past the timeout too. A "no timeouts" target needs both 0.
  "≥400" counts responses with status 400 or more (wrk's "Non-2xx or 3xx").
- **HTTP/2 rows** (`h2-*`) use h2load (nghttp2) over cleartext h2c with prior knowledge, one
  thread pinned like wrk, `-c` connections x `-m` concurrent streams each, for the round's duration
  (`-D`) or a fixed count (`-n`). "failed" counts streams h2load saw fail (reset, GOAWAY, connection
  lost; "errored" is the part ended by a stream or connection error), "not done" requests of a fixed
  count that never finished: a server that fails streams must not look fast, so a "0 failed" target
  needs all of them 0. p50/p99 come from h2load's per-request log. Every server is first probed
  with `curl --http2-prior-knowledge`: the response must be HTTP/2, 200, and the app's exact bytes.
- **Idle-connection memory** (`h2-idle*`): a fresh server, its RSS, then N connections that each
  made one request and stay open; KiB per connection = (RSS with them open - before) / N."""


def fmt_rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.0f} µs"


def fmt_mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / MIB:.1f}"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_met(value: bool | None, has_target: bool) -> str:
    if not has_target:
        return ""
    return {True: "yes", False: "**no**", None: "n/a"}[value]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _socket_errors(server: ServerResult) -> str:
    parts = [server.total(n) for n in ("connect_errors", "read_errors", "write_errors", "timeouts")]
    return "0" if not any(parts) else "/".join(str(p) for p in parts)


def _rate_row(result: ScenarioResult, server: ServerResult) -> list[str]:
    target = result.target_for(server)
    if not server.ok:
        return [server.label, "n/a", "", "", "", "", "", "", "", "", target.text if target else "", ""]
    low, high = server.rate_range or (None, None)
    http = result.scenario.kind == HTTP  # status codes and wrk's counters mean nothing for WebSockets
    return [
        server.label,
        fmt_rate(server.rate),
        f"{fmt_rate(low)}-{fmt_rate(high)}",
        fmt_seconds(server.p50_s),
        fmt_seconds(server.p99_s),
        str(server.total("status_errors")) if http else "-",
        _socket_errors(server),
        str(server.total("unanswered")) if http else "-",
        fmt_mib(server.rss_bytes),
        fmt_ratio(result.ratio(server)),
        target.text if target else "",
        fmt_met(result.met(server), target is not None),
    ]


def _h2_row(result: ScenarioResult, server: ServerResult) -> list[str]:
    target = result.target_for(server)
    if not server.ok:
        return [server.label, "n/a", *[""] * 9, target.text if target else "", ""]
    low, high = server.rate_range or (None, None)
    return [
        server.label,
        fmt_rate(server.rate),
        f"{fmt_rate(low)}-{fmt_rate(high)}",
        fmt_seconds(server.p50_s),
        fmt_seconds(server.p99_s),
        f"{int(sum(server.values('count'))):,}",  # count is None in a run without it
        f"{server.total('failed')}/{server.total('errored')}",
        f"{server.total('not_done')}/{server.total('timeouts')}",
        str(server.total("status_errors")),
        fmt_mib(server.rss_bytes),
        fmt_ratio(result.ratio(server)),
        target.text if target else "",
        fmt_met(result.met(server), target is not None),
    ]


def _h2_idle_row(result: ScenarioResult, server: ServerResult) -> list[str]:
    target = result.target_for(server)
    tail = [target.text if target else "", fmt_met(result.met(server), target is not None)]
    if not server.ok:
        return [server.label, "n/a", "", "", "", "", *tail]
    per_conn = result.metric(server)
    return [
        server.label,
        fmt_mib(server.base_rss_bytes),
        fmt_mib(server.rss_bytes),
        "n/a" if per_conn is None else f"{per_conn / 1024:.1f}",
        f"{server.runs[-1].connections or 0}/{server.total('connect_errors')}",
        fmt_ratio(result.ratio(server)),
        *tail,
    ]


def _rss_row(result: ScenarioResult, server: ServerResult) -> list[str]:
    target = result.target_for(server)
    ratio_cells = [
        fmt_ratio(result.ratio(server)) if server.ok else "",
        target.text if target else "",
        fmt_met(result.met(server), target is not None),
    ]
    if result.scenario.kind != WS_IDLE:
        return [server.label, fmt_mib(server.rss_bytes) if server.ok else "n/a", *ratio_cells]
    if not server.ok:
        return [server.label, "n/a", "", "", "", "", *ratio_cells]
    opened = server.runs[-1].connections or 0
    per_conn = None
    if server.rss_bytes is not None and server.base_rss_bytes is not None and opened:
        per_conn = (server.rss_bytes - server.base_rss_bytes) / opened / 1024
    return [
        server.label,
        fmt_mib(server.base_rss_bytes),
        fmt_mib(server.rss_bytes),
        "n/a" if per_conn is None else f"{per_conn:.1f}",
        f"{opened}/{server.total('connect_errors')}",
        str(server.runs[-1].deflate if server.runs[-1].deflate is not None else "n/a"),
        *ratio_cells,
    ]


def scenario_section(result: ScenarioResult, placement: str) -> list[str]:
    scenario = result.scenario
    lines = [f"### `{scenario.name}` — {scenario.title}", ""]
    facts = [f"reference: {scenario.reference}"]
    if scenario.metric == "rate" or scenario.kind in (WS_IDLE, H2_IDLE):
        streams = scenario.extra.get("streams") if scenario.kind == H2 else None
        facts.insert(
            0, f"{scenario.connections:,} connections" + (f" x {streams} streams" if streams else "")
        )
    facts.append(placement if scenario.pinned else "not pinned")
    lines += [" · ".join(facts) + (f". {scenario.notes}" if scenario.notes else ""), ""]
    if scenario.kind == H2:
        header = ["server", "req/s (median)", "min-max", "p50", "p99", "requests done", "failed/errored"]
        header += ["not done/timeout", "≥400", "RSS MiB (peak)", f"ratio to {scenario.reference}"]
        rows = [_h2_row(result, s) for s in result.servers]
        header += ["target", "met?"]
    elif scenario.kind == H2_IDLE:
        header = ["server", "RSS before MiB", f"RSS with {scenario.connections:,} open MiB"]
        header += ["KiB per connection", "opened/failed", f"per-connection ratio to {scenario.reference}"]
        header += ["target", "met?"]
        rows = [_h2_idle_row(result, s) for s in result.servers]
    elif scenario.metric == "rate":
        unit = scenario.unit
        header = ["server", f"{unit} (median)", "min-max", "p50", "p99", "≥400", "socket errors c/r/w/t"]
        header += ["never answered"]
        header += ["RSS MiB (peak)", f"ratio to {scenario.reference}", "target", "met?"]
        rows = [_rate_row(result, s) for s in result.servers]
    elif scenario.kind == WS_IDLE:
        header = [
            "server",
            "RSS before MiB",
            f"RSS with {scenario.connections:,} open MiB",
            "KiB per connection",
        ]
        header += [
            "opened/failed",
            "deflate accepted",
            f"RSS ratio to {scenario.reference}",
            "target",
            "met?",
        ]
        rows = [_rss_row(result, s) for s in result.servers]
    else:
        header = ["server", "RSS MiB", f"RSS ratio to {scenario.reference}", "target", "met?"]
        rows = [_rss_row(result, s) for s in result.servers]
    lines += _table(header, rows)
    if scenario.target is not None and scenario.target.threads_at_most is not None:
        peaks = [f"{s.label} {max(s.values('threads')):.0f}" for s in result.servers if s.values("threads")]
        lines += ["", f"Peak threads (whole process tree): {', '.join(peaks) or 'n/a'}."]
    notes = [f"- {s.label}: {s.error}" for s in result.servers if s.error]
    if notes:
        lines += ["", "n/a or incomplete:", "", *notes]
    return [*lines, ""]


def targets_table(results: list[ScenarioResult]) -> list[str]:
    rows = []
    for result in results:
        target = result.scenario.target
        if target is None:
            continue
        for label in target.servers:
            server = result.row(label)
            if server is None:
                continue
            ratio = fmt_ratio(result.ratio(server)) if server.ok else "n/a"
            if target.min_ratio is None and target.max_ratio is None:
                ratio = "-"  # a count target ("0 failed", "no timeouts"): a ratio would mislead
            reason = "" if server.ok else (server.error or "")
            rows.append(
                [
                    f"`{result.scenario.name}`",
                    label,
                    target.text,
                    ratio,
                    fmt_met(result.met(server), True),
                    reason[:160],
                ]
            )
    return _table(["scenario", "row", "target", "ratio", "met?", "why n/a"], rows)


def machine_table(machine: dict[str, object]) -> list[str]:
    rows = []
    for key, value in machine.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        rows.append([key, str(value)])
    return _table(["", ""], rows)


def render(
    results: list[ScenarioResult],
    machine: dict[str, object],
    header: dict[str, str],
    placement: dict[str, str],
    notice: str = "",
) -> str:
    lines = ["# palfrey benchmarks", ""]
    lines += [" · ".join(f"{k}: {v}" for k, v in header.items()), ""]
    if notice:
        lines += [f"> {notice}", ""]
    lines += ["## Targets", "", *targets_table(results), ""]
    lines += ["## Machine", "", *machine_table(machine), ""]
    lines += ["## How it is measured", "", PLACEMENT.format(**placement), ""]
    pinned = f"server on CPU {placement['server']}, client on CPU {placement['client']}"
    if placement["server"] == placement["client"]:
        pinned = "not pinned (fewer than 2 CPUs available)"
    lines += ["## Results", ""]
    for result in results:
        lines += scenario_section(result, pinned)
    lines += ["Chart: [latest.png](latest.png) (throughput ratio to each scenario's reference)."]
    if any(r.scenario.name.startswith("seed-") for r in results):
        lines += ["", "Seed table chart: [seed.png](seed.png) (req/s, failed requests, p99, RSS per page)."]
    return "\n".join(lines) + "\n"
