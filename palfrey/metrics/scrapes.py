"""Scrapes waiting for the workers' fresh snapshots: one fan-out for palfrey's master and gunicorn's.

A scrape sends `stats <n>` to every worker that can answer and is answered once each of them has
replied `stats <n> <snapshot>` (or gone away), or after SCRAPE_WAIT: a blocked worker then shows its
last snapshot. Both collectors — `metrics/supervisor.py` on palfrey's master and
`metrics/gunicorn_master.py` in gunicorn's — keep one `PendingScrapes` and feed it what their
workers send; they differ only in how they know their workers and render the master's series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from palfrey.metrics.endpoint import Client, response
from palfrey.metrics.snapshot import Aggregate, decode
from palfrey.supervisor.channel import MSG_STATS

if TYPE_CHECKING:
    from palfrey.supervisor.channel import Channel

SCRAPE_WAIT = 1.0  # seconds a scrape waits for workers' fresh snapshots


class _Scrape:
    __slots__ = ("client", "deadline", "sequence", "waiting")

    def __init__(self, client: Client, sequence: int, waiting: set[int], deadline: float) -> None:
        self.client = client
        self.sequence = sequence
        self.waiting = waiting
        self.deadline = deadline


class PendingScrapes:
    """The scrapes not answered yet, and the worker snapshots (`aggregate`) they are answered from."""

    __slots__ = ("aggregate", "scrapes", "sequence")

    def __init__(self) -> None:
        self.aggregate = Aggregate()
        self.sequence = 0
        self.scrapes: list[_Scrape] = []

    def ask(self, client: Client, workers: Iterable[tuple[int, Channel]], now: float) -> None:
        """A scrape arrived: ask each worker that can answer (pid, channel) for a fresh snapshot."""
        self.sequence += 1
        asked = f"{MSG_STATS} {self.sequence}"
        waiting = {pid for pid, channel in workers if channel.send(asked)}
        self.scrapes.append(_Scrape(client, self.sequence, waiting, now + SCRAPE_WAIT))

    def stats(self, pid: int, argument: str) -> None:
        """A worker's `stats <n> <snapshot>`: into the totals; scrapes up to n stop waiting for it."""
        sequence, _, payload = argument.partition(" ")
        snapshot = decode(payload)
        if snapshot is None or not sequence.isdigit():
            return
        self.aggregate.update(pid, snapshot)
        number = int(sequence)
        for scrape in self.scrapes:
            if scrape.sequence <= number:
                scrape.waiting.discard(pid)

    def gone(self, pid: int) -> None:
        """The worker exited: its last snapshot joins the finished totals; nobody waits for it."""
        self.aggregate.finish(pid)
        for scrape in self.scrapes:
            scrape.waiting.discard(pid)

    def next_deadline(self, default: float) -> float:
        return min((s.deadline for s in self.scrapes), default=default)

    def answer_due(
        self, now: float, answer: Callable[[Client, bytes], None], render: Callable[[], bytes]
    ) -> None:
        """Answer every scrape whose workers all replied, or whose wait is over (one render for all)."""
        done = [s for s in self.scrapes if not s.waiting or now >= s.deadline]
        if not done:
            return
        self.scrapes = [s for s in self.scrapes if s not in done]
        from palfrey.metrics.exposition import CONTENT_TYPE

        body = render()
        for scrape in done:
            answer(scrape.client, response(200, body, CONTENT_TYPE, scrape.client.head_only))
