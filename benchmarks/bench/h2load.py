"""Run h2load (nghttp2's HTTP/2 load client) and turn its report and request log into numbers.

h2load prints min/max/mean latency only, so percentiles come from its `--log-file` (one line per
finished request: start µs, status, µs until the end of the response). Its request counters are
kept as h2load means them, because a server that fails streams must not look fast:

- `failed`: requests that did not complete successfully (reset streams, connections lost, GOAWAY);
- `errored`: the subset that failed because of a stream or connection error;
- `timeout`: requests h2load gave up on;
- `not_done` (only meaningful for a fixed `-n` count): requests never finished at all.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_FINISHED = re.compile(r"^finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", re.MULTILINE)
_REQUESTS = re.compile(
    r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout",
    re.MULTILINE,
)
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.MULTILINE)
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


class H2loadError(Exception):
    """h2load did not run or printed something we cannot read."""


@dataclass(frozen=True)
class H2loadResult:
    total: int
    started: int
    done: int
    succeeded: int  # responses with a 2xx/3xx status
    failed: int
    errored: int
    timeouts: int
    status_4xx: int
    status_5xx: int
    duration_s: float
    rps: float
    latency_s: dict[float, float]  # percentile -> seconds, from the request log

    @property
    def status_errors(self) -> int:
        return self.status_4xx + self.status_5xx

    @property
    def not_done(self) -> int:
        return max(0, self.total - self.done)


def percentiles(log: str, wanted: tuple[float, ...] = (50.0, 99.0)) -> dict[float, float]:
    """Nearest-rank percentiles (seconds) of the third column of an h2load `--log-file`."""
    durations = sorted(int(parts[2]) for line in log.splitlines() if len(parts := line.split("\t")) >= 3)
    if not durations:
        return {}
    last = len(durations) - 1
    return {p: durations[min(last, int(p / 100 * len(durations)))] * 1e-6 for p in wanted}


def parse(text: str, log: str = "") -> H2loadResult:
    """Parse h2load's stdout; `log` is the content of its --log-file (for percentiles)."""
    finished, requests, status = _FINISHED.search(text), _REQUESTS.search(text), _STATUS.search(text)
    if finished is None or requests is None or status is None:
        raise H2loadError(f"unreadable h2load output: {text.strip()[-300:]!r}")
    total, started, done, succeeded, failed, errored, timeouts = (int(x) for x in requests.groups())
    return H2loadResult(
        total=total,
        started=started,
        done=done,
        succeeded=succeeded,
        failed=failed,
        errored=errored,
        timeouts=timeouts,
        status_4xx=int(status.group(3)),
        status_5xx=int(status.group(4)),
        duration_s=float(finished.group(1)) * _UNITS[finished.group(2)],
        rps=float(finished.group(3)),
        latency_s=percentiles(log),
    )


@dataclass(frozen=True)
class H2loadCommand:
    """Cleartext HTTP/2 with prior knowledge (h2load's default for http:// URLs)."""

    url: str
    clients: int = 8
    streams: int = 16  # -m: concurrent streams per connection
    duration_s: int | None = None  # -D; else `requests` (-n)
    requests: int = 0
    data: Path | None = None  # -d: POST this file
    log_file: Path | None = None
    cpus: str | None = None  # taskset list for h2load itself
    threads: int = 1

    def argv(self) -> list[str]:
        argv = ["taskset", "-c", self.cpus] if self.cpus else []
        argv += ["h2load", "-c", str(self.clients), "-m", str(self.streams), "-t", str(self.threads)]
        argv += ["-D", str(self.duration_s)] if self.duration_s else ["-n", str(self.requests)]
        if self.data is not None:
            argv += ["-d", str(self.data)]
        if self.log_file is not None:
            argv += ["--log-file", str(self.log_file)]
        return [*argv, self.url]

    @property
    def limit_s(self) -> float:
        """How long h2load may run before it is called stuck (a -n run is bounded generously)."""
        return (self.duration_s or 0) + 60 + self.requests / 500


def post_file(directory: Path, size: int) -> Path:
    """The body h2load POSTs: `size` bytes of "a" (h2load sends its content-length)."""
    path = directory / f"post_{size}.bin"
    path.write_bytes(b"a" * size)
    return path


def h2c_request(
    port: int, path: str, timeout: float, data: Path | None = None, host: str = "127.0.0.1"
) -> tuple[int, bytes]:
    """One request over cleartext HTTP/2 with prior knowledge, by curl (nghttp2 inside): readiness
    and the probe that checks each server answers the scenario's request with the expected bytes.
    A response over any other HTTP version counts as a failure (status 0)."""
    argv = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", f"{timeout:.1f}", "-o", "-"]
    argv += ["-w", "\\n%{http_code} %{http_version}"]
    if data is not None:
        argv += ["--data-binary", f"@{data}", "-H", "content-type: application/octet-stream"]
    try:
        done = subprocess.run(
            [*argv, f"http://{host}:{port}{path}"], capture_output=True, timeout=timeout + 5
        )
    except (subprocess.TimeoutExpired, OSError) as exc:
        raise OSError(f"curl --http2-prior-knowledge: {exc}") from exc
    body, _, trailer = done.stdout.rpartition(b"\n")
    if done.returncode != 0 or not trailer:
        raise OSError(f"curl exited {done.returncode}: {done.stderr.decode(errors='replace').strip()[-200:]}")
    code, version = trailer.decode().split()
    return (int(code) if version == "2" else 0), body


def run(command: H2loadCommand) -> H2loadResult:
    """Run h2load, bounded, and parse what it printed and logged."""
    try:
        done = subprocess.run(
            command.argv(),
            capture_output=True,
            text=True,
            timeout=command.limit_s,
            start_new_session=True,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise H2loadError(f"h2load did not finish within {exc.timeout:.0f} s") from exc
    except OSError as exc:
        raise H2loadError(f"cannot run h2load: {exc}") from exc
    if done.returncode != 0 and "finished in" not in done.stdout:
        raise H2loadError(f"h2load exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
    log = command.log_file.read_text() if command.log_file and command.log_file.exists() else ""
    return parse(done.stdout, log)
