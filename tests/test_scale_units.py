"""Pure parts of the running-at-scale features: the probe answers and the master's readiness rules."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from palfrey.health_endpoint import probe_response
from palfrey.supervisor.handle import BOOTING, DRAINING, READY
from palfrey.supervisor.health import INF
from palfrey.supervisor.probes import Probes


def status_and_body(answer: bytes | None) -> tuple[int, bytes]:
    assert answer is not None
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_probe_paths() -> None:
    ready = lambda: None  # noqa: E731
    assert status_and_body(probe_response(b"GET /livez HTTP/1.1\r\n\r\n", ready)) == (200, b"ok\n")
    assert status_and_body(probe_response(b"GET /readyz?verbose HTTP/1.0\n\n", ready)) == (200, b"ready\n")
    assert status_and_body(probe_response(b"HEAD /readyz HTTP/1.1\r\n\r\n", ready)) == (200, b"")
    assert status_and_body(probe_response(b"POST /livez HTTP/1.1\r\n\r\n", ready))[0] == 405
    assert (
        probe_response(b"GET /metrics HTTP/1.1\r\n\r\n", ready) is None
    )  # not a probe: the caller routes it
    assert probe_response(b"garbage\r\n\r\n", ready) is None


def test_readyz_gives_the_reason() -> None:
    answer = probe_response(b"GET /readyz HTTP/1.1\r\n\r\n", lambda: "no worker ready")
    assert status_and_body(answer) == (503, b"no worker ready\n")
    assert b"cache-control: no-store" in (answer or b"").lower()
    # /livez does not ask: it answers as long as the loop serving it turns.
    assert status_and_body(probe_response(b"GET /livez HTTP/1.1\r\n\r\n", lambda: "shutting down"))[0] == 200


def fake_master(*states: str, delay: float = 0.0, stopping: str | None = None) -> Any:
    config = SimpleNamespace(shutdown_delay=delay, health_bind=None)
    workers = {n: SimpleNamespace(state=state) for n, state in enumerate(states)}
    return SimpleNamespace(config=config, workers=workers, stopping=stopping)


def test_master_readiness() -> None:
    assert Probes(fake_master(READY, BOOTING)).not_ready() is None
    assert Probes(fake_master(BOOTING, DRAINING)).not_ready() == "no worker ready"
    assert Probes(fake_master()).not_ready() == "no worker ready"
    assert Probes(fake_master(READY, stopping="graceful")).not_ready() == "shutting down"


def test_shutdown_delay_is_one_deadline() -> None:
    probes = Probes(fake_master(READY, delay=5))
    assert probes.on_term(100.0)
    assert probes.not_ready() == "shutting down: in the 5s shutdown delay"
    assert not probes.on_term(101.0), "a second TERM does not restart the delay"
    assert probes.next_deadline() == 105.0
    assert not probes.delay_over(104.9)
    assert probes.delay_over(105.0)
    assert probes.next_deadline() == INF
    assert not Probes(fake_master(READY)).on_term(100.0), "no delay set: TERM stops at once"
