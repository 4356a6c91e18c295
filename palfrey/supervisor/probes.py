"""The master's side of --health-bind and --shutdown-delay.

`/livez` and `/readyz` are answered from the master's `selectors` loop (the listener is
`metrics.endpoint.SelectorEndpoint`, shared with `/metrics` when --metrics-bind names the same
address), so `/livez` answering proves the supervising loop turns, and `/readyz` reports what the
master knows: whether any worker is ready, and whether it is shutting down or in its shutdown delay.

--shutdown-delay: the first SIGTERM only starts the delay (readiness turns 503 at once; every
worker keeps accepting and serving); when it is over the master starts the normal graceful
shutdown. A second TERM, or INT/QUIT, does not wait for the delay.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from palfrey.metrics.endpoint import SelectorEndpoint, bind, url
from palfrey.supervisor.handle import READY
from palfrey.supervisor.health import INF

if TYPE_CHECKING:
    from palfrey.supervisor.master import Master

logger = logging.getLogger("palfrey.error")


class Probes:
    """Readiness of one master, its own probe listener (if not shared), and the shutdown delay."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.delay = float(master.config.shutdown_delay)
        self.delay_until = INF  # when the shutdown delay under way ends
        self.endpoint: SelectorEndpoint | None = None

    def start(self) -> None:
        """Serve the probes: on the metrics listener when the address is the same, else on their own."""
        master = self.master
        config = master.config
        if config.health_bind is None:
            return
        shared = getattr(master.metrics, "endpoint", None)
        if config.metrics and config.health_bind == config.metrics_bind and shared is not None:
            shared.health = self.not_ready
            return
        sock = bind(config.health_bind, "--health-bind")
        self.endpoint = SelectorEndpoint(sock, master.selector, None, self.not_ready)
        logger.info("Health probes on %s", url(sock).removesuffix("/metrics") + "/readyz")

    def not_ready(self) -> str | None:
        """None when the master takes new work, else why not, in one line."""
        master = self.master
        if master.stopping:
            return "shutting down"
        if self.delay_until != INF:
            return f"shutting down: in the {self.delay:g}s shutdown delay"
        if not any(handle.state == READY for handle in master.workers.values()):
            return "no worker ready"
        return None

    def on_term(self, now: float) -> bool:
        """A SIGTERM: True if it starts the shutdown delay (the master then does not stop yet)."""
        if self.delay <= 0 or self.delay_until != INF or self.master.stopping:
            return False
        self.delay_until = now + self.delay
        logger.info(
            "Received SIGTERM: /readyz now answers 503; serving for %gs more, then shutting down",
            self.delay,
        )
        return True

    def delay_over(self, now: float) -> bool:
        """True once, when the shutdown delay under way has run out."""
        if now < self.delay_until:
            return False
        self.delay_until = INF
        return True

    def next_deadline(self) -> float:
        endpoint = self.endpoint
        return min(self.delay_until, endpoint.next_deadline() if endpoint is not None else INF)

    def check(self, now: float) -> None:
        if self.endpoint is not None:
            self.endpoint.check(now)

    def close(self) -> None:
        if self.endpoint is not None:
            with contextlib.suppress(OSError):
                self.endpoint.close()

    def close_in_child(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close_in_child()
