"""Run one scenario: start its servers, interleave them over rounds (A B C A B C …), always stop them.

Each measurement is wrapped so that a server that cannot start, or a scenario it cannot serve yet,
becomes an "n/a" row with the reason, and the run goes on.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.bench import h2load, wrk
from benchmarks.bench.process import Running, StartError, free_port, spawn, wait_ready
from benchmarks.bench.results import Run, ScenarioResult, ServerResult
from benchmarks.bench.rss import PeakSampler, tree_rss_bytes
from benchmarks.bench.scenarios import H2, H2_IDLE, HTTP, IDLE_RSS, WS_ECHO, WS_IDLE, Scenario
from benchmarks.bench.servers import HOST, ROOT, ServerSpec, server_env

WARMUP_CONNECTIONS = 64
STOP_TIMEOUT = 5.0


class MeasureError(Exception):
    """The server runs but this measurement failed; the message is the row's reason."""


@dataclass(frozen=True)
class Settings:
    duration: int
    rounds: int
    warmup: int
    run_dir: Path
    django_db: Path
    server_cpu: str | None  # taskset CPU list for pinned servers, None: no pinning
    client_cpu: str | None
    upstream: str = ""  # the loopback upstream's URL, when a selected scenario needs it


def _pinned(cpu: str | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if cpu else argv


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def start_server(scenario: Scenario, spec: ServerSpec, settings: Settings, result: ServerResult) -> Running:
    """Start, wait for readiness, and check that the scenario's request is answered as expected."""
    port, aux = free_port(), free_port()
    argv = spec.argv(port, aux)
    result.argv = argv
    cpu = settings.server_cpu if scenario.pinned else None
    log = settings.run_dir / f"{scenario.name}--{_slug(spec.label)}.log"
    server = spawn(
        _pinned(cpu, argv), port, log, server_env(spec, settings.django_db, settings.upstream), cwd=ROOT
    )
    h2 = scenario.kind in (H2, H2_IDLE)  # granian --http 2 answers HTTP/2 only
    try:
        deadline = 60.0 if spec.key == "palfrey" else 45.0
        wait_ready(server, scenario.ready_path, deadline, get=h2load.h2c_request if h2 else None)
        if scenario.kind == HTTP:
            _probe(scenario, server)
        elif scenario.kind == H2:
            _probe_h2(scenario, server, settings)
    except BaseException:
        server.stop(STOP_TIMEOUT)
        raise
    return server


def _probe(scenario: Scenario, server: Running) -> None:
    """One request as wrk will send it: a 404 or a wrong echo must not be benchmarked as a success."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)  # the 10 s seed page answers in 10 s
    try:
        body = b"a" * scenario.post_size if scenario.post_size else None
        conn.request("POST" if body else "GET", scenario.path, body=body)
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise StartError(f"probe {scenario.path} failed: {exc!r}") from exc
    finally:
        conn.close()
    if response.status != 200:
        raise StartError(f"probe {scenario.path} answered {response.status}: {data[:120]!r}")
    if body is not None and data != body:
        raise StartError(f"probe {scenario.path} echoed {len(data)} bytes, sent {len(body)}")


def _expected_body(path: str) -> bytes:
    """What benchmarks/apps/asgi.py answers on `path` (GET), so every server is checked for the same
    bytes over HTTP/2 too."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "apps"))
    try:
        import asgi  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    bodies = {
        "/plaintext": asgi.PLAINTEXT,
        "/json": json.dumps(asgi.JSON_PAYLOAD).encode(),
        "/64k": asgi.BODY_64K,
        "/stream": asgi.STREAM_CHUNK * asgi.STREAM_CHUNKS,
    }
    return bodies[path]


def _probe_h2(scenario: Scenario, server: Running, settings: Settings) -> None:
    """One h2c request as h2load will send it; the body must be the app's bytes (or the echo)."""
    data = h2load.post_file(settings.run_dir, scenario.post_size) if scenario.post_size else None
    try:
        status, body = h2load.h2c_request(server.port, scenario.path, 10.0, data)
    except OSError as exc:
        raise StartError(f"h2c probe {scenario.path} failed: {exc}") from exc
    expected = data.read_bytes() if data else _expected_body(scenario.path)
    if status != 200:
        raise StartError(f"h2c probe {scenario.path} answered {status or 'not over HTTP/2'}: {body[:120]!r}")
    if body != expected:
        raise StartError(f"h2c probe {scenario.path}: {len(body)} bytes, not the app's {len(expected)}")


def measure(scenario: Scenario, server: Running, settings: Settings, label: str = "") -> Run:
    if scenario.kind == H2_IDLE:  # the one kind whose client depends on the row
        http1 = label in scenario.extra.get("http1_rows", ())  # type: ignore[operator]
        return _measure_h2_idle(scenario, server, settings, http1)
    kinds: dict[str, Callable[[Scenario, Running, Settings], Run]] = {
        HTTP: _measure_http,
        WS_ECHO: _measure_ws_echo,
        IDLE_RSS: _measure_idle_rss,
        WS_IDLE: _measure_ws_idle,
        H2: _measure_h2,
    }
    return kinds[scenario.kind](scenario, server, settings)


def _measure_http(scenario: Scenario, server: Running, settings: Settings) -> Run:
    url = f"http://{HOST}:{server.port}{scenario.path}"
    threads = 1 if scenario.pinned and settings.client_cpu else 2
    cpus = settings.client_cpu if scenario.pinned else None
    script = wrk.post_script(settings.run_dir, scenario.post_size) if scenario.post_size else None
    duration = max(settings.duration, scenario.min_duration)
    timeout = scenario.wrk_timeout
    try:
        if scenario.warmup and settings.warmup > 0:
            warm = min(scenario.connections, WARMUP_CONNECTIONS)
            wrk.run(wrk.WrkCommand(url, warm, settings.warmup, threads=1, script=script, cpus=cpus))
        with PeakSampler(server.pid) as rss:
            command = wrk.WrkCommand(
                url,
                scenario.connections,
                duration,
                threads=threads,
                timeout_s=timeout,
                script=script,
                cpus=cpus,
                headers=scenario.headers,
            )
            result = wrk.run(command)
    except wrk.WrkError as exc:
        raise MeasureError(str(exc)) from exc
    return Run(
        rate=result.rps,
        p50_s=result.latency_s.get(50.0),
        p99_s=result.latency_s.get(99.0),
        count=result.requests,
        status_errors=result.status_errors,
        connect_errors=result.connect_errors,
        read_errors=result.read_errors,
        write_errors=result.write_errors,
        timeouts=result.timeouts,
        unanswered=max(0, scenario.connections - result.requests) if duration > timeout else 0,
        rss_bytes=rss.peak,
        connections=scenario.connections,
        threads=rss.peak_threads,
    )


def _measure_h2(scenario: Scenario, server: Running, settings: Settings) -> Run:
    """h2load over h2c: `-D` seconds, or a fixed `requests` count (the one-connection row)."""
    url = f"http://{HOST}:{server.port}{scenario.path}"
    cpus = settings.client_cpu if scenario.pinned else None
    data = h2load.post_file(settings.run_dir, scenario.post_size) if scenario.post_size else None
    streams = int(scenario.extra.get("streams", 16))  # type: ignore[call-overload]
    requests = int(scenario.extra.get("requests", 0))  # type: ignore[call-overload]
    duration = None if requests else max(settings.duration, scenario.min_duration)
    log = settings.run_dir / f"{scenario.name}--h2load.log"
    base = {"url": url, "clients": scenario.connections, "streams": streams, "data": data, "cpus": cpus}
    try:
        if scenario.warmup and settings.warmup > 0:
            h2load.run(h2load.H2loadCommand(**base, duration_s=settings.warmup))  # type: ignore[arg-type]
        command = h2load.H2loadCommand(**base, duration_s=duration, requests=requests, log_file=log)  # type: ignore[arg-type]
        with PeakSampler(server.pid) as rss:
            result = h2load.run(command)
    except h2load.H2loadError as exc:
        raise MeasureError(str(exc)) from exc
    finally:
        log.unlink(missing_ok=True)  # a 100,000-line log per round is not worth keeping
    return Run(
        rate=result.rps,
        p50_s=result.latency_s.get(50.0),
        p99_s=result.latency_s.get(99.0),
        count=result.done,
        status_errors=result.status_errors,
        timeouts=result.timeouts,
        failed=result.failed,
        errored=result.errored,
        not_done=result.not_done if requests else 0,
        rss_bytes=rss.peak,
        connections=scenario.connections,
    )


def _measure_h2_idle(scenario: Scenario, server: Running, settings: Settings, h1: bool) -> Run:
    """RSS before and while N connections that made one request each sit idle (h2 or HTTP/1.1)."""
    argv = [sys.executable, "-m", "benchmarks.bench.h2idle", "--port", str(server.port)]
    argv += ["--connections", str(scenario.connections), "--proto", "http/1.1" if h1 else "h2"]
    argv = _pinned(settings.client_cpu if scenario.pinned else None, [*argv, "--hold", "120"])
    run = _hold_idle(scenario, server, settings, argv, "h2idle")
    if run.rss_bytes is not None and run.base_rss_bytes is not None and run.connections:
        run.per_connection_bytes = (run.rss_bytes - run.base_rss_bytes) / run.connections
    return run


def _ws_client(mode: str, scenario: Scenario, server: Running, settings: Settings, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "benchmarks.bench.wsclient", mode, "--port", str(server.port)]
    argv += ["--connections", str(scenario.connections), *extra]
    return _pinned(settings.client_cpu if scenario.pinned else None, argv)


def _measure_ws_echo(scenario: Scenario, server: Running, settings: Settings) -> Run:
    duration = max(settings.duration, scenario.min_duration)
    argv = _ws_client(
        "echo", scenario, server, settings, "--duration", str(duration), "--warmup", str(settings.warmup)
    )
    with PeakSampler(server.pid) as rss:
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=duration + settings.warmup + 60,
                cwd=ROOT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise MeasureError("WebSocket client did not finish in time") from exc
    outcome = _last_json(done.stdout)
    if outcome is None or "error" in outcome:
        reason = outcome.get("error") if outcome else (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MeasureError(f"WebSocket client: {reason}")
    return Run(
        rate=outcome["messages_per_s"],
        p50_s=outcome["p50_s"],
        p99_s=outcome["p99_s"],
        count=outcome["messages"],
        connect_errors=outcome["errors"],
        rss_bytes=rss.peak,
        connections=outcome["connections"],
    )


def _last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return None


def _measure_idle_rss(scenario: Scenario, server: Running, settings: Settings) -> Run:
    """RSS once the app has served a few requests and the server is idle again."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        for _ in range(100):
            conn.request("GET", scenario.path)
            conn.getresponse().read()
    except (OSError, http.client.HTTPException) as exc:
        raise MeasureError(f"warm-up requests failed: {exc!r}") from exc
    finally:
        conn.close()
    time.sleep(0.5)  # let closed-connection cleanup finish; not a readiness wait
    return Run(rss_bytes=tree_rss_bytes(server.pid))


def _measure_ws_idle(scenario: Scenario, server: Running, settings: Settings) -> Run:
    """RSS before and while N WebSocket connections are open and silent."""
    extra = ["--hold", "120"] + (["--deflate"] if scenario.extra.get("deflate") else [])
    return _hold_idle(scenario, server, settings, _ws_client("idle", scenario, server, settings, *extra))


def _hold_idle(
    scenario: Scenario, server: Running, settings: Settings, argv: list[str], client_name: str = "wsclient"
) -> Run:
    """Run an idle client (it prints one JSON line once its connections are open, then holds them
    until its stdin closes) and sample the server's RSS while they are open."""
    base = tree_rss_bytes(server.pid)
    errors = (settings.run_dir / f"{scenario.name}--{client_name}.log").open("a")
    client = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,  # a file, not a pipe nobody reads: a chatty client cannot block on it
        cwd=ROOT,
        text=True,
        start_new_session=True,
    )
    try:
        line = _read_line(client, timeout=90)
        status = json.loads(line) if line else None
        if not status:
            raise MeasureError(f"{client_name} printed nothing")
        if status["opened"] == 0:
            raise MeasureError(f"no connection opened: {status['first_error']}")
        samples = []
        for _ in range(4):  # settle: buffers are allocated lazily
            time.sleep(0.25)
            samples.append(tree_rss_bytes(server.pid))
        return Run(
            rss_bytes=max(samples),
            base_rss_bytes=base,
            connections=status["opened"],
            deflate=status.get("deflate"),
            connect_errors=status["failed"],
        )
    finally:
        with contextlib.suppress(OSError):
            client.stdin.close()  # type: ignore[union-attr]
        try:
            client.wait(timeout=30)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait(timeout=5)
        errors.close()


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        if not selector.select(timeout):
            raise MeasureError(f"load client silent for {timeout:.0f} s")
    return proc.stdout.readline()  # type: ignore[union-attr]


def run_scenario(scenario: Scenario, settings: Settings, say: Callable[[str], None]) -> ScenarioResult:
    started_at = time.monotonic()
    results = [ServerResult(spec.label, spec.key) for spec in scenario.servers]
    running: dict[str, Running] = {}

    def start(spec: ServerSpec, result: ServerResult) -> None:
        try:
            running[spec.label] = start_server(scenario, spec, settings, result)
        except StartError as exc:
            result.error = f"did not start: {exc}"
            say(f"  {spec.label}: n/a ({result.error})")

    def stop(label: str) -> None:
        server = running.pop(label, None)
        if server is not None:
            server.stop(STOP_TIMEOUT)

    try:
        if not scenario.restart_each_round:
            for spec, result in zip(scenario.servers, results, strict=True):
                start(spec, result)
        for round_no in range(1, settings.rounds + 1):
            for spec, result in zip(scenario.servers, results, strict=True):
                if result.error:
                    continue
                if scenario.restart_each_round:
                    start(spec, result)
                server = running.get(spec.label)
                if server is None:
                    continue
                try:
                    run = measure(scenario, server, settings, spec.label)
                    result.runs.append(run)
                    say(f"  round {round_no}/{settings.rounds} {spec.label}: {describe(run, scenario)}")
                except MeasureError as exc:
                    result.error = str(exc)
                    say(f"  round {round_no}/{settings.rounds} {spec.label}: n/a ({exc})")
                if not server.alive():
                    result.error = f"server exited during the run: {server.log_tail(3)}"
                    say(f"  {spec.label}: {result.error}")
                if scenario.restart_each_round:
                    stop(spec.label)
    finally:
        for label in list(running):
            stop(label)
    return ScenarioResult(scenario, results, time.monotonic() - started_at)


def describe(run: Run, scenario: Scenario) -> str:
    if scenario.metric == "rss":
        base = f" (before: {run.base_rss_bytes / 2**20:.1f})" if run.base_rss_bytes else ""
        per = run.per_connection_bytes
        per_text = (
            f", {per / 1024:.1f} KiB per connection ({run.connections} open)" if per is not None else ""
        )
        return f"RSS {(run.rss_bytes or 0) / 2**20:.1f} MiB{base}{per_text}"
    p99 = f"{run.p99_s * 1000:.2f} ms" if run.p99_s is not None else "n/a"
    errors = f", >=400: {run.status_errors}" if run.status_errors else ""
    errors += f", socket errors: {run.socket_errors}" if run.socket_errors else ""
    errors += f", never answered: {run.unanswered}" if run.unanswered else ""
    if scenario.kind == H2:
        errors += f", {run.count:,} done, failed {run.failed}, errored {run.errored}, not done {run.not_done}"
    return f"{run.rate:,.0f} {scenario.unit}, p99 {p99}{errors}"
