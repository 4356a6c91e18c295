"""How each server is started: one command builder per server family, every one with access logs off.

Palfrey runs from the project's `.venv` (the editable checkout, never a package from an index);
the peers run from `benchmarks/.venv-peers`, so they never become palfrey dependencies. Palfrey's
process also sees `benchmarks/.venv-peers/app-libs` (Starlette, Django) so it serves the same
framework versions as the peers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
APPS = BENCH / "apps"
DJANGO_DIR = APPS / "django_seed"
PEERS_VENV = BENCH / ".venv-peers"
PEERS_BIN = PEERS_VENV / "bin"
APP_LIBS = PEERS_VENV / "app-libs"
PALFREY = ROOT / ".venv" / "bin" / "palfrey"
HOST = "127.0.0.1"

# argv builder: (port, auxiliary port for a second listener such as a metrics endpoint) -> argv
Command = Callable[[int, int], list[str]]


@dataclass(frozen=True)
class ServerSpec:
    """One row of a scenario: a label unique in the scenario, a family (`key`) for filters and colours."""

    label: str
    key: str
    command: Command
    interface: str = "asgi"
    extra_env: dict[str, str] = field(default_factory=dict)

    def argv(self, port: int, aux_port: int) -> list[str]:
        return self.command(port, aux_port)


def server_env(spec: ServerSpec, django_db: Path, upstream: str = "") -> dict[str, str]:
    """The environment every server gets: apps importable, nothing inherited that changes behaviour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PALFREY_", "GRANIAN_", "UVICORN_"))}
    for name in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "GUNICORN_CMD_ARGS", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    paths = [str(APPS), str(DJANGO_DIR)]
    if spec.key == "palfrey":
        paths.append(str(APP_LIBS))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["DJANGO_SETTINGS_MODULE"] = "seedsite.settings"
    env["BENCH_DJANGO_DB"] = str(django_db)
    if upstream:
        env["BENCH_UPSTREAM"] = upstream  # the seed's requests/httpx pages call it
    env["PYTHONUNBUFFERED"] = "1"
    env.update(spec.extra_env)
    return env


def palfrey(
    app: str, *extra: str, label: str = "palfrey", interface: str = "asgi", http: str = "httptools"
) -> ServerSpec:
    """palfrey with uvloop; `{aux}` in `extra` becomes the auxiliary port (e.g. a metrics listener)."""

    def command(port: int, aux: int) -> list[str]:
        base = [str(PALFREY), app, "--host", HOST, "--port", str(port), "--http", http]
        base += ["--loop", "uvloop", "--no-access-log", "--log-level", "warning"]
        return base + [arg.replace("{aux}", str(aux)) for arg in extra]

    return ServerSpec(label, "palfrey", command, interface)


def uvicorn(app: str, *extra: str, label: str = "uvicorn", http: str = "httptools") -> ServerSpec:
    def command(port: int, aux: int) -> list[str]:
        base = [str(PEERS_BIN / "uvicorn"), app, "--host", HOST, "--port", str(port), "--http", http]
        return [*base, "--loop", "uvloop", "--no-access-log", "--log-level", "warning", *extra]

    return ServerSpec(label, "uvicorn", command)


def granian(
    app: str,
    interface: str = "asgi",
    workers: int = 1,
    threads: int | None = None,
    label: str = "granian",
    http: str | None = None,  # "2": HTTP/2 only (h2c prior knowledge on cleartext)
) -> ServerSpec:
    def command(port: int, aux: int) -> list[str]:
        argv = [str(PEERS_BIN / "granian"), "--interface", interface, "--host", HOST, "--port", str(port)]
        argv += ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
        if http is not None:
            argv += ["--http", http]
        if interface == "asgi":
            argv += ["--loop", "uvloop"]
        if threads is not None:
            argv += ["--blocking-threads", str(threads)]
        return [*argv, app]

    return ServerSpec(label, "granian", command, interface)


def hypercorn(app: str, *extra: str, label: str = "hypercorn") -> ServerSpec:
    """hypercorn serves HTTP/1.1 and cleartext HTTP/2 (prior knowledge, h2c upgrade) by default."""

    def command(port: int, aux: int) -> list[str]:
        argv = [str(PEERS_BIN / "hypercorn"), "--worker-class", "uvloop", "--bind", f"{HOST}:{port}"]
        return [*argv, "--workers", "1", "--log-level", "warning", *extra, app]

    return ServerSpec(label, "hypercorn", command)


def gunicorn(
    app: str,
    worker_class: str,
    workers: int = 1,
    threads: int = 1,
    label: str = "",
    extra: tuple[str, ...] = (),
) -> ServerSpec:
    def command(port: int, aux: int) -> list[str]:
        argv = [str(PEERS_BIN / "gunicorn"), "--worker-class", worker_class, "--workers", str(workers)]
        argv += ["--threads", str(threads), "--bind", f"{HOST}:{port}", "--log-level", "warning", *extra]
        return [*argv, app]

    default_label = f"gunicorn {worker_class}" + (f" w{workers}" if workers > 1 else "")
    default_label += f" t{threads}" if threads > 1 else ""
    return ServerSpec(label or default_label, "gunicorn", command, "wsgi")


def gunicorn_palfrey(app: str, *, metrics: bool, workers: int = 1, label: str = "") -> ServerSpec:
    """gunicorn (from the project's .venv, next to palfrey) with palfrey's worker class; `metrics`
    sets PALFREY_METRICS_BIND through gunicorn's own `-e` (raw_env) on the auxiliary port."""

    def command(port: int, aux: int) -> list[str]:
        argv = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-k", "palfrey.workers.PalfreyWorker"]
        argv += ["--workers", str(workers), "--bind", f"{HOST}:{port}", "--log-level", "warning"]
        argv += ["-e", f"PALFREY_METRICS_BIND={HOST}:{aux}"] if metrics else []
        return [*argv, app]

    default_label = "gunicorn+palfrey" + (" metrics" if metrics else "")
    return ServerSpec(label or default_label, "palfrey", command)
