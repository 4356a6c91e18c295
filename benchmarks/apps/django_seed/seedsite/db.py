"""Create and fill the SQLite database the `db` view reads (stdlib only, so the runner can call it too).

No migrations: the table is created directly, idempotently, so several workers starting at once
(or the runner before them) cannot race into a half-built schema.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

ROWS = 100


def database_path() -> Path:
    """$BENCH_DJANGO_DB, or a file in the temp dir shared by every server of one run."""
    configured = os.environ.get("BENCH_DJANGO_DB")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "palfrey-bench-seed.sqlite3"


def ensure_database(path: Path | None = None) -> Path:
    path = path or database_path()
    with sqlite3.connect(path, timeout=30) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS seed_item ("
            "id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL, stock INTEGER NOT NULL)"
        )
        conn.executemany(
            "INSERT OR IGNORE INTO seed_item (id, name, price, stock) VALUES (?, ?, ?, ?)",
            [(i, f"item-{i}", round(i * 1.25, 2), i % 17) for i in range(1, ROWS + 1)],
        )
    return path
