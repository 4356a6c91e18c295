"""What the numbers were measured on: CPU, kernel, Python, and the version of every server and library."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from benchmarks.bench.servers import APP_LIBS, PEERS_VENV, ROOT

PROJECT_PACKAGES = ("palfrey", "httptools", "uvloop", "h11", "websockets", "h2")
PEER_PACKAGES = (
    "uvicorn", "granian", "hypercorn", "gunicorn", "starlette", "django",
    "httptools", "uvloop", "h11", "websockets", "wsproto", "zttp", "h2",
)  # fmt: skip
APP_LIB_PACKAGES = ("starlette", "django")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _site_packages(venv: Path) -> list[str]:
    return [str(p) for p in sorted(venv.glob("lib/python3*/site-packages"))]


def versions(paths: list[str], names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `names` found in `paths` (no import, no subprocess)."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=paths):
        name = (dist.metadata["Name"] or "").lower()
        if name in names and name not in found:
            found[name] = dist.version
    return {name: found.get(name, "missing") for name in names}


def _command_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=ROOT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


def python_version(venv: Path) -> str:
    return _command_line([str(venv / "bin" / "python"), "--version"])


def git_revision() -> str:
    head = _command_line(["git", "rev-parse", "--short", "HEAD"])
    dirty = _command_line(["git", "status", "--porcelain", "--", "palfrey"])
    return head + (" (palfrey/ has uncommitted changes)" if dirty and dirty != "unknown" else "")


def describe() -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python (palfrey)": python_version(ROOT / ".venv"),
        "python (peers)": python_version(PEERS_VENV),
        "wrk": _command_line(["wrk", "-v"]),
        "h2load": _command_line(["h2load", "--version"]),
        "palfrey revision": git_revision(),
        "project venv": versions(_site_packages(ROOT / ".venv"), PROJECT_PACKAGES),
        "peers venv": versions(_site_packages(PEERS_VENV), PEER_PACKAGES),
        "palfrey's app libs": versions([str(APP_LIBS)], APP_LIB_PACKAGES),
    }
