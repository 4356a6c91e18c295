"""Run wrk and turn its text report into numbers.

wrk prints latency with units (us/ms/s/m/h) and counts only responses with status >= 400 as
"Non-2xx or 3xx"; the parser keeps those meanings and says so in field names.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = r"(\d+(?:\.\d+)?|-?nan|inf)"
_PERCENTILE = re.compile(rf"^\s*(\d+(?:\.\d+)?)%\s+{_NUMBER}(us|ms|s|m|h)?\s*$", re.MULTILINE)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkError(Exception):
    """wrk did not run or printed something we cannot read."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    latency_s: dict[float, float] = field(default_factory=dict)  # percentile -> seconds
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    timeouts: int = 0
    status_errors: int = 0  # responses with status >= 400 ("Non-2xx or 3xx" in wrk's words)

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts


def parse(text: str) -> WrkResult:
    """Parse wrk's stdout (run with --latency for percentiles)."""
    requests = _REQUESTS.search(text)
    rps = _RPS.search(text)
    if requests is None or rps is None:
        raise WrkError(f"unreadable wrk output: {text.strip()[-300:]!r}")
    latency: dict[float, float] = {}
    completed = int(requests.group(1))
    for match in _PERCENTILE.finditer(text if completed else ""):  # no request: wrk prints zeros
        value = float(match.group(2)) if "nan" not in match.group(2) else float("nan")
        if value == value:  # skip NaN: no request completed
            latency[float(match.group(1))] = value * _TIME_UNITS[match.group(3) or "s"]
    socket = _SOCKET.search(text)
    errors = [int(x) for x in socket.groups()] if socket else [0, 0, 0, 0]
    non_2xx = _NON_2XX.search(text)
    return WrkResult(
        requests=completed,
        duration_s=float(requests.group(2)) * _TIME_UNITS[requests.group(3)],
        rps=float(rps.group(1)),
        latency_s=latency,
        connect_errors=errors[0],
        read_errors=errors[1],
        write_errors=errors[2],
        timeouts=errors[3],
        status_errors=int(non_2xx.group(1)) if non_2xx else 0,
    )


def post_script(directory: Path, size: int) -> Path:
    """A Lua script that makes wrk POST `size` bytes (wrk adds Content-Length itself)."""
    path = directory / f"post_{size}.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f'wrk.body = string.rep("a", {size})\n'
        'wrk.headers["Content-Type"] = "application/octet-stream"\n'
    )
    return path


@dataclass(frozen=True)
class WrkCommand:
    url: str
    connections: int
    duration_s: int
    threads: int = 1
    timeout_s: int = 5
    script: Path | None = None
    cpus: str | None = None  # taskset list for wrk itself
    headers: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        argv = ["taskset", "-c", self.cpus] if self.cpus else []
        argv += ["wrk", f"-t{self.threads}", f"-c{self.connections}", f"-d{self.duration_s}s"]
        argv += ["--latency", "--timeout", f"{self.timeout_s}s"]
        for header in self.headers:
            argv += ["-H", header]
        if self.script is not None:
            argv += ["-s", str(self.script)]
        return [*argv, self.url]


def run(command: WrkCommand) -> WrkResult:
    """Run wrk, bounded to its duration plus a margin, and parse what it printed."""
    try:
        done = subprocess.run(
            command.argv(),
            capture_output=True,
            text=True,
            timeout=command.duration_s + command.timeout_s + 30,
            start_new_session=True,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {exc.timeout:.0f} s") from exc
    except OSError as exc:
        raise WrkError(f"cannot run wrk: {exc}") from exc
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
    return parse(done.stdout)
