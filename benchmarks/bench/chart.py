"""A PNG of throughput ratios: per scenario, one bar per server, relative to the scenario's reference.

A log scale keeps 0.05x and 50x readable on one axis; n/a rows are marked instead of drawn as zero.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.bench.results import ScenarioResult

COLOURS = {
    "palfrey": "#1f77b4",
    "uvicorn": "#ff7f0e",
    "granian": "#2ca02c",
    "hypercorn": "#9467bd",
    "gunicorn": "#8c564b",
}


def draw(results: list[ScenarioResult], path: Path, subtitle: str = "") -> str | None:
    """Write the chart; return None, or why there is no chart (matplotlib missing, nothing to draw)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        return "matplotlib is not installed (it comes with the peers venv)"
    groups = [r for r in results if r.scenario.metric == "rate"]
    if not groups:
        return "no throughput scenario ran"
    width = 0.8 / max(len(r.servers) for r in groups)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.75 * len(groups) + 2), 6.5))
    seen: set[str] = set()
    low, high = 1.0, 1.0
    for x, result in enumerate(groups):
        count = len(result.servers)
        interfaces = {spec.label: spec.interface for spec in result.scenario.servers}
        for i, server in enumerate(result.servers):
            pos = x - 0.4 + width * (i + 0.5) + (0.8 - width * count) / 2
            ratio = result.ratio(server)
            if not ratio:  # n/a, or nothing completed: a log axis cannot draw 0
                text = "n/a" if ratio is None else "0"
                ax.text(pos, 1.0, text, rotation=90, ha="center", va="bottom", fontsize=6, color="grey")
                continue
            colour = COLOURS.get(server.key, "#7f7f7f")
            wsgi = interfaces.get(server.label) == "wsgi"
            name = server.key + (" (WSGI)" if wsgi else "")
            legend = name if name not in seen else None
            seen.add(name)
            edge = "black" if server.key == "palfrey" else None
            hatch = "///" if wsgi else None  # palfrey WSGI and ASGI share a colour in the seed rows
            if server.label == result.scenario.reference:  # a zero-height bar: draw a thick tick instead
                ax.plot([pos - width / 2, pos + width / 2], [1.0, 1.0], color=colour, linewidth=4)
            # Bars grow from 1.0 (the reference) up or down: better and worse read at a glance.
            ax.bar(
                pos,
                ratio - 1.0,
                width * 0.95,
                bottom=1.0,
                color=colour,
                label=legend,
                edgecolor=edge,
                hatch=hatch,
            )
            above = ratio >= 1.0
            label_at = "bottom" if above else "top"
            ax.text(pos, ratio, f"{ratio:.2f}", ha="center", va=label_at, fontsize=6, rotation=90)
            low, high = min(low, ratio), max(high, ratio)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylim(low / 1.6, high * 6.0)  # headroom for the legend
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}x"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([r.scenario.name for r in groups], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("throughput ratio to the scenario's reference (log)")
    ax.set_title("palfrey vs peers" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    if seen:
        ax.legend(fontsize=8, loc="upper left", ncol=min(4, len(seen)), framealpha=0.9)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
