"""Measurements and what is derived from them: medians over rounds, ratios, whether a target is met."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from benchmarks.bench.scenarios import H2_IDLE, Scenario, Target


@dataclass
class Run:
    """One measured round of one server. Fields a kind does not produce stay None."""

    rate: float | None = None  # requests/s or messages/s
    p50_s: float | None = None
    p99_s: float | None = None
    count: int | None = None  # requests or messages in the measured window
    status_errors: int = 0  # responses with status >= 400
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    timeouts: int = 0  # wrk's meaning: responses that arrived later than --timeout
    # Connections that got no response at all during a run longer than --timeout: each waited past
    # it, yet wrk counts none of them (it only counts late responses). A lower bound: at least
    # connections - responses of them exist when there were fewer responses than connections.
    unanswered: int = 0
    rss_bytes: int | None = None  # peak during the run, or the idle value for memory kinds
    base_rss_bytes: int | None = None  # memory kinds: before the connections were opened
    connections: int | None = None  # memory/ws kinds: connections actually open
    deflate: int | None = None  # idle WebSocket rows: connections with permessage-deflate accepted
    threads: int | None = None  # HTTP rows: peak threads of the server's process tree during the run
    # h2load rows (benchmarks/bench/h2load.py has h2load's meanings): streams that did not complete
    # successfully, the part of them ended by a stream or connection error, and (fixed-count runs)
    # requests never finished. A server that fails streams must not look fast: the report shows all.
    failed: int = 0
    errored: int = 0
    not_done: int = 0
    per_connection_bytes: float | None = None  # idle-connection rows: (RSS with - before) / opened

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class ServerResult:
    label: str
    key: str
    argv: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    error: str | None = None  # why this row is n/a (or stopped early)

    def values(self, name: str) -> list[float]:
        return [v for v in (getattr(r, name) for r in self.runs) if v is not None]

    @property
    def ok(self) -> bool:
        return bool(self.runs)

    @property
    def rate(self) -> float | None:
        return _median(self.values("rate"))

    @property
    def rate_range(self) -> tuple[float, float] | None:
        rates = self.values("rate")
        return (min(rates), max(rates)) if rates else None

    @property
    def p50_s(self) -> float | None:
        return _median(self.values("p50_s"))

    @property
    def p99_s(self) -> float | None:
        return _median(self.values("p99_s"))

    @property
    def rss_bytes(self) -> float | None:
        return _median(self.values("rss_bytes"))

    @property
    def base_rss_bytes(self) -> float | None:
        return _median(self.values("base_rss_bytes"))

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.runs)


@dataclass
class ScenarioResult:
    scenario: Scenario
    servers: list[ServerResult]
    seconds: float = 0.0

    def row(self, label: str) -> ServerResult | None:
        return next((s for s in self.servers if s.label == label), None)

    @property
    def reference(self) -> ServerResult | None:
        return self.row(self.scenario.reference)

    def metric(self, server: ServerResult) -> float | None:
        if self.scenario.kind == H2_IDLE:
            return _median(server.values("per_connection_bytes"))
        return server.rss_bytes if self.scenario.metric == "rss" else server.rate

    def ratio(self, server: ServerResult) -> float | None:
        ref = self.reference
        mine, theirs = self.metric(server), self.metric(ref) if ref else None
        if mine is None or not theirs:
            return None
        return mine / theirs

    def target_for(self, server: ServerResult) -> Target | None:
        target = self.scenario.target
        return target if target and server.label in target.servers else None

    def met(self, server: ServerResult) -> bool | None:
        """True/False when the row has a target and the data to judge it, else None."""
        target = self.target_for(server)
        if target is None or not server.ok:
            return None
        checks: list[bool] = []
        ratio = self.ratio(server)
        if target.min_ratio is not None or target.max_ratio is not None:
            if ratio is None:
                return None
            if target.min_ratio is not None:
                checks.append(ratio >= target.min_ratio)
            if target.max_ratio is not None:
                checks.append(ratio <= target.max_ratio)
        if target.p99_at_most_reference:
            ref = self.reference
            if ref is None or ref.p99_s is None or server.p99_s is None:
                return None
            checks.append(server.p99_s <= ref.p99_s)
        if target.no_failed:
            checks.append(sum(server.total(n) for n in ("failed", "not_done", "timeouts")) == 0)
        if target.no_timeouts:
            checks.append(server.total("timeouts") + server.total("unanswered") == 0)
        if target.threads_at_most is not None:
            peaks = server.values("threads")
            if not peaks:
                return None
            checks.append(max(peaks) <= target.threads_at_most)
        return all(checks)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.scenario.name,
            "title": self.scenario.title,
            "kind": self.scenario.kind,
            "reference": self.scenario.reference,
            "connections": self.scenario.connections,
            "seconds": round(self.seconds, 1),
            "servers": [
                {
                    "label": s.label,
                    "argv": s.argv,
                    "error": s.error,
                    "runs": [asdict(r) for r in s.runs],
                    "ratio": self.ratio(s),
                    "met": self.met(s),
                }
                for s in self.servers
            ],
        }
