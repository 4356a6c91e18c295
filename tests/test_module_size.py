"""No module in palfrey/ is over ~500 lines: one past that is doing two jobs (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "palfrey"
LIMIT = 500


def test_no_module_is_over_the_limit() -> None:
    sizes = {
        path.relative_to(PACKAGE.parent): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")
    }
    assert not {path: n for path, n in sizes.items() if n > LIMIT}, "split these modules"
