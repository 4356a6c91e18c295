"""The seed table's chart: per page, one bar per server, in four panels — req/s, requests that
failed (wrk timeouts + never answered + non-2xx), p99 latency and peak RSS.

The main chart (chart.py) shows throughput ratios only; the seed table's point is as much the
failures and the memory as the rate, so it gets its own picture (`seed.png`).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench.chart import COLOURS
from benchmarks.bench.results import ScenarioResult, ServerResult

PANELS = (
    ("req/s", lambda s: s.rate),
    ("failed requests (timeouts + unanswered + non-2xx)", lambda s: _failed(s)),
    ("p99 latency (s)", lambda s: s.p99_s),
    ("peak RSS, whole tree (MiB)", lambda s: s.rss_bytes / 2**20 if s.rss_bytes else None),
)
SHADES = ("", "///", "...", "xx", "\\\\", "oo")  # one per row of the same family


def _failed(server: ServerResult) -> float:
    return float(sum(server.total(n) for n in ("timeouts", "unanswered", "status_errors")))


def draw_seed(results: list[ScenarioResult], path: Path, subtitle: str = "") -> str | None:
    """Write `path`; None, or why there is no chart (no seed scenario ran, no matplotlib)."""
    seed = [r for r in results if r.scenario.name.startswith("seed-")]
    if not seed:
        return "no seed scenario ran"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (it comes with the peers venv)"
    labels = [s.label for s in seed[0].servers]
    width = 0.8 / max(1, len(labels))
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(max(9.0, 1.3 * len(seed) + 3), 13), sharex=True)
    for ax, (title, value) in zip(axes, PANELS, strict=True):
        family_count: dict[str, int] = {}
        for i, label in enumerate(labels):
            key = seed[0].servers[i].key
            shade = SHADES[family_count.get(key, 0) % len(SHADES)]
            family_count[key] = family_count.get(key, 0) + 1
            xs, ys = [], []
            for x, result in enumerate(seed):
                server = result.row(label)
                measured = value(server) if server is not None and server.ok else None
                if measured is not None:
                    xs.append(x - 0.4 + width * (i + 0.5))
                    ys.append(measured)
            ax.bar(xs, ys, width * 0.95, color=COLOURS.get(key, "#7f7f7f"), hatch=shade, label=label)
        ax.set_ylabel(title, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=3, loc="upper right", framealpha=0.9)
    axes[0].set_title(
        "Seed table (Django, 2,000 connections)" + (f"\n{subtitle}" if subtitle else ""), fontsize=10
    )
    axes[-1].set_xticks(range(len(seed)))
    axes[-1].set_xticklabels([r.scenario.name for r in seed], rotation=30, ha="right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None
