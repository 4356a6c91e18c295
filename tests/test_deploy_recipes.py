"""The nginx, systemd and Kubernetes recipes of docs_src/deploy/, run or checked as written (issue 16).

- nginx: the recipe's server block (TLS) in front of two real masters started with the recipe's
  command: requests are spread over both, the app sees the client's address and `https`, a client's
  own X-Forwarded-For is not believed, and a master that shut down costs nothing.
- systemd: the units pass `systemd-analyze verify`; the service's ExecStart runs under Debian's
  `systemd-socket-activate` (the socket on fd 3, LISTEN_FDS/LISTEN_PID set) and serves, reloads (HUP)
  and stops as the unit says; and a restart with the socket held open (as systemd does) refuses
  nothing: connections made meanwhile wait in the accept queue and are answered.
- Kubernetes: the manifest is parsed, every palfrey flag goes through palfrey's own CLI, the probes
  name the --health-bind port and /livez, /readyz, the grace period outlasts delay + graceful
  timeout, and the container's args run and answer the probes as the manifest expects.
"""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import trustme
import yaml

from tests.deploy_support import (
    APP,
    arg,
    commented_command,
    parse_palfrey_args,
    recipe,
    set_arg,
    substitute,
    tool,
    unit_values,
)
from tests.master_support import RESTARTED, wait_after
from tests.support import ROOT, ServerProcess, free_port, palfrey_command, run_server, spawn_command, stop

# ----------------------------------------------------------------------------------------------------
# nginx
# ----------------------------------------------------------------------------------------------------


