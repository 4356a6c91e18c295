"""`python -m benchmarks.bench`: knobs (flags or BENCH_* variables), set-up checks, then every scenario.

Runs under the peers venv's Python (it has matplotlib and uvloop for the load client); servers run
from their own venvs whichever Python runs this.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import signal
import sys
import time
from pathlib import Path

from benchmarks.bench import chart, machine, report, seedchart
from benchmarks.bench.process import start_upstream
from benchmarks.bench.results import ScenarioResult
from benchmarks.bench.runner import Settings, run_scenario
from benchmarks.bench.scenarios import H2_IDLE, IDLE_RSS, WS_IDLE, Scenario, all_scenarios, select
from benchmarks.bench.servers import BENCH, DJANGO_DIR, PALFREY, PEERS_BIN
from benchmarks.bench.wrk import WrkCommand

QUICK_NOTICE = (
    "Quick run (BENCH_QUICK=1): {rounds} round x {duration} s per server (+{warmup} s warm-up) on a "
    "2-core machine shared with other work. The numbers are noisy: this run proves the harness end to "
    "end; it is not a measurement."
)


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "") or default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description="palfrey vs its peers")
    parser.add_argument("--quick", action="store_true", default=_env("BENCH_QUICK") not in ("", "0"))
    parser.add_argument(
        "--duration", type=int, default=None, help="seconds per measured round [BENCH_DURATION]"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per scenario [BENCH_ROUNDS]")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up seconds per round [BENCH_WARMUP]")
    parser.add_argument("--only", default=_env("BENCH_ONLY"), help="scenario names/globs, comma-separated")
    parser.add_argument("--servers", default=_env("BENCH_SERVERS"), help="server families or labels")
    parser.add_argument("--out", type=Path, default=Path(_env("BENCH_OUT", str(BENCH / "results"))))
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    quick = {"duration": 1, "rounds": 1, "warmup": 0}
    full = {"duration": 5, "rounds": 3, "warmup": 1}
    for name in ("duration", "rounds", "warmup"):
        if getattr(args, name) is None:
            value = _env(f"BENCH_{name.upper()}")
            setattr(args, name, int(value) if value else (quick if args.quick else full)[name])
    return args


def _cpus() -> tuple[str | None, str | None]:
    """First two CPUs this process may use: server, client. None when pinning is impossible."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2 or shutil.which("taskset") is None:
        return None, None
    return str(allowed[0]), str(allowed[1])


def _seconds_per_round(scenario: Scenario, args: argparse.Namespace) -> float:
    """A rough wall-clock cost of one row in one round, for the estimate printed at the start."""
    if scenario.kind == IDLE_RSS:
        return 2.0
    restart = 3.0 if scenario.restart_each_round else 0.5
    if scenario.kind in (WS_IDLE, H2_IDLE):
        return restart + 3.0
    if scenario.extra.get("requests"):  # a fixed request count (h2load -n): ~10k req/s as a guess
        return restart + int(scenario.extra["requests"]) / 10_000  # type: ignore[call-overload]
    return restart + args.warmup * scenario.warmup + max(args.duration, scenario.min_duration)


