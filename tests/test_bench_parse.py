"""Pure parts of the benchmark harness: wrk output parsing, WebSocket framing, scenario selection,
result arithmetic and the report. No wrk, no peers venv, no servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench import h2idle, h2load, report, rss, wrk, wsclient
from benchmarks.bench.results import Run, ScenarioResult, ServerResult
from benchmarks.bench.scenarios import all_scenarios, select
from tests.support import ROOT

WRK_OK = """\
Running 5s test @ http://127.0.0.1:8000/plaintext
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.42ms  312.00us   9.87ms   91.23%
    Req/Sec    44.10k     1.20k   46.00k    80.00%
  Latency Distribution
     50%    1.38ms
     75%    1.51ms
     90%    1.70ms
     99%  850.00us
  220500 requests in 5.00s, 27.34MB read
Requests/sec:  44100.12
Transfer/sec:      5.47MB
"""

WRK_ERRORS = """\
Running 10s test @ http://127.0.0.1:8000/slow
  2 threads and 2000 connections
  Latency Distribution
     50%    1.02s
     75%    1.50s
     90%    2.10s
     99%    4.99s
  1234 requests in 10.01s, 300.00KB read
  Socket errors: connect 0, read 17, write 2, timeout 345
  Non-2xx or 3xx responses: 12
Requests/sec:    123.28
Transfer/sec:     29.97KB
"""

WRK_NOTHING = """\
Running 1s test @ http://127.0.0.1:8000/slow
  1 threads and 64 connections
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    -nanus
  0 requests in 1.00s, 0.00B read
  Socket errors: connect 0, read 0, write 0, timeout 64