def nginx_config(tmp_path: Path, port: int, upstreams: list[int], cert: Path, key: Path) -> Path:
    site = recipe("nginx.conf")
    for number, upstream in enumerate(upstreams, 1):
        site = substitute(site, f"server 10.0.0.1{number}:8000 ", f"server 127.0.0.1:{upstream} ")
    site = substitute(site, "listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    site = substitute(site, "/etc/ssl/certs/example.com.pem", str(cert))
    site = substitute(site, "/etc/ssl/private/example.com.key", str(key))
    # Test-only: say which master answered.
    site = substitute(
        site,
        "proxy_pass http://palfrey;",
        "proxy_pass http://palfrey;\n        add_header X-Upstream $upstream_addr always;",
    )
    (tmp_path / "palfrey.conf").write_text(site)
    temp = "\n".join(
        f"{kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"""daemon off;
master_process off;
worker_processes 1;
pid {tmp_path / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    {temp}
    include {tmp_path / "palfrey.conf"};
}}
"""
    )
    return main


@contextmanager
def nginx(config: Path, prefix: Path, port: int) -> Iterator[ServerProcess]:
    process = spawn_command([tool("nginx"), "-p", str(prefix), "-c", str(config), "-e", "stderr"])
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.proc.poll() is None, process.output()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)
        yield process
    finally:
        stop(process)


def test_nginx_in_front_of_two_masters(tmp_path: Path, tls_certs: tuple[trustme.CA, Path, Path]) -> None:
    ca, cert, key = tls_certs
    argv = commented_command(recipe("nginx.conf"))[1:]
    assert argv[0] == "main:app" and arg(argv, "--forwarded-allow-ips") == "10.0.0.5"
    argv = set_arg(set_arg([APP, *argv[1:]], "--workers", "2"), "--forwarded-allow-ips", "127.0.0.1")
    argv = set_arg(argv, "--host", "127.0.0.1")
    port = free_port()
    with ExitStack() as stack:
        masters = [stack.enter_context(run_server(*set_arg(argv, "--port", "0"))) for _ in range(2)]
        config = nginx_config(tmp_path, port, [m.port for m in masters], cert, key)
        stack.enter_context(nginx(config, tmp_path, port))
        context = ssl.create_default_context()
        ca.configure_trust(context)
        # From 127.0.0.3, so the client address the app sees can only have come from nginx's header.
        transport = httpx.HTTPTransport(verify=context, local_address="127.0.0.3")
        client = stack.enter_context(httpx.Client(transport=transport, timeout=10))
        url = f"https://127.0.0.1:{port}/"
        upstreams = set()
        for _ in range(8):
            response = client.get(url, headers={"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "ftp"})
            assert response.status_code == 200
            body = response.json()
            assert (body["client"], body["scheme"]) == ("127.0.0.3", "https"), body
            upstreams.add(response.headers["x-upstream"])
        assert upstreams == {f"127.0.0.1:{m.port}" for m in masters}
        posted = client.post(url, content=b"y" * 100_000)
        assert posted.json()["received"] == 100_000
        # One master gone: nginx's connection is refused and it passes every request to the other.
        stop(masters[0])
        for method in ("GET", "POST"):
            for _ in range(4):
                response = client.request(method, url, content=b"z" if method == "POST" else None)
                assert response.status_code == 200, response.text
                assert response.headers["x-upstream"].endswith(f":{masters[1].port}")


# ----------------------------------------------------------------------------------------------------
# systemd socket activation
# ----------------------------------------------------------------------------------------------------


def service_argv() -> list[str]:
    """The service's ExecStart as argv, its palfrey binary this checkout's `python -m palfrey`."""
    exec_start = unit_values(recipe("palfrey.service"))["Service.ExecStart"]
    assert len(exec_start) == 1
    argv = exec_start[0].split()
    assert argv[0] == "/srv/app/.venv/bin/palfrey" and argv[1] == "main:app"
    return [*palfrey_command(), APP, *argv[2:]]


def test_systemd_units_verify_and_agree(tmp_path: Path) -> None:
    service = substitute(
        recipe("palfrey.service"), "/srv/app/.venv/bin/palfrey", f"{sys.executable} -m palfrey"
    )
    service = substitute(service, "WorkingDirectory=/srv/app", f"WorkingDirectory={ROOT}")
    (tmp_path / "palfrey.service").write_text(service)
    (tmp_path / "palfrey.socket").write_text(recipe("palfrey.socket"))
    verify = subprocess.run(
        [tool("systemd-analyze"), "verify", "./palfrey.socket", "./palfrey.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, ""), "systemd-analyze complains"
    units = unit_values(recipe("palfrey.service"))
    socket_unit = unit_values(recipe("palfrey.socket"))
    assert units["Unit.Requires"] == ["palfrey.socket"]
    assert units["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert units["Service.KillMode"] == ["mixed"]  # TERM to the master only
    assert socket_unit["Socket.ListenStream"] == ["0.0.0.0:8000"]  # one socket: it is fd 3
    config = parse_palfrey_args(service_argv()[3:])
    assert config.fd == 3
    graceful = config.timeout_graceful_shutdown
    assert graceful is not None and float(units["Service.TimeoutStopSec"][0]) > graceful


def test_systemd_socket_activation_serves_reloads_and_stops() -> None:
    port = free_port()
    argv = set_arg(service_argv(), "--health-bind", "127.0.0.1:0")
    argv = set_arg(argv, "--workers", "2")
    launcher = [tool("systemd-socket-activate"), "-l", f"127.0.0.1:{port}", "-E", "PYTHONUNBUFFERED=1"]
    # systemd-socket-activate starts the service on the first connection, as systemd would.
    server = spawn_command([*launcher, "-E", "NO_COLOR=1", *argv])
    try:
        server.wait_for_line(r"Listening on 127\.0\.0\.1:\d+", timeout=10)
        url = f"http://127.0.0.1:{port}/"
        first = httpx.get(url, timeout=30)  # waits in the accept queue while palfrey starts
        assert first.status_code == 200 and first.json()["method"] == "GET"
        assert f"Palfrey running on http://127.0.0.1:{port}" in server.output()
        server.signal(signal.SIGHUP)  # ExecReload
        deadline = time.monotonic() + 30
        while "Restart complete" not in server.output():  # answering throughout the reload
            assert httpx.get(url, timeout=10).status_code == 200
            assert time.monotonic() < deadline, server.output()
        wait_after(server, r"restarting all workers", 1, RESTARTED)
        assert httpx.get(url, timeout=10).status_code == 200
        server.signal(signal.SIGTERM)  # systemctl stop, KillMode=mixed: the master only
        assert server.wait_exit(timeout=40) == 0, server.output()
    finally:
        stop(server)


def launch_on_fd3(listener: socket.socket, argv: list[str]) -> ServerProcess:
    """What systemd does for the service: the socket as fd 3, LISTEN_FDS=1, LISTEN_PID=the service."""
    code = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_FDS'] = '1'; "
        "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.argv[2], sys.argv[2:])"
    )
    command = [sys.executable, "-c", code, str(listener.fileno()), *argv]
    return spawn_command(command, pass_fds=(listener.fileno(),))


def test_systemd_restart_with_the_socket_held_refuses_nothing() -> None:
    argv = set_arg(set_arg(service_argv(), "--health-bind", "127.0.0.1:0"), "--workers", "2")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(2048)
        port = listener.getsockname()[1]
        results: list[Any] = []

        def client() -> None:
            try:
                results.append(httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code)
            except httpx.HTTPError as exc:
                results.append(repr(exc))

        first = launch_on_fd3(listener, argv)
        try:
            first.wait_for_line("Palfrey running on", timeout=20)
            assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
            first.signal(signal.SIGTERM)
            assert first.wait_exit(timeout=30) == 0, first.output()
        finally:
            stop(first)
        # Nobody serves the socket now (systemctl restart, between stop and start).
        threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
        for thread in threads:
            thread.start()
        second = launch_on_fd3(listener, argv)
        try:
            second.wait_for_line("Palfrey running on", timeout=20)
            for thread in threads:
                thread.join(timeout=30)
            assert results == [200] * 8, results
        finally:
            stop(second)


# ----------------------------------------------------------------------------------------------------
# Kubernetes
# ----------------------------------------------------------------------------------------------------


def manifest() -> tuple[dict[str, Any], dict[str, Any]]:
    documents = list(yaml.safe_load_all(recipe("kubernetes.yaml")))
    kinds = {document["kind"]: document for document in documents}
    assert sorted(kinds) == ["Deployment", "Service"]
    return kinds["Deployment"], kinds["Service"]


def container_argv(deployment: dict[str, Any]) -> list[str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["palfrey"]
    return list(container["args"])


def flag(argv: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in argv if a.startswith(f"{name}=")]
    return value


def test_kubernetes_manifest_agrees_with_palfrey() -> None:
    deployment, service = manifest()
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config = parse_palfrey_args(container_argv(deployment))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == config.port
    assert config.health_bind is not None
    assert config.health_bind.rsplit(":", 1)[1] == str(ports["health"])
    assert config.host == "0.0.0.0" and config.health_bind.startswith(
        "0.0.0.0:"
    )  # the kubelet probes from outside
    for probe, path in (
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/livez"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "health"}
    assert config.shutdown_delay and config.timeout_graceful_shutdown
    assert pod["terminationGracePeriodSeconds"] > config.shutdown_delay + config.timeout_graceful_shutdown
    readiness = container["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < config.shutdown_delay
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert flag(container_argv(deployment), "--workers") == "auto"


def test_kubernetes_container_args_answer_the_probes() -> None:
    deployment, _ = manifest()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    argv = container_argv(deployment)
    health = free_port()
    swaps = {
        "--host": "127.0.0.1",
        "--port": "0",
        "--health-bind": f"127.0.0.1:{health}",
        # Long enough that the probes below land inside the delay on a loaded machine too (each
        # httpx request may take a few hundred ms there); the server exits once it has run out.
        "--shutdown-delay": "5",
    }
    argv = [a.split("=")[0] + "=" + swaps[a.split("=")[0]] if a.split("=")[0] in swaps else a for a in argv]
    argv = [APP if a == "main:app" else a for a in argv]
    probes = {name: container[name]["httpGet"]["path"] for name in ("readinessProbe", "livenessProbe")}
    with run_server(*argv) as server:
        base = f"http://127.0.0.1:{health}"
        deadline = time.monotonic() + 15
        while httpx.get(base + probes["readinessProbe"], timeout=5).status_code != 200:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        assert httpx.get(base + probes["livenessProbe"], timeout=5).status_code == 200
        assert httpx.get(server.url, timeout=5).status_code == 200
        server.signal(signal.SIGTERM)
        deadline = time.monotonic() + 1.5
        while httpx.get(base + probes["readinessProbe"], timeout=5).status_code != 503:
            assert time.monotonic() < deadline, "readyz did not turn 503 on SIGTERM"
            time.sleep(0.02)
        assert httpx.get(base + probes["livenessProbe"], timeout=5).status_code == 200
        assert httpx.get(server.url, timeout=5).status_code == 200  # still serving in the delay
        assert server.wait_exit(timeout=20) == 0
