"""The master's options: --workers auto, one supervised worker, memory and lifetime limits, --preload,
the docs_src examples, and unit tests of the pure parts (CPU counting, the reload filter, the rule that
decides when a master runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from palfrey.config import Config, ConfigError
from palfrey.supervisor import uses_master
from palfrey.supervisor.process import cgroup_cpu_quota, describe_status, usable_cpus
from palfrey.supervisor.reload import make_filter
from tests.master_support import count_lines, ready_pids, request, restarted_pids, wait_exit, wait_for_count
from tests.support import ROOT, ServerProcess, run_server

APP = "tests.apps.workers_app:app"
QUIET = ("--no-access-log",)


def test_workers_auto_uses_the_cpus_this_process_may_use() -> None:
    with run_server(APP, *QUIET, "--workers", "auto") as server:
        server.wait_for_line(rf"Starting {usable_cpus()} workers?$")
    mask = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(mask)})  # this thread only; the server inherits it
        with run_server(
            APP, *QUIET, env={"WEB_CONCURRENCY": "auto", "PALFREY_LIMIT_MAX_REQUESTS": "1000"}
        ) as server:
            server.wait_for_line(r"Starting 1 worker$")
    finally:
        os.sched_setaffinity(0, mask)


def test_one_supervised_worker_is_recycled_without_a_gap() -> None:
    with run_server(APP, *QUIET, "--workers", "1", "--limit-max-requests", "5") as server:
        first = ready_pids(server)[0]
        assert f"1 worker ready (pid {first})" in server.output()  # not "All 1 workers ready"
        for _ in range(5):
            assert request(server.port, "/pid")[:3:2] == (200, str(first).encode())
        wait_for_count(server, rf"Worker \(pid {first}\) served 5 requests \(limit 5\): recycling it", 1)
        second = ready_pids(server, occurrence=2)[0]
        assert second != first
        wait_for_count(server, rf"Worker \(pid {first}\) exited \(exit code 0\)", 1)
        assert request(server.port, "/pid")[:3:2] == (200, str(second).encode())


def test_lifetime_and_memory_limits_recycle() -> None:
    with run_server(APP, *QUIET, "--workers", "1", "--limit-worker-lifetime", "1") as server:
        first = ready_pids(server)[0]
        wait_for_count(server, rf"Worker \(pid {first}\) reached its lifetime of 1s: recycling it", 1)
        wait_for_count(server, rf"Worker \(pid {first}\) exited \(exit code 0\)", 1)
        assert first not in ready_pids(server, occurrence=2)
    with run_server(APP, *QUIET, "--limit-max-memory", "200") as server:
        first = ready_pids(server)[0]
        assert request(server.port, "/leak?mib=220")[0] == 200
        wait_for_count(
            server, rf"Worker \(pid {first}\) uses \d+ MiB of memory \(limit 200 MiB\): recycling it", 1
        )
        wait_for_count(server, rf"Worker \(pid {first}\) exited \(exit code 0\)", 1)
        assert first not in ready_pids(server, occurrence=2)


def test_memory_limit_below_a_fresh_worker_is_refused_not_looped() -> None:
    """A limit a fresh worker already exceeds would recycle endlessly: one clear error, no recycling."""
    with run_server(APP, *QUIET, "--limit-max-memory", "1") as server:
        first = ready_pids(server)[0]
        wait_for_count(server, rf"Worker \(pid {first}\) uses \d+ MiB right after booting, above", 1)
        for _ in range(5):
            assert request(server.port, "/pid")[:3:2] == (200, str(first).encode())
        time.sleep(1.5)  # two memory samples would have been taken: none may recycle it
        assert request(server.port, "/pid")[:3:2] == (200, str(first).encode())
    assert count_lines(server, r"\): recycling it") == 0, server.output()
    assert "Raise the limit above a fresh worker's size" in server.output()


def test_preload_imports_the_app_once_in_the_master() -> None:
    with run_server(APP, *QUIET, "--workers", "2", "--preload") as server:
        pids = ready_pids(server)
        assert {int(request(server.port, "/pid")[2]) for _ in range(20)} <= set(pids)
        imports = wait_for_count(server, r"workers_app imported in (\d+)", 1)
        assert [int(m.group(1)) for m in imports] == [server.proc.pid]
    with run_server(APP, *QUIET, "--workers", "2") as server:
        pids = ready_pids(server)
        imports = wait_for_count(server, r"workers_app imported in (\d+)", 2)
        assert sorted(int(m.group(1)) for m in imports) == sorted(pids)


def test_preload_failure_exits_3() -> None:
    from tests.support import spawn

    server = spawn(APP, "--workers", "2", "--preload", "--port", "0", env={"WORKERS_APP_FAIL_IMPORT": "1"})
    assert wait_exit(server, 20) == 3
    assert count_lines(server, r"could not be preloaded") == 1
    assert count_lines(server, r"Booting worker") == 0


def test_docs_workers_cli_example() -> None:
    with run_server("docs_src.workers.workers_cli:app", *QUIET, "--workers", "2") as server:
        pids = ready_pids(server)
        wait_for_count(server, r"worker \d+ started", 2)
        assert request(server.port, "/")[2].startswith(b"Hello from worker ")
        server.signal(signal.SIGHUP)
        assert not set(pids) & set(restarted_pids(server))


def test_docs_programmatic_run_example() -> None:
    env = {**os.environ, "PORT": "0", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "docs_src.reference.programmatic_run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(ROOT),
    )
    server = ServerProcess(proc)
    try:
        port = int(server.wait_for_line(r"Palfrey running on http://127\.0\.0\.1:(\d+)", timeout=15).group(1))
        assert len(ready_pids(server)) == 4
        assert request(port, "/")[2].startswith(b"Hello from worker ")
        server.signal(signal.SIGTERM)
        assert wait_exit(server, 15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# Unit tests of the pure parts.


def test_uses_master_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    assert not uses_master(Config(APP))
    assert not uses_master(Config(APP, workers=1))
    assert not uses_master(Config(APP, workers="1"))
    assert uses_master(Config(APP, workers=2))
    for setting in (
        {"reload": True},
        {"limit_max_requests": 10},
        {"limit_max_memory": 100},
        {"limit_worker_lifetime": 60},
        {"timeout_worker_healthcheck": 3},
        {"preload": True},
        {"reuse_port": True},
    ):
        assert uses_master(Config(APP, **setting)), setting
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert Config(APP).workers == 3 and uses_master(Config(APP))


@pytest.mark.parametrize("bad", ["0", "-1", "many", "1.5"])
def test_bad_workers_values(bad: str) -> None:
    with pytest.raises(ConfigError, match="--workers"):
        Config(APP, workers=bad)


def test_workers_auto_value() -> None:
    assert Config(APP, workers="auto").workers == usable_cpus()
    assert Config(APP, workers=" AUTO ").workers == usable_cpus()


def _tree(tmp_path: Path, cgroup: str, files: dict[str, str]) -> tuple[str, str]:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    root = tmp_path / "cgroup"
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return str(root), str(proc)


@pytest.mark.parametrize(
    ("cgroup", "files", "quota"),
    [
        ("0::/app.slice/web\n", {"app.slice/web/cpu.max": "150000 100000\n"}, 1.5),
        ("0::/\n", {"cpu.max": "max 100000\n"}, None),
        ("0::/elsewhere\n", {"cpu.max": "200000 100000\n"}, 2.0),  # container: mounted at the root
        (
            "4:cpu,cpuacct:/docker/abc\n0::/\n",
            {
                "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000",
                "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
            },
            0.5,
        ),
        ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ("", {}, None),
    ],
)
def test_cgroup_cpu_quota(tmp_path: Path, cgroup: str, files: dict[str, str], quota: float | None) -> None:
    root, proc = _tree(tmp_path, cgroup, files)
    assert cgroup_cpu_quota(root, proc) == quota
    cpus = usable_cpus(root, proc)
    assert cpus >= 1
    if quota is not None:
        assert cpus <= max(1, -(-quota // 1))


def test_reload_filter(tmp_path: Path) -> None:
    top = str(tmp_path)
    accept = make_filter([top], ["*.html"], ["tests/*"])
    assert accept(f"{top}/app.py")
    assert accept(f"{top}/templates/index.html")
    assert not accept(f"{top}/notes.txt")
    assert not accept(f"{top}/.git/config.py")
    assert not accept(f"{top}/__pycache__/app.cpython-311.pyc")
    assert not accept(f"{top}/.app.py.swp")
    assert not accept(f"{top}/tests/test_app.py")
    assert not accept(f"{top}/.venv/")


def test_describe_status() -> None:
    assert describe_status(3 << 8) == (3, None, "exit code 3")
    assert describe_status(signal.SIGKILL) == (None, signal.SIGKILL, "signal SIGKILL")