Requests/sec:      0.00
Transfer/sec:       0.00B
"""


def test_wrk_parse_clean_run() -> None:
    result = wrk.parse(WRK_OK)
    assert result.requests == 220500
    assert result.duration_s == pytest.approx(5.0)
    assert result.rps == pytest.approx(44100.12)
    assert result.latency_s[50.0] == pytest.approx(1.38e-3)
    assert result.latency_s[99.0] == pytest.approx(850e-6)
    assert result.socket_errors == 0 and result.status_errors == 0


def test_wrk_parse_errors_and_seconds() -> None:
    result = wrk.parse(WRK_ERRORS)
    assert result.latency_s[50.0] == pytest.approx(1.02)
    assert (result.connect_errors, result.read_errors, result.write_errors, result.timeouts) == (
        0,
        17,
        2,
        345,
    )
    assert result.socket_errors == 364
    assert result.status_errors == 12


def test_wrk_parse_no_completed_request() -> None:
    result = wrk.parse(WRK_NOTHING)
    assert result.requests == 0 and result.rps == 0.0
    assert 99.0 not in result.latency_s
    assert result.timeouts == 64


def test_wrk_parse_garbage() -> None:
    with pytest.raises(wrk.WrkError):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_wrk_command(tmp_path) -> None:
    script = wrk.post_script(tmp_path, 4096)
    assert 'string.rep("a", 4096)' in script.read_text()
    argv = wrk.WrkCommand("http://h/x", 64, 5, script=script, cpus="1").argv()
    assert argv[:3] == ["taskset", "-c", "1"]
    assert argv[3:] == [
        "wrk",
        "-t1",
        "-c64",
        "-d5s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        "http://h/x",
    ]


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 65535, 65536])
def test_ws_frames_round_trip(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    frame = wsclient.masked_frame(payload)
    buffer = bytearray(frame + frame[:3])  # one complete frame and the start of another
    assert wsclient.split_frames(buffer) == [(True, 0x1, payload)]
    assert buffer == bytearray(frame[:3])


def test_ws_unmasked_server_frames() -> None:
    buffer = bytearray(b"\x81\x02hi\x89\x00\x02\x7e\x00\x03abc")
    assert wsclient.split_frames(buffer) == [(True, 1, b"hi"), (True, 9, b""), (False, 2, b"abc")]
    assert buffer == bytearray()


def test_select_scenarios() -> None:
    scenarios = all_scenarios()
    names = [s.name for s in scenarios]
    assert len(names) == len(set(names))
    for scenario in scenarios:
        labels = [s.label for s in scenario.servers]
        assert len(labels) == len(set(labels)), scenario.name
        assert scenario.reference in labels, scenario.name
        if scenario.target:
            assert set(scenario.target.servers) <= set(labels), scenario.name
    plain = {s.name for s in select(scenarios, only="plaintext")}
    assert plain == {"asgi-plaintext", "h11-plaintext", "metrics-plaintext", "wsgi-plaintext", "h2-plaintext"}
    assert [s.name for s in select(scenarios, only="seed-*")] == [
        "seed-json",
        "seed-db",
        "seed-template",
        "seed-brotli",
        "seed-gateway-1",
        "seed-gateway-3",
        "seed-gateway-10",
        "seed-requests",
        "seed-httpx",
    ]
    seed = select(scenarios, only="seed-*")
    assert all(len(s.servers) == 6 and s.connections == 2000 and s.wrk_timeout == 2 for s in seed)
    assert [s.name for s in seed if s.upstream] == ["seed-requests", "seed-httpx"]
    only_palfrey = select(scenarios, only="asgi-json", servers="palfrey")
    assert [s.label for s in only_palfrey[0].servers] == ["palfrey"]
    assert select(scenarios, only="nothing-like-this") == []


def _result(name: str, rows: dict[str, list[Run] | str]) -> ScenarioResult:
    scenario = next(s for s in all_scenarios() if s.name == name)
    servers = []
    for spec in scenario.servers:
        value = rows.get(spec.label, "not run")
        if isinstance(value, str):
            servers.append(ServerResult(spec.label, spec.key, error=value))
        else:
            servers.append(ServerResult(spec.label, spec.key, runs=value))
    return ScenarioResult(scenario, servers)


def test_ratios_medians_and_targets() -> None:
    result = _result(
        "asgi-sleep50-c1000",
        {
            "palfrey": [Run(rate=r, p99_s=0.08) for r in (12000, 11000, 13000)],
            "uvicorn": [Run(rate=r, p99_s=0.1) for r in (10000, 9000, 11000)],
            "granian": "did not start: exit code 1",
        },
    )
    palfrey, uvicorn, granian = result.servers[:3]
    assert palfrey.rate == 12000 and palfrey.rate_range == (11000, 13000)
    assert result.ratio(palfrey) == pytest.approx(1.2)
    assert result.met(palfrey) is True  # 1.2x >= 1.1x and p99 80 ms <= 100 ms
    assert result.met(uvicorn) is None  # no target on the reference row
    assert result.ratio(granian) is None and result.met(granian) is None


def test_memory_ratio_and_timeout_target() -> None:
    idle = _result(
        "asgi-idle-rss", {"palfrey": [Run(rss_bytes=40 << 20)], "uvicorn": [Run(rss_bytes=32 << 20)]}
    )
    assert idle.ratio(idle.servers[0]) == pytest.approx(1.25)
    assert idle.met(idle.servers[0]) is False  # lower is better: 1.25x > 1.1x
    gevent = [Run(rate=1790.0)]
    gateway = _result("seed-gateway-1", {"gunicorn gevent w2": gevent, "palfrey wsgi w2": [Run(rate=1900.0)]})
    assert gateway.met(gateway.row("palfrey wsgi w2")) is True
    late = _result(
        "seed-gateway-1", {"gunicorn gevent w2": gevent, "palfrey wsgi w2": [Run(rate=1900.0, timeouts=5)]}
    )
    assert late.met(late.row("palfrey wsgi w2")) is False
    starved = _result(
        "seed-gateway-1",
        {"gunicorn gevent w2": gevent, "palfrey wsgi w2": [Run(rate=1900.0, unanswered=600)]},
    )
    assert starved.met(starved.row("palfrey wsgi w2")) is False  # no late response, but some never came


def test_thread_ceiling_target_and_wrk_headers() -> None:
    """The CPU-bound WSGI row judges the peak thread count; seed rows can send headers (brotli)."""
    ref = [Run(rate=900.0, p99_s=0.2, threads=17)]
    calm = _result(
        "wsgi-cpu-c64", {"palfrey wsgi t16": ref, "palfrey wsgi": [Run(rate=950.0, p99_s=0.1, threads=3)]}
    )
    assert calm.met(calm.row("palfrey wsgi")) is True
    grew = _result(
        "wsgi-cpu-c64", {"palfrey wsgi t16": ref, "palfrey wsgi": [Run(rate=950.0, p99_s=0.1, threads=200)]}
    )
    assert grew.met(grew.row("palfrey wsgi")) is False
    text = report.render(
        [grew], {"cpu": "test"}, {"date": "today"}, {"server": "0", "client": "1", "timeout": 5}
    )
    assert "Peak threads (whole process tree): palfrey wsgi 200, palfrey wsgi t16 17." in text
    brotli = next(s for s in all_scenarios() if s.name == "seed-brotli")
    argv = wrk.WrkCommand(
        "http://x/brotli", 2000, 10, timeout_s=brotli.wrk_timeout, headers=brotli.headers
    ).argv()
    assert argv[argv.index("-H") + 1] == "Accept-Encoding: br" and "2s" in argv


def test_report_renders_na_rows_with_reasons() -> None:
    result = _result(
        "metrics-plaintext",
        {
            "palfrey": [Run(rate=30000.0, p50_s=0.001, p99_s=0.003, rss_bytes=30 << 20)],
            "palfrey --metrics": "no such option: --metrics | x",
        },
    )
    text = report.render(
        [result], {"cpu": "test"}, {"date": "today"}, {"server": "0", "client": "1", "timeout": 5}
    )
    assert "| palfrey | 30,000 |" in text
    assert "| palfrey --metrics | n/a |" in text
    assert "no such option: --metrics \\| x" in text  # a reason cannot break the table
    assert "`metrics-plaintext` | palfrey --metrics | within 5% of off | n/a | n/a |" in text


def test_rss_of_a_process_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(10)"])
    try:
        assert child.pid in rss.process_tree(os.getpid())
        assert rss.rss_bytes(child.pid) > 1 << 20
        assert rss.tree_rss_bytes(os.getpid()) > rss.rss_bytes(child.pid)
    finally:
        child.kill()
        child.wait(timeout=5)
    assert rss.rss_bytes(child.pid) == 0  # gone


def test_seed_chart_draws_every_panel(tmp_path) -> None:
    """The seed chart takes a run with n/a rows and writes a PNG (in the peers' Python, which has
    matplotlib), or says why not."""
    code = (
        "import sys, pathlib\n"
        "from benchmarks.bench.results import Run, ScenarioResult, ServerResult\n"
        "from benchmarks.bench.scenarios import all_scenarios\n"
        "from benchmarks.bench.seedchart import draw_seed\n"
        "results = []\n"
        "for s in all_scenarios():\n"
        "    if s.name.startswith('seed-'):\n"
        "        rows = [ServerResult(x.label, x.key, runs=[Run(rate=100.0, p99_s=1.5, timeouts=3, rss_bytes=50 << 20)])\n"
        "                for x in s.servers[:-1]]\n"
        "        rows.append(ServerResult(s.servers[-1].label, s.servers[-1].key, error='did not start'))\n"
        "        results.append(ScenarioResult(s, rows))\n"
        "print(draw_seed(results, pathlib.Path(sys.argv[1])))\n"
    )
    python = ROOT / "benchmarks" / ".venv-peers" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)
    out = tmp_path / "seed.png"
    done = subprocess.run(
        [str(python), "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    reason = done.stdout.strip()
    assert (reason == "None" and out.stat().st_size > 10_000) or "matplotlib is not installed" in reason, (
        reason
    )


H2LOAD_FAILING = """\
starting benchmark...
spawning thread #0: 1 total client(s). 100000 total requests
Application protocol: h2c
progress: 10% done