def _raise_fd_limit() -> None:
    """2,000 connections need more descriptors than the usual soft limit; children inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the runner's finally blocks, which stop the servers


def _problems() -> list[str]:
    problems = []
    if shutil.which("wrk") is None:
        problems.append("wrk is not on PATH (make bench installs it: apt-get install wrk)")
    if shutil.which("h2load") is None:
        problems.append("h2load is not on PATH: HTTP/2 rows will be n/a (make bench installs nghttp2-client)")
    if not PALFREY.exists():
        problems.append(f"{PALFREY} is missing (make install)")
    if not PEERS_BIN.exists():
        problems.append(f"{PEERS_BIN} is missing: peer rows will be n/a (make bench builds it)")
    return problems


def _command(argv: list[str] | None) -> str:
    """How this run was asked for: the BENCH_* variables that were set, plus any flags."""
    knobs = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("BENCH_") and v]
    flags = sys.argv[1:] if argv is None else argv
    return "`" + " ".join(["make bench", *knobs, *flags]) + "`"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenarios = select(all_scenarios(), args.only, args.servers)
    if args.list:
        for s in all_scenarios():
            print(f"{s.name:22} {s.title}  [{', '.join(x.label for x in s.servers)}]")
        return 0
    if not scenarios:
        print(f"no scenario matches BENCH_ONLY={args.only!r} BENCH_SERVERS={args.servers!r}", file=sys.stderr)
        return 2
    problems = _problems()
    for problem in problems:
        print(f"bench: {problem}", file=sys.stderr)
    if shutil.which("wrk") is None or not PALFREY.exists():
        return 1

    signal.signal(signal.SIGTERM, _terminate)
    _raise_fd_limit()
    stamp = datetime.datetime.now(datetime.timezone.utc)
    run_dir = BENCH / ".runs" / stamp.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(DJANGO_DIR))
    from seedsite.db import ensure_database

    server_cpu, client_cpu = _cpus()
    upstream = start_upstream(run_dir) if any(s.upstream for s in scenarios) else None
    settings = Settings(
        args.duration,
        args.rounds,
        args.warmup,
        run_dir,
        ensure_database(run_dir / "seed.sqlite3"),
        server_cpu,
        client_cpu,
        upstream.url if upstream is not None else "",
    )
    pairs = sum(len(s.servers) for s in scenarios)
    estimate = sum(_seconds_per_round(s, args) * len(s.servers) * args.rounds for s in scenarios) / 60
    print(f"bench: {len(scenarios)} scenarios, {pairs} server rows, ~{estimate:.1f} min; logs in {run_dir}")

    results: list[ScenarioResult] = []
    started = time.monotonic()
    interrupted = False
    try:
        for scenario in scenarios:
            print(f"[{scenario.name}] {scenario.title}", flush=True)
            results.append(run_scenario(scenario, settings, lambda line: print(line, flush=True)))
    except KeyboardInterrupt:
        interrupted = True
        print("bench: interrupted; writing the scenarios that finished", file=sys.stderr)
    finally:
        if upstream is not None:
            upstream.stop()

    minutes = (time.monotonic() - started) / 60
    header = {
        "date": stamp.strftime("%Y-%m-%d %H:%M UTC"),
        "command": _command(argv),
        "rounds": f"{args.rounds} x {args.duration} s (+{args.warmup} s warm-up)",
        "took": f"{minutes:.1f} min",
    }
    placement = {
        "server": server_cpu or "-",
        "client": client_cpu or "-",
        "timeout": WrkCommand("", 1, 1).timeout_s,
    }
    notice = QUICK_NOTICE.format(**vars(args)) if args.quick else ""
    info = machine.describe()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(report.render(results, info, header, placement, notice))
    raw = {"header": header, "machine": info, "scenarios": [r.to_dict() for r in results]}
    (args.out / "latest.json").write_text(json.dumps(raw, indent=1, default=str) + "\n")
    try:
        why_no_chart = chart.draw(results, args.out / "latest.png", f"{header['date']} · {header['rounds']}")
    except Exception as exc:  # a chart bug must not cost the measurements, which are already written
        why_no_chart = f"chart failed: {exc!r}"
    if any(r.scenario.name.startswith("seed-") for r in results):
        try:
            why_no_seed = seedchart.draw_seed(
                results, args.out / "seed.png", f"{header['date']} · {header['rounds']}"
            )
        except Exception as exc:  # as above: the measurements are already written
            why_no_seed = f"chart failed: {exc!r}"
        if why_no_seed:
            print(f"bench: no seed chart: {why_no_seed}")
    print(f"bench: wrote {args.out / 'latest.md'}" + (f" (no chart: {why_no_chart})" if why_no_chart else ""))
    print(f"bench: done in {minutes:.1f} min")
    return 130 if interrupted else 0