finished in 1.52s, 2685.53 req/s, 114.02KB/s
requests: 100000 total, 4097 started, 4082 done, 4081 succeeded, 95919 failed, 95919 errored, 0 timeout
status codes: 4080 2xx, 0 3xx, 0 4xx, 1 5xx
traffic: 173.28KB (177435) total, 56.24KB (57592) headers (space savings 30.85%), 51.82KB (53066) data
                     min         max         mean         sd        +/- sd
time for request:      291us     10.36ms       747us       486us    95.29%
"""


def test_h2load_parse_keeps_failed_and_unfinished_streams() -> None:
    log = "\n".join(f"1796307066125889\t200\t{us}" for us in range(1000, 101000, 1000))  # 1..100 ms
    result = h2load.parse(H2LOAD_FAILING, log)
    assert (result.total, result.done, result.succeeded) == (100000, 4082, 4081)
    assert (result.failed, result.errored, result.timeouts, result.not_done) == (95919, 95919, 0, 95918)
    assert result.status_errors == 1 and result.rps == pytest.approx(2685.53)
    assert result.duration_s == pytest.approx(1.52)
    assert result.latency_s[50.0] == pytest.approx(0.051) and result.latency_s[99.0] == pytest.approx(0.1)
    with pytest.raises(h2load.H2loadError):
        h2load.parse("h2load: connection refused\n")


def test_h2load_targets_count_failed_streams_and_idle_memory_per_connection() -> None:
    clean = Run(rate=9000.0, count=100000)
    failing = Run(rate=13000.0, count=4082, failed=95919, errored=95919, not_done=95918)
    long = _result("h2-100k-one-connection", {"palfrey": [clean], "uvicorn zttp": [failing]})
    assert long.met(long.row("palfrey")) is True
    plain = _result("h2-plaintext", {"palfrey": [Run(rate=30000.0, failed=1)], "uvicorn zttp": [clean]})
    assert plain.met(plain.row("palfrey")) is False  # fast enough, but a failed stream misses the target
    idle = _result(
        "h2-idle1000",
        {
            "palfrey http/1.1": [
                Run(rss_bytes=40 << 20, base_rss_bytes=35 << 20, per_connection_bytes=5120.0)
            ],
            "palfrey h2": [Run(rss_bytes=50 << 20, base_rss_bytes=35 << 20, per_connection_bytes=9216.0)],
        },
    )
    assert idle.ratio(idle.row("palfrey h2")) == pytest.approx(1.8)  # per connection, not total RSS
    assert idle.met(idle.row("palfrey h2")) is True
    text = report.render([long, idle], {}, {}, {"server": "0", "client": "1", "timeout": 5})
    assert "| uvicorn zttp | 13,000 |" in text and "| 4,082 | 95919/95919 | 95918/0 |" in text
    assert "| palfrey h2 | 35.0 | 50.0 | 9.0 | 0/0 | 1.80x |" in text


def test_h2idle_request_frames() -> None:
    data = h2idle.h2_request(b"127.0.0.1:8000", b"/plaintext")
    assert data.startswith(h2idle.PREFACE)
    settings = data[len(h2idle.PREFACE) :][:9]
    assert settings == b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # empty SETTINGS on stream 0
    headers = data[len(h2idle.PREFACE) + 9 :]
    length, kind, flags, stream = int.from_bytes(headers[:3], "big"), headers[3], headers[4], headers[5:9]
    assert (kind, flags, stream) == (0x1, 0x5, b"\x00\x00\x00\x01") and length == len(headers) - 9


def test_targets_table_shows_no_ratio_for_a_count_target() -> None:
    long = _result(
        "h2-100k-one-connection",
        {"palfrey": [Run(rate=900.0, count=100000)], "uvicorn zttp": [Run(rate=3000.0)]},
    )
    text = report.render([long], {}, {}, {"server": "0", "client": "1", "timeout": 5})
    assert "| `h2-100k-one-connection` | palfrey | 0 failed | - | yes |" in text
